"""The target-scale schedule: grow (or shrink) the masked share as training goes.

A pure function of the step, like every schedule in :mod:`jepa_core.schedules`:
a resumed run recomputes the range from its step alone. The official I-JEPA keeps
the target scale fixed; this schedule is an addition (docs/masks.md).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .masks import MaskConfig

__all__ = ["TargetScaleSchedule", "config_at"]

ScaleRange = tuple[float, float]


def _check_scale(name: str, value: ScaleRange) -> None:
    ok = isinstance(value, tuple) and len(value) == 2 and 0.0 < value[0] <= value[1] <= 1.0
    if not ok:
        raise ValueError(f"TargetScaleSchedule.{name}={value!r}: must be (low, high) with 0 < low <= high <= 1")


@dataclass(frozen=True)
class TargetScaleSchedule:
    """Linear interpolation of the target scale range from ``start`` to ``end``.

    ``schedule(step)`` is ``start`` before ``warmup_steps``, moves linearly (both
    bounds) to ``end`` at ``total_steps``, and holds ``end`` afterwards.

    Attributes:
        start: the ``(low, high)`` target scale at step 0.
        end: the range at ``total_steps`` and after.
        total_steps: the step at which ``end`` is reached, ``>= 1``.
        warmup_steps: steps held at ``start`` first, ``0 <= warmup_steps < total_steps``.
    """

    start: ScaleRange = (0.15, 0.2)
    end: ScaleRange = (0.15, 0.2)
    total_steps: int = 1
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        _check_scale("start", self.start)
        _check_scale("end", self.end)
        if self.total_steps < 1:
            raise ValueError(f"TargetScaleSchedule.total_steps={self.total_steps}: must be >= 1")
        if not 0 <= self.warmup_steps < self.total_steps:
            raise ValueError(f"TargetScaleSchedule.warmup_steps={self.warmup_steps}: must be in "
                             f"[0, total_steps={self.total_steps})")

    def __call__(self, step: int) -> ScaleRange:
        """The ``(low, high)`` target scale at ``step >= 0`` (a pure function of the step)."""
        if step < 0:
            raise ValueError(f"step={step}: schedules are defined for steps >= 0")
        span = self.total_steps - self.warmup_steps
        t = min(1.0, max(0.0, (step - self.warmup_steps) / span))
        low = self.start[0] + t * (self.end[0] - self.start[0])
        high = self.start[1] + t * (self.end[1] - self.start[1])
        return (low, max(low, high))


def config_at(config: MaskConfig, schedule: TargetScaleSchedule, step: int) -> MaskConfig:
    """``config`` with its ``target_scale`` replaced by ``schedule(step)``.

    The result *must* still be validated against the grid (the samplers do it):
    a larger target scale may leave no room for ``min_keep`` context patches.
    """
    return dataclasses.replace(config, target_scale=schedule(step))
