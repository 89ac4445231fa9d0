"""Representation losses and the target layer-norm, in torch (the spec's ``jepa_core.representation``).

What compares or normalises one representation: the per-element loss, reduced over the
feature axis by its callers, and the official target normalisation. The JEPA loss built
from them is :mod:`jepa_torch.objectives.loss`.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from jepa_core.representation import LossKind, check_loss_kind

__all__ = ["elementwise_loss", "layer_norm_targets"]


def elementwise_loss(target: Tensor, prediction: Tensor, kind: LossKind = "smooth_l1") -> Tensor:
    """Per-element loss ``(..., D) -> (..., D)``: smooth-L1 (beta 1), squared error or absolute error."""
    if target.shape != prediction.shape:
        raise ValueError(f"target shape {tuple(target.shape)} != prediction shape {tuple(prediction.shape)}")
    kind = check_loss_kind(kind)
    if kind == "l2":
        return F.mse_loss(prediction, target, reduction="none")
    if kind == "l1":
        return F.l1_loss(prediction, target, reduction="none")
    return F.smooth_l1_loss(prediction, target, reduction="none", beta=1.0)


def layer_norm_targets(h: Tensor) -> Tensor:
    """Normalise target tokens over features, no affine, eps 1e-5 (the official ``F.layer_norm``)."""
    return F.layer_norm(h, (h.size(-1),))
