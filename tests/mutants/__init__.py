"""Broken backends that the law suite must reject (see tests/test_mutants.py).

Each mutant is a correct backend with one plausible bug, registered with the
Backend member the bug sits in and the laws that must fail on it. If the suite
passed any of them, it would not be testing the law the bug breaks.

Run the suite on one: ``pytest properties --jepa-backend=tests.mutants:<key>``;
print the whole table: ``python -m tests.mutants``.
"""

from __future__ import annotations

from typing import Any

from . import ema_schedules, loss, masks, model, regularisers, video_masks  # noqa: F401  (each registers its mutants)
from ._registry import MUTANTS, Mutant

__all__ = ["MUTANTS", "Mutant"]


def __getattr__(name: str) -> Any:
    try:
        return MUTANTS[name].backend
    except KeyError:
        raise AttributeError(f"tests.mutants has no mutant {name!r}; known: {sorted(MUTANTS)}") from None
