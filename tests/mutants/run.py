"""Run the law suite on backends in subprocesses and read which laws failed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Outcome:
    """The suite's verdict on one backend."""

    backend: str
    returncode: int
    failed: frozenset[str]
    seconds: float
    output: str


def laws_of(laws: Iterable[str]) -> list[str]:
    """The pytest node ids (``properties/test_*.py::law``) of the given laws, sorted.

    Raises:
        LookupError: a law no file defines (renamed or misspelt in a mutant's registration).
    """
    wanted, found = set(laws), {}
    for path in sorted((ROOT / "properties").glob("test_*.py")):
        for law in re.findall(r"^def (test_\w+)\(", path.read_text(), flags=re.MULTILINE):
            if law in wanted:
                found[law] = f"properties/{path.name}::{law}"
    missing = sorted(wanted - set(found))
    if missing:
        raise LookupError(f"no law-suite file defines {missing}")
    return sorted(found.values())


def run_suite(backend: str, profile: str = "mutant", files: Sequence[str] = ("properties",)) -> Outcome:
    """``pytest <files> --jepa-backend=backend`` under a Hypothesis profile, one thread per process.

    ``files`` defaults to the whole suite; the mutation meta-tests pass a mutant's named laws alone
    (:func:`laws_of`), since no other law can change their verdict.
    """
    env = dict(os.environ, HYPOTHESIS_PROFILE=profile, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", *files, f"--jepa-backend={backend}", "-q",
         "-p", "no:cacheprovider", "-o", "addopts=", "-rf"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    failed = frozenset(line.split("::")[-1].split(" ")[0].split("[")[0]
                       for line in result.stdout.splitlines() if line.startswith("FAILED"))
    return Outcome(backend, result.returncode, failed, time.perf_counter() - start, result.stdout)


def run_many(backends: Iterable[str], workers: int = 2,
             files: Mapping[str, Sequence[str]] | None = None) -> dict[str, Outcome]:
    """:func:`run_suite` on each backend, ``workers`` subprocesses at a time (``files`` per backend, if given)."""
    names = list(backends)

    def one(name: str) -> Outcome:
        return run_suite(name) if files is None else run_suite(name, files=files[name])

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(zip(names, pool.map(one, names), strict=True))
