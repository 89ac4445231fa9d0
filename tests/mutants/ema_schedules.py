"""Mutants of the EMA and the schedules."""

from __future__ import annotations

from collections.abc import Mapping

from jepa_core.protocols import FloatArray
from jepa_core.reference import ReferenceBackend

from ._registry import mutant


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
