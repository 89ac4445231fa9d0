"""The JEPA loss in torch (the spec's ``jepa_core.loss``): a sum over target tokens, or its mean.

All functions keep the spec's conventions: per-element losses
(:mod:`jepa_torch.objectives.representation`) reduce over the feature axis, the objective is a sum
over target tokens, and the mean is that sum divided by (target tokens x D), i.e.
``F.smooth_l1_loss(pred, target)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from jepa_core.loss import Reduction
from jepa_core.representation import LossKind, check_loss_kind

from jepa_torch.objectives.representation import elementwise_loss

__all__ = [
    "gather_tokens",
    "grouped_prediction_loss",
    "jepa_loss_blocks",
    "prediction_loss",
]


def prediction_loss(prediction: Tensor, target: Tensor, kind: LossKind = "smooth_l1",
                    reduction: Reduction = "mean") -> Tensor:
    """The JEPA loss of aligned predictions and targets ``(R, K, D)``, summed or averaged.

    ``"mean"`` is the spec's normalisation (sum / (R * K * D)); it is what the
    official training optimises (``F.smooth_l1_loss`` with mean reduction).
    """
    kind = check_loss_kind(kind)
    if kind == "l2":
        return F.mse_loss(prediction, target, reduction=reduction)
    if kind == "l1":  # V-JEPA's
        return F.l1_loss(prediction, target, reduction=reduction)
    return F.smooth_l1_loss(prediction, target, reduction=reduction, beta=1.0)


def _at_least_fp32(x: Tensor) -> Tensor:
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def grouped_prediction_loss(predictions: Sequence[Tensor], targets: Sequence[Tensor],
                            kind: LossKind = "smooth_l1", reduction: Reduction = "mean") -> Tensor:
    """The JEPA loss over aligned groups of different token counts, in fp32 or wider.

    ``"sum"`` adds every element loss (the spec's objective); ``"mean"`` divides that by
    the number of elements. With one group the mean is exactly
    ``prediction_loss(pred, target, kind, "mean")``, the official loss.
    """
    if len(predictions) != len(targets) or not predictions:
        raise ValueError(f"{len(predictions)} prediction groups for {len(targets)} target groups")
    if reduction not in ("sum", "mean"):
        raise ValueError(f"unknown reduction {reduction!r}: use 'sum' or 'mean'")
    if len(predictions) == 1:
        return prediction_loss(_at_least_fp32(predictions[0]), _at_least_fp32(targets[0]), kind, reduction)
    total = sum(prediction_loss(_at_least_fp32(p), _at_least_fp32(t), kind, "sum")
                for p, t in zip(predictions, targets, strict=True))
    if reduction == "sum":
        return total  # type: ignore[return-value]
    return total / sum(p.numel() for p in predictions)  # type: ignore[return-value]


def gather_tokens(tokens: Tensor, indices: Tensor) -> Tensor:
    """``(B, N, D), (B, K) -> (B, K, D)``: the tokens at ``indices``, per sample."""
    d = tokens.size(-1)
    return torch.gather(tokens, 1, indices.unsqueeze(-1).expand(-1, -1, d))  # (B, K, D)


def jepa_loss_blocks(
    predictions: Sequence[Tensor],
    targets: Tensor,
    target_blocks: Sequence[Tensor],
    kind: LossKind = "smooth_l1",
    reduction: Reduction = "sum",
) -> Tensor:
    """The spec's loss over target blocks (``jepa_core.jepa_loss_blocks``), as a 0-d tensor.

    Args:
        predictions: one ``(B, K_i, D)`` tensor per block.
        targets: ``(B, N, D)``; only the gathered positions are read.
        target_blocks: one ``(B, K_i)`` LongTensor per block.
        kind: the representation loss.
        reduction: ``"sum"`` or ``"mean"`` (sum / (target tokens x D); 0 when empty).
    """
    if len(predictions) != len(target_blocks):
        raise ValueError(f"{len(predictions)} predictions for {len(target_blocks)} target blocks")
    total = targets.new_zeros(())
    count = 0
    for pred, block in zip(predictions, target_blocks, strict=True):
        total = total + elementwise_loss(gather_tokens(targets, block), pred, kind).sum()
        count += block.numel()
    if reduction == "sum":
        return total
    if reduction == "mean":
        return total / (count * targets.size(-1)) if count else total
    raise ValueError(f"unknown reduction {reduction!r}: use 'sum' or 'mean'")
