"""The EMA of the target encoder, with fused multi-tensor (foreach) kernels."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from jepa_core.ema import check_momentum

__all__ = ["ema_update_", "update_target_encoder_"]


@torch.no_grad()
def ema_update_(target: Sequence[Tensor], context: Sequence[Tensor], momentum: float) -> None:
    """In place: ``target <- m * target + (1 - m) * context``, one fused kernel per dtype/device.

    Computed as ``lerp(target, context, 1 - m)``: ``m = 1`` leaves the target bit for bit and
    ``m = 0`` copies the context bit for bit.
    """
    check_momentum(momentum)
    if len(target) != len(context):
        raise ValueError(f"{len(target)} target tensors for {len(context)} context tensors")
    if target:
        torch._foreach_lerp_(list(target), list(context), 1.0 - momentum)


def update_target_encoder_(target_encoder: nn.Module, encoder: nn.Module, momentum: float) -> None:
    """EMA every parameter of ``target_encoder`` toward ``encoder`` (same architecture).

    Only parameters move; the fixed sin-cos position embeddings are equal in both.
    """
    tgt = list(target_encoder.parameters())
    ctx = list(encoder.parameters())
    ema_update_([t.data for t in tgt], [c.detach() for c in ctx], momentum)
