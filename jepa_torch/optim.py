"""The official I-JEPA optimiser: AdamW with weight decay on matrices only, schedules per step."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

__all__ = ["apply_schedules", "make_optimizer", "param_groups"]


def param_groups(modules: Iterable[nn.Module], weight_decay: float) -> list[dict[str, object]]:
    """Two AdamW groups: decayed (weights of rank >= 2) and not decayed (biases, 1-D parameters).

    The no-decay group carries ``wd_exclude=True`` so that :func:`apply_schedules` leaves it at 0,
    as the official code does. Frozen parameters (fixed position embeddings) are left out.
    """
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for module in modules:
        for name, p in module.named_parameters():
            if not p.requires_grad:
                continue
            (no_decay if name.endswith(".bias") or p.ndim == 1 else decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay, "wd_exclude": False},
        {"params": no_decay, "weight_decay": 0.0, "wd_exclude": True},
    ]


def make_optimizer(
    modules: Iterable[nn.Module],
    lr: float = 1e-3,
    weight_decay: float = 0.04,
    betas: tuple[float, float] = (0.9, 0.999),
    fused: bool | None = None,
) -> torch.optim.AdamW:
    """AdamW over ``modules`` (the context encoder and the predictor).

    Args:
        modules: the trained networks.
        lr: initial learning rate (overwritten each step by the schedule).
        weight_decay: initial weight decay of the decayed group.
        betas: Adam betas (official: torch's defaults).
        fused: use the fused kernel (one pass over each tensor's state instead of about ten
            ops per tensor: on 2 CPU threads 4.8 ms instead of 18 ms per step for ViT-tiny plus
            its predictor, see docs/performance.md). None picks it when every parameter is
            floating point and on one device kind that has the kernel (CUDA or CPU).
    """
    groups = param_groups(modules, weight_decay)
    params = [p for g in groups for p in g["params"]]  # type: ignore[attr-defined]
    if fused is None:
        kinds = {p.device.type for p in params}
        fused = len(kinds) == 1 and kinds <= {"cuda", "cpu"} and all(p.is_floating_point() for p in params)
    return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=fused)


def apply_schedules(optimizer: torch.optim.Optimizer, lr: float, weight_decay: float) -> None:
    """Set this step's learning rate on every group and weight decay on the decayed groups."""
    for group in optimizer.param_groups:
        group["lr"] = lr
        if not group.get("wd_exclude", False):
            group["weight_decay"] = weight_decay
