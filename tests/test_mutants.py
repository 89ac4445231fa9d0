"""Meta-tests: the law suite must fail on each mutant backend, at the law the bug breaks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# mutant -> the laws that must catch it
EXPECTED = {
    "mean_instead_of_sum": ["test_jepaLoss_append", "test_mean_is_sum_normalised"],
    "reads_leading_tokens": ["test_jepaLoss_target_ext", "test_nonnegative_and_matches_oracle"],
    "masks_by_multiplication": ["test_unselected_targets_never_read"],
    "swapped_momentum": ["test_momentum_one_keeps_target", "test_momentum_zero_copies_context"],
    "predictor_sees_all_blocks": ["test_objective_jepaLoss_nil_append_reverse"],
    "decreasing_momentum": ["test_momentum_non_decreasing_to_its_end"],
    "torch_predictor_rows_misordered": ["test_objective_jepaLoss_nil_append_reverse"],
    "sigreg_without_batch_factor": ["test_sigreg_gaussian_near_floor", "test_sigreg_departure_grows_with_batch",
                                    "test_sigreg_nonnegative_and_matches_oracle"],
    "sigreg_without_window": ["test_sigreg_gaussian_near_floor", "test_sigreg_nonnegative_and_matches_oracle"],
    "sigreg_cosine_only": ["test_sigreg_gaussian_near_floor", "test_sigreg_rejects_shift",
                           "test_sigreg_nonnegative_and_matches_oracle"],
    "unnormalised_directions": ["test_sigreg_directions_unit_columns", "test_sigreg_directions_isotropic"],
    "vicreg_without_eps": ["test_vicreg_variance_of_collapse", "test_vicreg_variance_nonnegative_and_matches_oracle"],
}


def _run_suite(backend: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HYPOTHESIS_PROFILE="mutant", PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "properties", f"--jepa-backend={backend}", "-q",
         "-p", "no:cacheprovider", "-o", "addopts=", "-rf"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )


@pytest.mark.parametrize("mutant", sorted(EXPECTED))
def test_suite_rejects_mutant(mutant: str) -> None:
    result = _run_suite(f"tests.mutants:{mutant}")
    failed = {line.split("::")[-1].split(" ")[0] for line in result.stdout.splitlines() if line.startswith("FAILED")}
    assert result.returncode == 1, f"suite exit {result.returncode} on mutant {mutant}:\n{result.stdout[-2000:]}"
    missing = [law for law in EXPECTED[mutant] if law not in failed]
    assert not missing, f"mutant {mutant} escaped {missing}; failed laws were {sorted(failed)}"


@pytest.mark.parametrize("backend", ["jepa_core.reference:backend", "jepa_torch.backend:backend"])
def test_suite_accepts_correct_backends(backend: str) -> None:
    """The control: the same invocation passes on the correct backends."""
    result = _run_suite(backend)
    assert result.returncode == 0, result.stdout[-3000:]


def test_suite_refuses_to_run_without_backend() -> None:
    env = {k: v for k, v in os.environ.items() if k != "JEPA_BACKEND"}
    result = subprocess.run([sys.executable, "-m", "pytest", "properties", "-q", "-p", "no:cacheprovider"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "needs a backend" in result.stdout + result.stderr
