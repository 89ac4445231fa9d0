"""The registry of mutant backends: each one bug, the Backend member it breaks, the laws that catch it."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T", bound=type)


@dataclass(frozen=True)
class Mutant:
    """A broken backend and what the law suite must say about it.

    Attributes:
        key: the attribute name, ``--jepa-backend=tests.mutants:<key>``.
        member: the Backend member (or mask law) the bug sits in.
        caught_by: the laws that must fail on it (each one, not just one of them).
        backend: the backend object.
    """

    key: str
    member: str
    caught_by: tuple[str, ...]
    backend: Any


MUTANTS: dict[str, Mutant] = {}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def mutant(member: str, *caught_by: str) -> Callable[[T], T]:
    """Register a mutant backend class: it is instantiated once under its snake-case name."""
    if not caught_by:
        raise ValueError(f"a mutant of {member} must name the laws that catch it")

    def register(cls: T) -> T:
        key = _snake(cls.__name__)
        if key in MUTANTS:
            raise ValueError(f"two mutants named {key}")
        MUTANTS[key] = Mutant(key, member, tuple(caught_by), cls())
        return cls

    return register
