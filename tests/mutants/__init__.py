"""Broken backends that the law suite must reject (see tests/test_mutants.py).

Each mutant is a correct backend with one plausible bug, registered with the
Backend member the bug sits in and the laws that must fail on it. If the suite
passed any of them, it would not be testing the law the bug breaks.

Run the suite on one: ``pytest properties --jepa-backend=tests.mutants.<module>:<key>`` (or
``tests.mutants:<key>``, which imports every mutant module first); print the whole table:
``python -m tests.mutants``. Nothing is imported until asked for: a mask mutant's run never imports torch.
"""

from __future__ import annotations

from typing import Any

import importlib

from ._registry import MUTANTS as _REGISTRY
from ._registry import Mutant

__all__ = ["MODULES", "MUTANTS", "Mutant"]

MODULES = ("ema_schedules", "loss", "masks", "model", "regularisers", "video_masks")
"""The mutant modules; each registers its mutants when imported."""


def _all() -> dict[str, Mutant]:
    for name in MODULES:
        importlib.import_module(f"{__name__}.{name}")
    return _REGISTRY


def __getattr__(name: str) -> Any:
    if name == "MUTANTS":
        return _all()
    try:
        return _all()[name].backend
    except KeyError:
        raise AttributeError(f"tests.mutants has no mutant {name!r}; known: {sorted(_REGISTRY)}") from None
