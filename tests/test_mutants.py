"""Meta-tests: the law suite must fail on each mutant backend, at the laws the bug breaks.

The suite runs once per mutant in a subprocess (two at a time), on the mutant's named laws alone;
each test then reads its mutant's verdict. ``python -m tests.mutants`` runs the
whole suite on each and prints a table (with the laws of other chapters that also failed).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.mutants import MUTANTS
from tests.mutants.run import ROOT, Outcome, laws_of, run_many, run_suite

CORRECT = ["jepa_core.reference:backend", "jepa_torch.conformance.backend:backend"]


@pytest.fixture(scope="module")
def verdicts() -> dict[str, Outcome]:
    files = {m.spec: laws_of(m.caught_by) for m in MUTANTS.values()}
    return run_many(sorted(files), files=files)


@pytest.mark.parametrize("key", sorted(MUTANTS))
def test_suite_rejects_mutant(key: str, verdicts: dict[str, Outcome]) -> None:
    out = verdicts[MUTANTS[key].spec]
    assert out.returncode == 1, f"suite exit {out.returncode} on mutant {key}:\n{out.output[-2000:]}"
    missing = [law for law in MUTANTS[key].caught_by if law not in out.failed]
    assert not missing, f"mutant {key} escaped {missing}; failed laws were {sorted(out.failed)}"


@pytest.mark.parametrize("backend", CORRECT)
def test_suite_accepts_correct_backends(backend: str) -> None:
    """The control: the same invocation passes on the correct backends."""
    out = run_suite(backend)
    assert out.returncode == 0, out.output[-3000:]


def test_every_backend_member_has_a_mutant() -> None:
    """Each member of the Backend protocol is broken by at least one mutant."""
    from jepa_core.backend import Backend

    members = {name for name in vars(Backend) if not name.startswith("_")} | set(Backend.__annotations__)
    members -= {"name", "asarray", "to_numpy"}
    covered = {m.member.split(".")[0] for m in MUTANTS.values()}
    assert members <= covered, f"members without a mutant: {sorted(members - covered)}"


def test_suite_refuses_to_run_without_backend() -> None:
    env = {k: v for k, v in os.environ.items() if k != "JEPA_BACKEND"}
    result = subprocess.run([sys.executable, "-m", "pytest", "properties", "-q", "-p", "no:cacheprovider"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "needs a backend" in result.stdout + result.stderr
