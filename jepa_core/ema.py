"""The exponential moving average that makes the target encoder.

After every optimiser step, each target parameter moves toward its context
counterpart:

    target <- m * target + (1 - m) * context

with momentum ``m`` in ``[0, 1]`` (I-JEPA: 0.996 rising linearly to 1.0, see
:mod:`jepa_core.schedules`). ``m = 1`` freezes the target, ``m = 0`` copies the
context. With a constant context and constant ``m``, ``k`` updates have the
closed form :func:`ema_closed_form`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .protocols import FloatArray

__all__ = ["DEFAULT_MOMENTUM", "check_momentum", "ema_closed_form", "ema_update"]

DEFAULT_MOMENTUM = 0.996
"""I-JEPA's initial EMA momentum."""


def check_momentum(momentum: float) -> None:
    """Raise a one-line ``ValueError`` unless ``0 <= momentum <= 1``."""
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"EMA momentum={momentum} is outside [0, 1]: use e.g. 0.996")


def _check_same_keys(context: Mapping[str, FloatArray], target: Mapping[str, FloatArray]) -> None:
    if context.keys() != target.keys():
        missing = sorted(set(context) - set(target))
        extra = sorted(set(target) - set(context))
        raise KeyError(
            f"context and target parameters differ: missing in target {missing}, "
            f"extra in target {extra}"
        )
    for name in context:
        if np.shape(context[name]) != np.shape(target[name]):
            raise ValueError(
                f"parameter {name!r}: context shape {np.shape(context[name])} != "
                f"target shape {np.shape(target[name])}"
            )


def ema_update(
    context_params: Mapping[str, FloatArray],
    target_params: Mapping[str, FloatArray],
    momentum: float = DEFAULT_MOMENTUM,
) -> dict[str, FloatArray]:
    """One EMA step, as a pure function: returns new target parameters.

    Args:
        context_params: the context encoder's parameters, by name.
        target_params: the target encoder's parameters, the same names and shapes.
        momentum: ``m`` in ``[0, 1]``.

    Returns:
        ``{name: m * target[name] + (1 - m) * context[name]}``. The inputs are
        not modified. ``m = 1`` returns the target values exactly and ``m = 0``
        the context values exactly.
    """
    check_momentum(momentum)
    _check_same_keys(context_params, target_params)
    out: dict[str, FloatArray] = {}
    for name, tgt in target_params.items():
        ctx = np.asarray(context_params[name])
        tgt = np.asarray(tgt)
        if momentum == 1.0:
            out[name] = tgt.copy()
        elif momentum == 0.0:
            out[name] = ctx.copy()
        else:
            out[name] = momentum * tgt + (1.0 - momentum) * ctx
    return out


def ema_closed_form(
    context_params: Mapping[str, FloatArray],
    target_params: Mapping[str, FloatArray],
    momentum: float,
    steps: int,
) -> dict[str, FloatArray]:
    """``steps`` EMA updates toward a fixed context, in closed form.

    ``target_k = m**k * target_0 + (1 - m**k) * context``.
    """
    check_momentum(momentum)
    if steps < 0:
        raise ValueError(f"steps={steps}: the number of EMA updates must be >= 0")
    _check_same_keys(context_params, target_params)
    decay = momentum**steps
    return {
        name: decay * np.asarray(tgt) + (1.0 - decay) * np.asarray(context_params[name])
        for name, tgt in target_params.items()
    }
