"""The official I-JEPA optimiser: AdamW with weight decay on matrices only, schedules per step."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

__all__ = ["apply_schedules", "from_official_optimizer_state", "make_optimizer", "official_param_groups",
           "param_groups", "to_official_optimizer_state"]

# torch.optim.AdamW's flags as the official ``init_opt`` leaves them (torch's defaults): written into the
# official layout so that its optimiser keeps its own kernels after ``load_state_dict``.
_OFFICIAL_FLAGS = {"foreach": None, "fused": None}
_OWN = ("params", "wd_exclude", "WD_exclude", "foreach", "fused")


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


def official_param_groups(encoder: nn.Module, predictor: nn.Module) -> list[tuple[list[nn.Parameter], bool]]:
    """The four AdamW groups of the official ``init_opt`` as ``(parameters, WD_exclude)``.

    Encoder weights, predictor weights, then encoder and predictor biases and 1-D parameters (a name
    containing ``bias`` or a 1-D tensor), over *every* named parameter, frozen ones included (the fixed
    position embeddings sit in the weight groups without gradients, hence without state).
    """
    def split(module: nn.Module, decay: bool) -> list[nn.Parameter]:
        return [p for n, p in module.named_parameters() if ("bias" not in n and p.ndim != 1) == decay]

    return [(split(encoder, True), False), (split(predictor, True), False),
            (split(encoder, False), True), (split(predictor, False), True)]


def _our_index(optimizer: torch.optim.Optimizer) -> dict[int, int]:
    """``id(parameter) -> index`` in ``optimizer.state_dict()`` (groups in order, then parameters)."""
    return {id(p): i for i, p in enumerate(p for g in optimizer.param_groups for p in g["params"])}


def _group_of(groups: list[dict[str, Any]], exclude: bool) -> dict[str, Any]:
    return next(g for g in groups if bool(g.get("wd_exclude", g.get("WD_exclude", False))) == exclude)


def to_official_optimizer_state(optimizer: torch.optim.Optimizer, encoder: nn.Module,
                                predictor: nn.Module) -> dict[str, Any]:
    """``optimizer``'s state dict in the official layout, which the official resume loads as it is.

    Four groups (:func:`official_param_groups`), parameters numbered in the official order, each
    parameter's AdamW state moved to its official number; the hyper-parameters are ours (learning rate,
    weight decay, betas, eps), the no-decay groups carry ``WD_exclude: True`` as the official ones do,
    and ``foreach`` / ``fused`` are torch's defaults, as the official optimiser is built.

    Args:
        optimizer: ours, from :func:`make_optimizer` over ``[encoder, predictor]``.
        encoder, predictor: the unwrapped networks it trains.
    """
    ours = optimizer.state_dict()
    index = _our_index(optimizer)
    state: dict[int, Any] = {}
    groups: list[dict[str, Any]] = []
    k = 0
    for params, exclude in official_param_groups(encoder, predictor):
        numbers = []
        for p in params:
            i = index.get(id(p))
            if i is not None and i in ours["state"]:
                state[k] = ours["state"][i]
            numbers.append(k)
            k += 1
        hyper = {key: v for key, v in _group_of(ours["param_groups"], exclude).items() if key not in _OWN}
        groups.append({**hyper, **_OFFICIAL_FLAGS, **({"WD_exclude": True} if exclude else {}), "params": numbers})
    if len(state) != len(ours["state"]):
        raise ValueError(f"the optimiser holds state for {len(ours['state'])} parameters but only {len(state)} belong "
                         "to the encoder and predictor given")
    return {"state": state, "param_groups": groups}


def from_official_optimizer_state(official: Mapping[str, Any], optimizer: torch.optim.Optimizer,
                                  encoder: nn.Module, predictor: nn.Module) -> dict[str, Any]:
    """The inverse of :func:`to_official_optimizer_state`: an official-layout state dict in ``optimizer``'s layout.

    Each parameter's state comes from its official number; each of our groups takes the
    hyper-parameters of the official groups of its kind and keeps its own ``params``, ``wd_exclude``
    and kernel flags (``foreach``, ``fused``), so the optimiser runs as it was built.

    Raises:
        ValueError: the official groups do not number the parameters of these networks.
    """
    members = official_param_groups(encoder, predictor)
    groups = list(official["param_groups"])
    sizes = [len(g["params"]) for g in groups]
    if sizes != [len(p) for p, _ in members]:
        raise ValueError(f"official optimizer groups hold {sizes} parameters, these networks "
                         f"{[len(p) for p, _ in members]}")
    index = _our_index(optimizer)
    state: dict[int, Any] = {}
    for (params, _), group in zip(members, groups):
        for p, number in zip(params, group["params"]):
            i = index.get(id(p))
            if i is not None and number in official["state"]:
                state[i] = official["state"][number]
    ours = optimizer.state_dict()["param_groups"]
    out_groups = []
    for g in ours:
        exclude = bool(g.get("wd_exclude", False))
        source = _group_of(groups, exclude)
        hyper = {key: v for key, v in source.items() if key not in _OWN}
        out_groups.append({**g, **hyper})
    return {"state": state, "param_groups": out_groups}
