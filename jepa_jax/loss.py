"""The JEPA loss in JAX (the spec's ``jepa_core.loss``): a sum over target tokens, or its mean.

Every function here is traceable: shapes decide the control flow, values never do, so the same
code runs eagerly in the law suite and inside the jit-compiled training step. The one value check
of the spec, indices in ``[0, N)``, is :func:`check_indices`, which runs on concrete arrays; under
``jax.jit`` :func:`gather_tokens` turns an out-of-range index into NaN instead, so a bad index is
loud there too, never a wrap-around or a clamp.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np
from jax import Array
from numpy.typing import NDArray

from jepa_core.loss import Reduction
from jepa_core.representation import LossKind

from .representation import elementwise_loss

__all__ = ["check_indices", "gather_tokens", "grouped_prediction_loss", "jepa_loss_blocks", "prediction_loss",
           "take_rows"]


def check_indices(indices: Array | NDArray[Any], num_tokens: int, name: str = "indices") -> None:
    """Raise ``IndexError`` unless every entry of the concrete array ``indices`` lies in ``[0, num_tokens)``."""
    values = np.asarray(indices)
    if values.size and (values.min() < 0 or values.max() >= num_tokens):
        raise IndexError(f"{name}: token index out of range [0, {num_tokens}): {values.min()}..{values.max()}")


def gather_tokens(tokens: Array, indices: Array) -> Array:
    """The tokens at ``indices``, per sample: ``(B, N, D), (B, K) -> (B, K, D)``.

    The official ``apply_masks`` for one mask. An index outside ``[0, N)`` (negative ones included)
    reads NaN.
    """
    if tokens.ndim != 3 or indices.ndim != 2 or indices.shape[0] != tokens.shape[0]:
        raise ValueError(f"gather_tokens expects tokens (B, N, D) and indices (B, K); got "
                         f"{tuple(tokens.shape)} and {tuple(indices.shape)}")
    n = tokens.shape[1]
    safe = jnp.where(indices < 0, n, indices)  # (B, K): negative indices are out of range, not from the end
    return jnp.take_along_axis(tokens, safe[:, :, None], axis=1, mode="fill", fill_value=jnp.nan)  # (B, K, D)


def take_rows(table: Array, indices: Array) -> Array:
    """Rows of ``table`` ``(N, D)`` at ``indices`` of any shape: ``indices.shape + (D,)``; outside ``[0, N)`` reads NaN."""
    n = table.shape[0]
    safe = jnp.where(indices < 0, n, indices)
    return jnp.take(table, safe, axis=0, mode="fill", fill_value=jnp.nan)


def _masked(losses: Array, valid: Array | None) -> Array:
    """Per-element losses ``(R, K, D)`` with the entries of padded tokens (``valid (R, K)`` False) set to 0."""
    return losses if valid is None else jnp.where(valid[..., None], losses, 0.0)


def jepa_loss_blocks(
    predictions: Sequence[Array],
    targets: Array,
    target_blocks: Sequence[Array],
    kind: LossKind = "smooth_l1",
    reduction: Reduction = "sum",
    valid: Sequence[Array] | None = None,
) -> Array:
    """The spec's loss over target blocks (:func:`jepa_core.loss.jepa_loss_blocks`), as a 0-d array.

    Args:
        predictions: one ``(B, K_i, D)`` array per block.
        targets: ``(B, N, D)``; only the gathered positions are read.
        target_blocks: one ``(B, K_i)`` integer array per block.
        kind: the representation loss.
        reduction: ``"sum"`` or ``"mean"`` (the sum over target tokens x D; 0 when there are none).
        valid: None, or one ``(B, K_i)`` boolean array per block: blocks padded to a static size
            (:func:`jepa_jax.padding.pad_masks`), whose False entries count for nothing, in the sum or
            in the mean's number of tokens, whatever their index and values.
    """
    if len(predictions) != len(target_blocks) or (valid is not None and len(valid) != len(target_blocks)):
        raise ValueError(f"{len(predictions)} predictions for {len(target_blocks)} target blocks: "
                         "give one prediction (and one validity mask, if any) per block")
    if reduction not in ("sum", "mean"):
        raise ValueError(f"unknown reduction {reduction!r}: use 'sum' or 'mean'")
    total = jnp.zeros((), targets.dtype)
    count: Array | int = 0
    for i, (pred, block) in enumerate(zip(predictions, target_blocks, strict=True)):
        keep = None if valid is None else valid[i]
        losses = elementwise_loss(gather_tokens(targets, block), pred, kind)  # (B, K_i, D)
        total = total + jnp.sum(_masked(losses, keep))
        count = count + (block.size if keep is None else jnp.sum(keep))
    if reduction == "sum":
        return total
    return jnp.where(count > 0, total / (jnp.maximum(count, 1) * targets.shape[-1]), 0.0)


def prediction_loss(prediction: Array, target: Array, kind: LossKind = "smooth_l1",
                    reduction: Reduction = "mean", valid: Array | None = None) -> Array:
    """The loss of aligned predictions and targets ``(R, K, D)``: summed, or its mean over every element.

    ``"mean"`` is what the official training optimises (``F.smooth_l1_loss`` with mean reduction).
    ``valid`` ``(R, K)``: False at padded tokens, which count for nothing (see :func:`jepa_loss_blocks`).
    """
    losses = _masked(elementwise_loss(target, prediction, kind), valid)  # (R, K, D)
    if reduction == "sum":
        return jnp.sum(losses)
    if reduction == "mean":
        return jnp.mean(losses) if valid is None else jnp.sum(losses) / (jnp.sum(valid) * losses.shape[-1])
    raise ValueError(f"unknown reduction {reduction!r}: use 'sum' or 'mean'")


def grouped_prediction_loss(predictions: Sequence[Array], targets: Sequence[Array],
                            kind: LossKind = "smooth_l1", reduction: Reduction = "mean",
                            valid: Sequence[Array] | None = None) -> Array:
    """The loss over aligned groups of different token counts (one group per predictor call).

    ``"sum"`` adds every element loss (the spec's objective); ``"mean"`` divides that by the number of
    elements. With one group the mean is exactly ``prediction_loss(pred, target, kind, "mean")``.
    ``valid``: None, or one ``(R_g, K_g)`` boolean array per group, False at padded tokens.
    """
    if len(predictions) != len(targets) or not predictions or (valid is not None and len(valid) != len(targets)):
        raise ValueError(f"{len(predictions)} prediction groups for {len(targets)} target groups"
                         + ("" if valid is None else f" and {len(valid)} validity masks"))
    if reduction not in ("sum", "mean"):
        raise ValueError(f"unknown reduction {reduction!r}: use 'sum' or 'mean'")
    keep: Sequence[Array | None] = [None] * len(predictions) if valid is None else valid
    if len(predictions) == 1:
        return prediction_loss(predictions[0], targets[0], kind, reduction, keep[0])
    total = sum((prediction_loss(p, t, kind, "sum", v) for p, t, v in zip(predictions, targets, keep, strict=True)),
                start=jnp.zeros((), predictions[0].dtype))
    if reduction == "sum":
        return total
    count = sum(p.size if v is None else jnp.sum(v) * p.shape[-1] for p, v in zip(predictions, keep, strict=True))
    return total / count
