"""Run the law suite on backends in subprocesses and read which laws failed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterable
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


def run_suite(backend: str, profile: str = "mutant") -> Outcome:
    """``pytest properties --jepa-backend=backend`` under a Hypothesis profile, one thread per process."""
    env = dict(os.environ, HYPOTHESIS_PROFILE=profile, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "properties", f"--jepa-backend={backend}", "-q",
         "-p", "no:cacheprovider", "-o", "addopts=", "-rf"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    failed = frozenset(line.split("::")[-1].split(" ")[0].split("[")[0]
                       for line in result.stdout.splitlines() if line.startswith("FAILED"))
    return Outcome(backend, result.returncode, failed, time.perf_counter() - start, result.stdout)


def run_many(backends: Iterable[str], workers: int = 2) -> dict[str, Outcome]:
    """:func:`run_suite` on each backend, ``workers`` subprocesses at a time."""
    names = list(backends)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(zip(names, pool.map(run_suite, names), strict=True))
