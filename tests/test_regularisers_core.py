"""Unit tests of jepa_core.regularisers: input errors, the floor, the objective, isolation."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Callable
from functools import partial

import numpy as np
import pytest

import jepa_core as jc
from jepa_core.protocols import FloatArray
from jepa_core.regularisers import Regulariser

_Z = np.zeros((4, 3))
_D = jc.sigreg_directions(3, 2, seed=0)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: jc.vicreg_variance(np.zeros(3)), "expected"),
        (lambda: jc.vicreg_variance(np.zeros((0, 3))), "expected"),
        (lambda: jc.vicreg_variance(_Z, gamma=-1.0), "gamma"),
        (lambda: jc.vicreg_variance(_Z, eps=-1e-4), "eps"),
        (lambda: jc.vicreg_covariance(np.zeros((2, 0))), "expected"),
        (lambda: jc.sigreg(np.zeros((2, 4, 3)), _D), "SIGReg expects"),
        (lambda: jc.sigreg(_Z, np.zeros(3)), "directions"),
        (lambda: jc.sigreg(_Z, np.zeros((3, 0))), "M >= 1"),
        (lambda: jc.sigreg(_Z, np.zeros((2, 5))), "D must match"),
        (lambda: jc.sigreg(_Z, _D, knots=np.array([1.0, 0.0])), "strictly increasing"),
        (lambda: jc.sigreg(_Z, _D, knots=np.array([0.0])), ">= 2 points"),
        (lambda: jc.sigreg(_Z, _D, knots=np.zeros((2, 2))), "1-D"),
        (lambda: jc.epps_pulley(np.zeros(4)), "projections"),
        (lambda: jc.sigreg_directions(0, 4, seed=0), "at least one"),
        (lambda: jc.sigreg_floor(np.array([0.0, np.inf])), "finite"),
        (lambda: jc.regularised_objective(1.0, _Z, [(-0.5, jc.vicreg_covariance)]), "weights must be >= 0"),
        (lambda: jc.regularised_objective(1.0, _Z, [(math.nan, jc.vicreg_covariance)]), "weights must be >= 0"),
    ],
)
def test_bad_arguments_name_the_culprit(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_floor_is_the_integral_and_the_mean_statistic_of_normal_samples() -> None:
    """sigreg_floor is sqrt(2 pi) - sqrt(2 pi / 3) on a fine grid, and the mean statistic of normal draws."""
    fine = np.linspace(-12.0, 12.0, 4001)
    assert jc.sigreg_floor(fine) == pytest.approx(math.sqrt(2 * math.pi) - math.sqrt(2 * math.pi / 3), rel=1e-9)
    for rows in (8, 64):
        samples = np.random.default_rng(rows).standard_normal((rows, 4000))  # 4000 independent samples of N(0, 1)
        assert jc.epps_pulley(samples).mean() == pytest.approx(jc.sigreg_floor(), rel=0.05)


def test_sigreg_is_the_mean_statistic_of_the_projections() -> None:
    z = np.random.default_rng(0).standard_normal((16, 3))
    per_direction = jc.epps_pulley(z @ _D)
    assert per_direction.shape == (2,)
    assert jc.sigreg(z, _D) == pytest.approx(per_direction.mean(), rel=1e-15)


def test_directions_are_unit_and_a_function_of_their_arguments() -> None:
    d = jc.sigreg_directions(5, 7, seed=3)
    assert d.shape == (5, 7) and d.dtype == np.float64
    np.testing.assert_allclose(np.linalg.norm(d, axis=0), 1.0, rtol=1e-15)
    np.testing.assert_array_equal(d, jc.sigreg_directions(5, 7, seed=3))
    assert not np.array_equal(d, jc.sigreg_directions(5, 7, seed=4))


def test_default_knots_are_read_only() -> None:
    assert jc.DEFAULT_KNOTS.shape == (17,) and jc.DEFAULT_KNOTS[0] == -5.0 and jc.DEFAULT_KNOTS[-1] == 5.0
    with pytest.raises(ValueError, match="read-only"):
        jc.DEFAULT_KNOTS[0] = 0.0


def test_one_row_batch_takes_the_population_variance() -> None:
    """A single row has variance 0, so the hinge is gamma - sqrt(eps); its covariance is 0."""
    one = np.array([[1.0, -2.0, 3.0]])
    assert jc.vicreg_variance(one, gamma=1.0) == pytest.approx(1.0 - math.sqrt(jc.VICREG_EPS), rel=1e-15)
    assert jc.vicreg_covariance(one) == 0.0


def test_regularised_objective_adds_weighted_terms() -> None:
    z = np.random.default_rng(1).standard_normal((32, 3))
    terms: list[tuple[float, Regulariser[FloatArray]]] = [
        (1.0, jc.vicreg_variance),
        (0.04, jc.vicreg_covariance),
        (0.5, partial(jc.sigreg, directions=_D)),
    ]
    expected = 0.25 + jc.vicreg_variance(z) + 0.04 * jc.vicreg_covariance(z) + 0.5 * jc.sigreg(z, _D)
    assert jc.regularised_objective(0.25, z, terms) == pytest.approx(expected, rel=1e-15)
    assert jc.regularised_objective(0.25, z, []) == 0.25
    assert jc.regularised_objective(0.25, z, [(0.0, jc.vicreg_variance)]) == 0.25


def test_import_does_not_pull_in_torch() -> None:
    code = "import sys, jepa_core, jepa_core.regularisers; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
