"""Representation losses and the target layer-norm, in JAX (the spec's ``jepa_core.representation``).

What compares or normalises one representation: the per-element loss, reduced over the feature
axis by its callers, and the official target normalisation. Both are pure ``jax.numpy`` functions
of any rank, usable eagerly and under ``jax.jit``; the JEPA loss built from them is
:mod:`jepa_jax.loss`.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array

from jepa_core.representation import LossKind, check_loss_kind

__all__ = ["TARGET_NORM_EPS", "elementwise_loss", "layer_norm"]

TARGET_NORM_EPS = 1e-5
"""The epsilon of the target layer-norm: ``F.layer_norm``'s default, as the official code uses it."""


def elementwise_loss(target: Array, prediction: Array, kind: LossKind = "smooth_l1") -> Array:
    """Per-element loss ``(..., D), (..., D) -> (..., D)``: smooth-L1 (beta 1), squared or absolute error.

    Args:
        target: ``(..., D)`` target representations.
        prediction: ``(..., D)`` predictions, the same shape (no broadcasting).
        kind: ``"smooth_l1"`` (``0.5 d²`` for ``d < 1``, else ``d - 0.5``, with ``d = |prediction - target|``)
            ``"l2"`` (``d²``) or ``"l1"`` (``d``).

    Raises:
        ValueError: for shapes that differ or an unknown ``kind``.
    """
    if target.shape != prediction.shape:
        raise ValueError(f"target shape {tuple(target.shape)} != prediction shape {tuple(prediction.shape)}: "
                         "a representation loss compares arrays of identical shape")
    diff = jnp.abs(prediction - target)
    kind = check_loss_kind(kind)
    if kind == "l2":
        return diff * diff
    if kind == "l1":
        return diff
    return jnp.where(diff < 1.0, 0.5 * diff * diff, diff - 0.5)


def layer_norm(x: Array, eps: float = TARGET_NORM_EPS) -> Array:
    """Normalise over the last axis to zero mean and unit biased variance, no affine: ``(..., D) -> (..., D)``.

    The official normalisation of the target encoder's tokens (``F.layer_norm(h, (D,))``).
    """
    mean = jnp.mean(x, axis=-1, keepdims=True)  # (..., 1)
    var = jnp.mean((x - mean) ** 2, axis=-1, keepdims=True)  # (..., 1)
    return (x - mean) / jnp.sqrt(var + eps)
