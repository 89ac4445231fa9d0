"""The training schedules in JAX: pure functions of the step, traceable inside a jitted step.

Each schedule is a frozen dataclass, as in :mod:`jepa_core.schedules`, whose parameters are
validated by the spec's own dataclass (the same one-line errors). It is used two ways:

- ``schedule(step)`` with a Python ``int``: the value as a float (the ``Backend`` contract);
- ``schedule.at(step)`` with an array, possibly traced: a float64 0-d array, so the jitted
  training step reads its learning rate, weight decay and momentum from its own step counter
  (``optax.inject_hyperparams`` calls it with the optimiser's count).

Both go through one ``jax.jit``-compiled function per curve whose parameters are arguments, not
constants, so a new schedule costs no compilation. The formulas are written in the spec's order of
operations, so the values agree with the spec's to a rounding of ``cos``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
from jax import Array

from jepa_core import schedules as spec

__all__ = ["CosineWeightDecay", "MomentumSchedule", "WarmupCosineLR", "cosine_weight_decay", "linear_momentum",
           "warmup_cosine_lr"]

ArrayLike = Array | int | float


def _half_cosine(progress: Array) -> Array:
    """1 at progress 0, 0 at progress 1, a half cosine in between (progress clipped to [0, 1])."""
    return 0.5 * (1.0 + jnp.cos(math.pi * jnp.clip(progress, 0.0, 1.0)))


def _step(step: ArrayLike) -> Array:
    return jnp.asarray(step, jnp.float64)


@jax.jit
def warmup_cosine_lr(step: ArrayLike, start_lr: ArrayLike, ref_lr: ArrayLike, final_lr: ArrayLike,
                     warmup_steps: ArrayLike, total_steps: ArrayLike) -> Array:
    """Linear warm-up from ``start_lr`` to ``ref_lr`` over ``warmup_steps``, then a half cosine to ``final_lr``
    at ``total_steps``, held after."""
    s = _step(step)
    warmup = jnp.asarray(warmup_steps, jnp.float64)
    warm = start_lr + s / jnp.maximum(warmup, 1.0) * (ref_lr - start_lr)
    progress = (s - warmup) / (total_steps - warmup)
    decay = final_lr + (ref_lr - final_lr) * _half_cosine(progress)
    return jnp.where(s < warmup, warm, decay)


@jax.jit
def cosine_weight_decay(step: ArrayLike, start: ArrayLike, end: ArrayLike, total_steps: ArrayLike) -> Array:
    """A half cosine from ``start`` at step 0 to ``end`` at ``total_steps``, held after."""
    return end + (start - end) * _half_cosine(_step(step) / total_steps)


@jax.jit
def linear_momentum(step: ArrayLike, start: ArrayLike, end: ArrayLike, total_steps: ArrayLike) -> Array:
    """A line from ``start`` at step 0 to ``end`` at ``total_steps``, held after."""
    s = _step(step)
    value = jnp.minimum(start + s * (end - start) / total_steps, end)
    return jnp.where(s >= total_steps, end, value)


def _checked(step: int) -> int:
    if step < 0:
        raise ValueError(f"step={step}: schedules are defined for steps >= 0")
    return step


@dataclass(frozen=True)
class WarmupCosineLR:
    """Learning rate: linear warm-up, then cosine decay (:class:`jepa_core.schedules.WarmupCosineLR`)."""

    start_lr: float
    ref_lr: float
    final_lr: float
    warmup_steps: int
    total_steps: int

    def __post_init__(self) -> None:
        spec.WarmupCosineLR(self.start_lr, self.ref_lr, self.final_lr, self.warmup_steps, self.total_steps)

    def at(self, step: ArrayLike) -> Array:
        """The rate at ``step`` (an array, possibly traced): float64, 0-d."""
        out: Array = warmup_cosine_lr(step, float(self.start_lr), float(self.ref_lr), float(self.final_lr),
                                      self.warmup_steps, self.total_steps)
        return out

    def __call__(self, step: int) -> float:
        return float(self.at(_checked(step)))


@dataclass(frozen=True)
class CosineWeightDecay:
    """Weight decay along a half cosine from ``start`` to ``end`` (:class:`jepa_core.schedules.CosineWeightDecay`)."""

    start: float
    end: float
    total_steps: int

    def __post_init__(self) -> None:
        spec.CosineWeightDecay(self.start, self.end, self.total_steps)

    def at(self, step: ArrayLike) -> Array:
        """The weight decay at ``step`` (an array, possibly traced): float64, 0-d."""
        out: Array = cosine_weight_decay(step, float(self.start), float(self.end), self.total_steps)
        return out

    def __call__(self, step: int) -> float:
        return float(self.at(_checked(step)))


@dataclass(frozen=True)
class MomentumSchedule:
    """EMA momentum, linear from ``start`` to ``end`` (:class:`jepa_core.schedules.MomentumSchedule`)."""

    start: float = 0.996
    end: float = 1.0
    total_steps: int = 1

    def __post_init__(self) -> None:
        spec.MomentumSchedule(self.start, self.end, self.total_steps)

    def at(self, step: ArrayLike) -> Array:
        """The momentum at ``step`` (an array, possibly traced): float64, 0-d."""
        out: Array = linear_momentum(step, float(self.start), float(self.end), self.total_steps)
        return out

    def __call__(self, step: int) -> float:
        return float(self.at(_checked(step)))
