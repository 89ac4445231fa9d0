"""Representation losses and the target layer-norm, in numpy: what compares or normalises
one representation. The JEPA loss, a sum of these over target indices, is :mod:`jepa_core.loss`.

Every loss here reduces over the *last* axis (the feature axis, size D) and keeps
the leading axes, so one function serves one token ``(D,)``, a block ``(K, D)``
and a batch ``(B, K, D)``:

    smooth_l1(target, prediction)  # (..., D), (..., D) -> (...)

A per-index representation loss in the sense of :mod:`jepa_core.loss` is then the
sum of these per-token values over the index's tokens.
"""

from __future__ import annotations

from typing import Literal, TypeAlias, cast, get_args

import numpy as np

from .protocols import FloatArray

__all__ = [
    "LossKind",
    "check_loss_kind",
    "elementwise_loss",
    "layer_norm",
    "representation_loss",
    "smooth_l1",
    "squared_l2",
]

LossKind: TypeAlias = Literal["smooth_l1", "l2", "l1"]
"""The representation losses of the spec: smooth-L1 (I-JEPA's), squared L2 and L1 (V-JEPA's)."""


def _check_pair(target: FloatArray, prediction: FloatArray) -> None:
    if target.shape != prediction.shape:
        raise ValueError(
            f"target shape {target.shape} != prediction shape {prediction.shape}: "
            "a representation loss compares arrays of identical shape"
        )


def check_loss_kind(kind: object, key: str = "kind") -> LossKind:
    """``kind`` as a :data:`~jepa_core.representation.LossKind`: the one check of a loss name.

    Args:
        kind: the name to check: ``"smooth_l1"``, ``"l2"`` or ``"l1"``.
        key: how the caller's error names the value (``optimization.loss``, ``loss``).

    Raises:
        ValueError: ``<key>=<kind>: use smooth_l1, l2 or l1``, one line.
    """
    kinds = get_args(LossKind)
    if not isinstance(kind, str) or kind not in kinds:
        raise ValueError(f"{key}={kind!r}: use {', '.join(kinds[:-1])} or {kinds[-1]}")
    return cast(LossKind, kind)


def elementwise_loss(
    target: FloatArray, prediction: FloatArray, kind: LossKind = "smooth_l1", beta: float = 1.0
) -> FloatArray:
    """The loss of each element, before any reduction.

    Args:
        target: ``(..., D)`` target representations.
        prediction: ``(..., D)`` predictions, the same shape.
        kind: ``"smooth_l1"`` (Huber with threshold ``beta``, as
            ``torch.nn.functional.smooth_l1_loss``), ``"l2"`` (squared error) or ``"l1"`` (absolute
            error, V-JEPA's).
        beta: the smooth-L1 threshold; must be positive. Ignored for the others.

    Returns:
        ``(..., D)`` non-negative losses.
    """
    _check_pair(target, prediction)
    diff = np.abs(np.asarray(prediction) - np.asarray(target))
    kind = check_loss_kind(kind)
    if kind == "l2":
        return diff * diff
    if kind == "l1":
        return diff
    if not beta > 0.0:
        raise ValueError(f"beta={beta}: the smooth-L1 threshold must be positive")
    return np.where(diff < beta, 0.5 * diff * diff / beta, diff - 0.5 * beta)


def smooth_l1(target: FloatArray, prediction: FloatArray, beta: float = 1.0) -> FloatArray:
    """Smooth-L1 (Huber) loss summed over the feature axis: ``(..., D) -> (...)``.

    Per element, with ``d = |prediction - target|``: ``0.5 d^2 / beta`` when
    ``d < beta``, else ``d - 0.5 beta``. ``beta = 1`` is torch's default and the
    official I-JEPA loss.
    """
    out: FloatArray = elementwise_loss(target, prediction, "smooth_l1", beta).sum(axis=-1)
    return out


def squared_l2(target: FloatArray, prediction: FloatArray) -> FloatArray:
    """Squared Euclidean distance over the feature axis: ``(..., D) -> (...)``."""
    out: FloatArray = elementwise_loss(target, prediction, "l2").sum(axis=-1)
    return out


def representation_loss(
    target: FloatArray, prediction: FloatArray, kind: LossKind = "smooth_l1"
) -> float:
    """The loss of one index: the per-token loss summed over all its tokens.

    This is the ``repLoss`` of the formal objective for an index whose
    representation is ``(D,)`` (one token) or ``(K, D)`` (a block of K tokens).
    It is a :class:`~jepa_core.protocols.RepresentationLoss`.
    """
    return float(elementwise_loss(target, prediction, kind).sum())


def layer_norm(x: FloatArray, eps: float = 1e-5) -> FloatArray:
    """Normalise over the feature axis to zero mean and unit variance, no affine.

    This is what the official I-JEPA code applies to the target encoder's output
    (``F.layer_norm(h, (D,))``, whose default ``eps`` is ``1e-5``). The variance
    is the biased (population) variance, as in ``torch.nn.LayerNorm``.

    Args:
        x: ``(..., D)`` features.
        eps: added to the variance; must be non-negative.

    Returns:
        ``(..., D)`` normalised features.
    """
    if eps < 0.0:
        raise ValueError(f"eps={eps}: layer-norm epsilon must be non-negative")
    x = np.asarray(x)
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    out: FloatArray = (x - mean) / np.sqrt(var + eps)
    return out
