"""The EMA of the target encoder, with fused multi-tensor (foreach) kernels."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from jepa_core.ema import check_momentum

from jepa_torch.models.sharding import held, reshard

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

    Only parameters move; the fixed sin-cos position embeddings are equal in both. Sharded networks
    (``jepa_torch.models.sharding.shard``, which splits both alike) are updated shard by shard: each process
    moves the rows it holds, with no communication.

    Raises:
        ValueError: the two hold parameters of different shapes (other architectures, or shards
            split differently).
    """
    reshard(target_encoder, encoder)  # the shards, never a gathered copy that is about to be freed
    tgt = [held(p) for p in target_encoder.parameters()]
    ctx = [held(p) for p in encoder.parameters()]
    shapes = [(tuple(t.shape), tuple(c.shape)) for t, c in zip(tgt, ctx)]
    if len(tgt) != len(ctx) or any(a != b for a, b in shapes):
        raise ValueError("the target encoder and the encoder hold parameters of different shapes: "
                         "shard both with jepa_torch.models.sharding.shard, or neither")
    ema_update_(tgt, ctx, momentum)
