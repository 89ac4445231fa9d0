"""Mutants of the EMA and the schedules."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from jepa_core.backend import Schedule
from jepa_core.protocols import FloatArray
from jepa_core.reference import ReferenceBackend
from jepa_core.schedules import CosineWeightDecay, MomentumSchedule, WarmupCosineLR

from ._registry import backend_getter, mutant


@mutant("ema_update", "test_momentum_one_keeps_target", "test_momentum_zero_copies_context")
class SwappedMomentum(ReferenceBackend):
    """EMA with the roles of m and 1 - m exchanged."""

    name = "mutant: EMA momentum swapped"

    def ema_update(self, context: Mapping[str, FloatArray], target: Mapping[str, FloatArray],
                   momentum: float) -> dict[str, FloatArray]:
        return {k: momentum * context[k] + (1.0 - momentum) * target[k] for k in target}


@mutant("momentum_schedule", "test_momentum_non_decreasing_to_its_end")
class DecreasingMomentum(ReferenceBackend):
    """A momentum schedule that runs from end back to start."""

    name = "mutant: momentum decreases"

    def momentum_schedule(self, start: float, end: float, total_steps: int):  # type: ignore[no-untyped-def]
        return lambda step: end - min(step, total_steps) * (end - start) / total_steps


@mutant("ema_update", "test_momentum_zero_copies_context", "test_update_is_the_convex_combination",
        "test_repeated_updates_equal_closed_form")
class EmaPairsByPosition(ReferenceBackend):
    """EMA that pairs parameters by position (``zip`` of the two ``.values()``), not by name.

    Right whenever both mappings list their names in the same order; a state dict
    rebuilt in another order (a checkpoint, a renamed module) mixes parameters.
    """

    name = "mutant: EMA pairs parameters by position"

    def ema_update(self, context: Mapping[str, FloatArray], target: Mapping[str, FloatArray],
                   momentum: float) -> dict[str, FloatArray]:
        return {name: momentum * tgt + (1.0 - momentum) * ctx
                for name, tgt, ctx in zip(target, target.values(), context.values(), strict=True)}


# --- schedules: right at the landmarks, wrong between them or one step off ---------------


@dataclass(frozen=True)
class _FencepostWarmupLR(WarmupCosineLR):
    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:  # divides by warmup - 1: ref_lr one step early
            progress = min(step / max(self.warmup_steps - 1, 1), 1.0)
            return self.start_lr + progress * (self.ref_lr - self.start_lr)
        return super().__call__(step)


@mutant("lr_schedule", "test_lr_closed_form")
class LrWarmupOneStepEarly(ReferenceBackend):
    """Warm-up divides by ``warmup_steps - 1`` (a fencepost): ref_lr one step early, landmarks right."""

    name = "mutant: lr warm-up reaches ref_lr one step early"

    def lr_schedule(self, start_lr: float, ref_lr: float, final_lr: float, warmup_steps: int,
                    total_steps: int) -> Schedule:
        return _FencepostWarmupLR(start_lr, ref_lr, final_lr, warmup_steps, total_steps)


@dataclass(frozen=True)
class _LinearDecayLR(WarmupCosineLR):
    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return super().__call__(step)
        progress = min((step - self.warmup_steps) / (self.total_steps - self.warmup_steps), 1.0)
        return self.ref_lr + progress * (self.final_lr - self.ref_lr)


@mutant("lr_schedule", "test_lr_closed_form")
class LrLinearDecay(ReferenceBackend):
    """Decays linearly from ref_lr to final_lr: the same landmarks and monotonicity, another curve."""

    name = "mutant: lr decays linearly"

    def lr_schedule(self, start_lr: float, ref_lr: float, final_lr: float, warmup_steps: int,
                    total_steps: int) -> Schedule:
        return _LinearDecayLR(start_lr, ref_lr, final_lr, warmup_steps, total_steps)


@dataclass(frozen=True)
class _CosineOverTotalLR(WarmupCosineLR):
    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return super().__call__(step)
        progress = min((step - self.warmup_steps) / self.total_steps, 1.0)  # should be total - warmup
        return self.final_lr + (self.ref_lr - self.final_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


@mutant("lr_schedule", "test_lr_closed_form", "test_lr_landmarks")
class LrCosineOverTotal(ReferenceBackend):
    """Cosine progress over ``total_steps`` instead of ``total_steps - warmup_steps``."""

    name = "mutant: lr cosine over total steps"

    def lr_schedule(self, start_lr: float, ref_lr: float, final_lr: float, warmup_steps: int,
                    total_steps: int) -> Schedule:
        return _CosineOverTotalLR(start_lr, ref_lr, final_lr, warmup_steps, total_steps)


@dataclass(frozen=True)
class _LinearWeightDecay(CosineWeightDecay):
    def __call__(self, step: int) -> float:
        return self.start + min(step / self.total_steps, 1.0) * (self.end - self.start)


@mutant("wd_schedule", "test_wd_closed_form")
class WdLinear(ReferenceBackend):
    """Weight decay along a line instead of a half cosine: the same ends, monotone."""

    name = "mutant: weight decay linear"

    def wd_schedule(self, start: float, end: float, total_steps: int) -> Schedule:
        return _LinearWeightDecay(start, end, total_steps)


@dataclass(frozen=True)
class _EarlyWeightDecay(CosineWeightDecay):
    def __call__(self, step: int) -> float:
        progress = min(step / max(self.total_steps - 1, 1), 1.0)  # reaches end at total - 1
        return self.end + (self.start - self.end) * 0.5 * (1.0 + math.cos(math.pi * progress))


@mutant("wd_schedule", "test_wd_closed_form")
class WdEndOneStepEarly(ReferenceBackend):
    """Weight decay divides by ``total_steps - 1``: its end one step early, landmarks right."""

    name = "mutant: weight decay ends one step early"

    def wd_schedule(self, start: float, end: float, total_steps: int) -> Schedule:
        return _EarlyWeightDecay(start, end, total_steps)


@dataclass(frozen=True)
class _AheadMomentum(MomentumSchedule):
    def __call__(self, step: int) -> float:  # the official iterator's value: one step ahead
        return min(self.start + (step + 1) * (self.end - self.start) / self.total_steps, self.end)


@mutant("momentum_schedule", "test_momentum_closed_form", "test_momentum_non_decreasing_to_its_end")
class MomentumOneStepAhead(ReferenceBackend):
    """Momentum at step ``s`` is the spec's value at ``s + 1`` (an iterator that counts before it yields)."""

    name = "mutant: momentum one step ahead"

    def momentum_schedule(self, start: float, end: float, total_steps: int) -> Schedule:
        return _AheadMomentum(start, end, total_steps)


@dataclass
class _RatchetMomentum:
    schedule: MomentumSchedule
    highest: float = 0.0

    def __call__(self, step: int) -> float:
        self.highest = max(self.highest, self.schedule(step))
        return self.highest


@mutant("momentum_schedule", "test_same_step_same_value")
class StatefulMomentum(ReferenceBackend):
    """A momentum schedule that never returns less than its highest value so far.

    A guard against a decreasing momentum, kept as state: right when called step after
    step, wrong after a resume or any call at an earlier step.
    """

    name = "mutant: stateful momentum schedule"

    def momentum_schedule(self, start: float, end: float, total_steps: int) -> Schedule:
        return _RatchetMomentum(MomentumSchedule(start, end, total_steps))


__getattr__ = backend_getter(__name__)  # ``tests.mutants.ema_schedules:<key>`` names a backend
