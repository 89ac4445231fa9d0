"""The training schedules of I-JEPA, each a pure function of the step.

A schedule is a frozen dataclass whose ``__call__(step)`` returns the value at
``step`` (0-based, the number of optimiser steps already taken). Nothing is
stateful, so a resumed run recomputes every value from its step alone.

- :class:`WarmupCosineLR`: linear warm-up from ``start_lr`` to ``ref_lr`` over
  ``warmup_steps``, then a half cosine down to ``final_lr`` at ``total_steps``.
- :class:`CosineWeightDecay`: half cosine from ``start`` (0.04) to ``end`` (0.4).
- :class:`MomentumSchedule`: the EMA momentum, linear from ``start`` (0.996) to
  ``end`` (1.0) over the run.

Past ``total_steps`` each schedule holds its final value. The official code's
iterators are one step ahead for the learning rate and weight decay (their
``step()`` increments its counter before computing the value, so the first
optimiser step uses the value of step 1); ``docs/fidelity.md`` lists it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .ema import check_momentum

__all__ = ["CosineWeightDecay", "MomentumSchedule", "WarmupCosineLR"]


def _check_step(step: int) -> None:
    if step < 0:
        raise ValueError(f"step={step}: schedules are defined for steps >= 0")


def _check_total(total_steps: int, name: str = "total_steps") -> None:
    if total_steps < 1:
        raise ValueError(f"{name}={total_steps}: a schedule needs at least 1 step")


def _half_cosine(progress: float) -> float:
    """1 at progress 0, 0 at progress 1, a half cosine in between."""
    return 0.5 * (1.0 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))


@dataclass(frozen=True)
class WarmupCosineLR:
    """Learning rate: linear warm-up, then cosine decay.

    Attributes:
        start_lr: the rate at step 0.
        ref_lr: the peak, reached at ``warmup_steps``.
        final_lr: the rate at ``total_steps`` and after.
        warmup_steps: length of the warm-up; 0 starts at ``ref_lr``.
        total_steps: the length of the run; must exceed ``warmup_steps``.
    """

    start_lr: float
    ref_lr: float
    final_lr: float
    warmup_steps: int
    total_steps: int

    def __post_init__(self) -> None:
        _check_total(self.total_steps)
        if not 0 <= self.warmup_steps < self.total_steps:
            raise ValueError(
                f"warmup_steps={self.warmup_steps} must be in [0, total_steps={self.total_steps})"
            )
        for name in ("start_lr", "ref_lr", "final_lr"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"{name}={value}: a learning rate must be finite and >= 0")

    def __call__(self, step: int) -> float:
        _check_step(step)
        if step < self.warmup_steps:
            progress = step / self.warmup_steps
            return self.start_lr + progress * (self.ref_lr - self.start_lr)
        progress = (step - self.warmup_steps) / (self.total_steps - self.warmup_steps)
        return self.final_lr + (self.ref_lr - self.final_lr) * _half_cosine(progress)


@dataclass(frozen=True)
class CosineWeightDecay:
    """Weight decay along a half cosine from ``start`` to ``end``.

    I-JEPA raises it from 0.04 to 0.4 over the run.
    """

    start: float
    end: float
    total_steps: int

    def __post_init__(self) -> None:
        _check_total(self.total_steps)
        for name in ("start", "end"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"{name}={value}: weight decay must be finite and >= 0")

    def __call__(self, step: int) -> float:
        _check_step(step)
        progress = step / self.total_steps
        return self.end + (self.start - self.end) * _half_cosine(progress)


@dataclass(frozen=True)
class MomentumSchedule:
    """EMA momentum, linear from ``start`` to ``end`` over ``total_steps``.

    The official code builds the same line over
    ``iterations_per_epoch * epochs * ipe_scale`` steps; pass that product as
    ``total_steps`` to reproduce it.
    """

    start: float = 0.996
    end: float = 1.0
    total_steps: int = 1

    def __post_init__(self) -> None:
        _check_total(self.total_steps)
        check_momentum(self.start)
        check_momentum(self.end)
        if self.end < self.start:
            raise ValueError(
                f"momentum end={self.end} < start={self.start}: the EMA momentum must not decrease"
            )

    def __call__(self, step: int) -> float:
        _check_step(step)
        if step >= self.total_steps:
            return self.end
        value = self.start + step * (self.end - self.start) / self.total_steps
        return min(value, self.end)
