"""The EMA of the target encoder over a pytree: ``target <- m * target + (1 - m) * context``.

Any two pytrees of one structure (two encoders, two dicts of parameters) are updated leaf by leaf;
dicts pair their entries by key, never by position (``jax.tree`` sorts keys), so a state dict
rebuilt in another order is updated correctly. The function is pure and traceable: under
``jax.jit`` the momentum may be a traced scalar.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
from jax import Array

from jepa_core.ema import check_momentum

__all__ = ["ema_update"]

Tree = TypeVar("Tree")


def _check_pair(context: Any, target: Any) -> None:
    """One-line errors for trees that cannot be paired leaf by leaf."""
    if isinstance(context, Mapping) and isinstance(target, Mapping) and set(context) != set(target):
        missing = sorted(set(context) - set(target))
        extra = sorted(set(target) - set(context))
        raise KeyError(f"context and target parameters differ: missing in target {missing}, extra in target {extra}")
    ctx_leaves, tgt_leaves = jax.tree_util.tree_leaves_with_path(context), jax.tree_util.tree_leaves_with_path(target)
    ctx_paths = [jax.tree_util.keystr(path) for path, _ in ctx_leaves]
    if ctx_paths != [jax.tree_util.keystr(path) for path, _ in tgt_leaves]:
        raise ValueError(f"context and target trees differ: {jax.tree.structure(context)} vs "
                         f"{jax.tree.structure(target)}")
    for (path, ctx), (_, tgt) in zip(ctx_leaves, tgt_leaves, strict=True):
        if jnp.shape(ctx) != jnp.shape(tgt):
            raise ValueError(f"parameter {jax.tree_util.keystr(path)}: context shape {jnp.shape(ctx)} != "
                             f"target shape {jnp.shape(tgt)}")


def ema_update(context: Tree, target: Tree, momentum: float | Array) -> Tree:
    """One EMA step, as a pure function: new target leaves ``m * target + (1 - m) * context``.

    ``m = 1`` returns the target's values exactly and ``m = 0`` the context's.

    Args:
        context: the context encoder's parameters (any pytree of arrays).
        target: the target encoder's parameters, the same structure and shapes.
        momentum: ``m`` in ``[0, 1]`` (checked when it is a Python number).

    Raises:
        KeyError: two mappings with different names.
        ValueError: trees of different structure or leaves of different shapes.
    """
    if isinstance(momentum, (int, float)):
        check_momentum(float(momentum))
    _check_pair(context, target)
    out: Tree = jax.tree.map(partial(_lerp, momentum=momentum), target, context)
    return out


def _lerp(target: Array, context: Array, momentum: float | Array) -> Array:
    """``m * target + (1 - m) * context``, selecting the inputs themselves at ``m = 1`` and ``m = 0``: XLA on the
    CPU flushes subnormal numbers to zero in arithmetic, and a selection keeps every bit."""
    mixed = momentum * target + (1.0 - momentum) * context
    return jnp.where(momentum == 1.0, target, jnp.where(momentum == 0.0, context, mixed))
