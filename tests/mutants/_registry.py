"""The registry of mutant backends: each one bug, the Backend member it breaks, the laws that catch it."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar

T = TypeVar("T", bound=type)


@dataclass(frozen=True)
class Mutant:
    """A broken backend and what the law suite must say about it.

    Attributes:
        key: the attribute name, ``--jepa-backend=tests.mutants.<module>:<key>`` (see :attr:`spec`).
        member: the Backend member (or mask law) the bug sits in.
        caught_by: the laws that must fail on it (each one, not just one of them).
        factory: builds the backend (its class), on first use.
        module: the module that defines it.
    """

    key: str
    member: str
    caught_by: tuple[str, ...]
    factory: Callable[[], Any]
    module: str

    @property
    def spec(self) -> str:
        """``module:key``: loading it imports only the mutant's own module (the mask and loss mutants never
        import torch), where ``tests.mutants:<key>`` imports every mutant module first."""
        return f"{self.module}:{self.key}"

    @cached_property
    def backend(self) -> Any:
        """The backend object, built once."""
        return self.factory()


MUTANTS: dict[str, Mutant] = {}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def mutant(member: str, *caught_by: str) -> Callable[[T], T]:
    """Register a mutant backend class under its snake-case name; it is instantiated when first used."""
    if not caught_by:
        raise ValueError(f"a mutant of {member} must name the laws that catch it")

    def register(cls: T) -> T:
        key = _snake(cls.__name__)
        if key in MUTANTS:
            raise ValueError(f"two mutants named {key}")
        MUTANTS[key] = Mutant(key, member, tuple(caught_by), cls, cls.__module__)
        return cls

    return register


def backend_getter(module: str) -> Callable[[str], Any]:
    """A module's ``__getattr__``: its mutants' backends by key, so ``module:key`` is a backend spec."""

    def getattr_(name: str) -> Any:
        found = MUTANTS.get(name)
        if found is None or found.module != module:
            raise AttributeError(f"{module} has no mutant {name!r}")
        return found.backend

    return getattr_
