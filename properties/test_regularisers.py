"""Chapter 2 of the spec: representation regularisers (docs/spec.md, "Regularisers").

Algebraic laws and oracles are properties over drawn batches; statistical laws of
SIGReg use fixed numpy seeds, so they are deterministic. The suite passes the
spec's knots and unit directions (:mod:`jepa_core.regularisers`) to
``backend.sigreg``, and checks the backend's own direction sampler separately.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from jepa_core.regularisers import DEFAULT_KNOTS, sigreg_directions

from .assertions import (
    assert_close,
    oracle_sigreg,
    oracle_sigreg_floor,
    oracle_vicreg_covariance,
    oracle_vicreg_variance,
)
from .strategies import (
    MAX_DIM,
    FloatArray,
    SigregProblem,
    embedding_batches,
    float_arrays,
    gammas,
    orthogonal_matrices,
    sigreg_problems,
    uncorrelated_batches,
    variance_eps,
    wide_batches,
)


def _variance(backend: Any, z: FloatArray, gamma: float, eps: float) -> float:
    return float(backend.vicreg_variance(backend.asarray(z), gamma, eps))


def _covariance(backend: Any, z: FloatArray) -> float:
    return float(backend.vicreg_covariance(backend.asarray(z)))


def _sigreg(backend: Any, z: FloatArray, directions: FloatArray, knots: FloatArray = DEFAULT_KNOTS) -> float:
    return float(backend.sigreg(backend.asarray(z), backend.asarray(directions), backend.asarray(np.array(knots))))


# --- VICReg variance ------------------------------------------------------------


@given(z=embedding_batches(), gamma=gammas, eps=variance_eps, data=st.data())
def test_vicreg_variance_permutation_invariant(
    backend: Any, z: FloatArray, gamma: float, eps: float, data: st.DataObject
) -> None:
    """Reordering the rows of the batch leaves the variance hinge unchanged."""
    order = data.draw(st.permutations(range(z.shape[0])), label="order")
    assert_close(_variance(backend, z[order], gamma, eps), _variance(backend, z, gamma, eps),
                 "variance permutation invariance")


@given(gamma=gammas, eps=variance_eps, data=st.data())
def test_vicreg_variance_zero_above_threshold(backend: Any, gamma: float, eps: float, data: st.DataObject) -> None:
    """Every column with standard deviation >= gamma: the hinge is exactly 0."""
    z = data.draw(wide_batches(gamma), label="embeddings")
    assert _variance(backend, z, gamma, eps) == 0.0


@given(z=embedding_batches(), gamma=gammas, eps=variance_eps)
def test_vicreg_variance_of_collapse(backend: Any, z: FloatArray, gamma: float, eps: float) -> None:
    """Every row equal: each column's std is sqrt(eps), so the hinge is max(0, gamma - sqrt(eps))."""
    collapsed = np.tile(z[:1], (z.shape[0], 1))  # (N, D), every row the first
    assert_close(_variance(backend, collapsed, gamma, eps), max(0.0, gamma - np.sqrt(eps)), "variance at collapse")


@given(z=embedding_batches(), gamma=gammas, eps=variance_eps)
def test_vicreg_variance_nonnegative_and_matches_oracle(backend: Any, z: FloatArray, gamma: float, eps: float) -> None:
    """The variance hinge lies in [0, gamma] and equals a column-by-column oracle
    (unbiased variance, eps under the square root)."""
    value = _variance(backend, z, gamma, eps)
    assert 0.0 <= value <= gamma * (1.0 + 1e-12), f"variance hinge {value!r} outside [0, gamma={gamma!r}]"
    assert_close(value, oracle_vicreg_variance(z, gamma, eps), "variance oracle")


# --- VICReg covariance ----------------------------------------------------------


@given(z=embedding_batches(), data=st.data())
def test_vicreg_covariance_permutation_invariant(backend: Any, z: FloatArray, data: st.DataObject) -> None:
    """Reordering the rows of the batch leaves the covariance penalty unchanged."""
    order = data.draw(st.permutations(range(z.shape[0])), label="order")
    assert_close(_covariance(backend, z[order]), _covariance(backend, z), "covariance permutation invariance")


@given(z=uncorrelated_batches())
def test_vicreg_covariance_zero_when_uncorrelated(backend: Any, z: FloatArray) -> None:
    """Columns with zero empirical cross-covariance (any scales and means): the penalty is 0."""
    assert_close(_covariance(backend, z), 0.0, "covariance of uncorrelated columns", rel=0.0, abs_=1e-12)


@given(z=embedding_batches())
def test_vicreg_covariance_nonnegative_and_matches_oracle(backend: Any, z: FloatArray) -> None:
    """The covariance penalty is >= 0 and equals numpy's sample covariance off the diagonal, squared, over D."""
    value = _covariance(backend, z)
    assert value >= 0.0, f"covariance penalty {value!r} < 0"
    assert_close(value, oracle_vicreg_covariance(z), "covariance oracle")


@given(shape=st.tuples(st.integers(1, 3), st.integers(2, 4), st.integers(1, MAX_DIM)), gamma=gammas, data=st.data())
def test_vicreg_flattens_leading_axes(backend: Any, shape: tuple[int, int, int], gamma: float,
                                      data: st.DataObject) -> None:
    """Tokens ``(B, K, D)`` are regularised as the ``(B * K, D)`` batch of their rows."""
    z = data.draw(float_arrays(shape), label="embeddings")
    flat = z.reshape(-1, shape[-1])
    assert_close(_variance(backend, z, gamma, 1e-4), _variance(backend, flat, gamma, 1e-4), "variance of tokens")
    assert_close(_covariance(backend, z), _covariance(backend, flat), "covariance of tokens")


# --- SIGReg: algebraic laws -------------------------------------------------------


@given(p=sigreg_problems(), data=st.data())
def test_sigreg_permutation_invariant(backend: Any, p: SigregProblem, data: st.DataObject) -> None:
    """Reordering the rows of the batch leaves SIGReg unchanged."""
    order = data.draw(st.permutations(range(p.embeddings.shape[0])), label="order")
    assert_close(_sigreg(backend, p.embeddings[order], p.directions, p.knots),
                 _sigreg(backend, p.embeddings, p.directions, p.knots), "SIGReg permutation invariance")


@given(p=sigreg_problems())
def test_sigreg_negation_invariant(backend: Any, p: SigregProblem) -> None:
    """SIGReg of -z equals SIGReg of z: N(0, 1) is symmetric, and so is the statistic."""
    assert_close(_sigreg(backend, -p.embeddings, p.directions, p.knots),
                 _sigreg(backend, p.embeddings, p.directions, p.knots), "SIGReg negation invariance")


@given(p=sigreg_problems(), data=st.data())
def test_sigreg_orthogonal_invariant(backend: Any, p: SigregProblem, data: st.DataObject) -> None:
    """Rotating the embeddings (z Q) and the directions (Q^T d) together leaves SIGReg unchanged."""
    q = data.draw(orthogonal_matrices(p.embeddings.shape[1]), label="Q")
    assert_close(_sigreg(backend, p.embeddings @ q, q.T @ p.directions, p.knots),
                 _sigreg(backend, p.embeddings, p.directions, p.knots), "SIGReg orthogonal invariance",
                 rel=1e-9, abs_=1e-9)


@given(p=sigreg_problems(), data=st.data())
def test_sigreg_nonnegative_and_matches_oracle(backend: Any, p: SigregProblem, data: st.DataObject) -> None:
    """SIGReg is >= 0 and equals an oracle built on complex exponentials, for unit directions
    and for any others (a backend uses the directions as given, never renormalised)."""
    shape = (p.embeddings.shape[1], data.draw(st.integers(1, 4), label="M"))
    directions = data.draw(st.just(p.directions) | float_arrays(shape, bound=2.0), label="directions")
    value = _sigreg(backend, p.embeddings, directions, p.knots)
    assert value >= 0.0, f"SIGReg {value!r} < 0"
    assert_close(value, oracle_sigreg(p.embeddings, directions, p.knots), "SIGReg oracle")


# --- SIGReg: statistical laws (fixed seeds) ----------------------------------------

STAT_DIM = 8
STAT_DIRECTIONS = 16
STAT_BATCH = 256
FLOOR_TOLERANCE = 0.3  # relative; the mean of 16 draws has a relative spread of about 0.08
REJECTION_FACTOR = 10.0  # N(0, I) draws at N = 256 reach at most about 1.8 x the floor


def _stat_directions() -> FloatArray:
    return sigreg_directions(STAT_DIM, STAT_DIRECTIONS, seed=0)


def _normal(rows: int, seed: int) -> FloatArray:
    out: FloatArray = np.random.default_rng(seed).standard_normal((rows, STAT_DIM))
    return out


def _assert_rejected(backend: Any, z: FloatArray, what: str) -> None:
    value, floor = _sigreg(backend, z, _stat_directions()), oracle_sigreg_floor(np.array(DEFAULT_KNOTS))
    assert value > REJECTION_FACTOR * floor, (
        f"SIGReg of {what} is {value:.4g}, not above {REJECTION_FACTOR} x the N(0, I) floor {floor:.4g}"
    )


def test_sigreg_gaussian_near_floor(backend: Any) -> None:
    """N(0, I) batches score about the floor E = ∫ w (1 - exp(-t²)) dt at N = 64, 256 and 1024 alike.

    The mean over 16 draws is within 30% of the floor at each N: the statistic of
    normal samples neither shrinks nor grows with the batch (the factor N).
    """
    floor = oracle_sigreg_floor(np.array(DEFAULT_KNOTS))
    for rows in (64, 256, 1024):
        mean = float(np.mean([_sigreg(backend, _normal(rows, 1000 * rows + s), _stat_directions()) for s in range(16)]))
        assert abs(mean / floor - 1.0) < FLOOR_TOLERANCE, f"N={rows}: mean SIGReg {mean:.4g} vs floor {floor:.4g}"


def test_sigreg_departure_grows_with_batch(backend: Any) -> None:
    """A fixed non-normal law, N(0, 9 I), scores about 4x more at 4x the batch (1024 vs 256)."""
    small, large = (
        float(np.mean([_sigreg(backend, 3.0 * _normal(rows, s), _stat_directions()) for s in range(4)]))
        for rows in (256, 1024)
    )
    assert 3.0 < large / small < 5.0, f"SIGReg of N(0, 9 I): {small:.4g} at N=256, {large:.4g} at N=1024"


def test_sigreg_rejects_collapse(backend: Any) -> None:
    """Every row equal (a collapsed encoder) scores far above the floor."""
    point = _normal(1, seed=1)  # (1, D)
    _assert_rejected(backend, np.tile(point, (STAT_BATCH, 1)), "a collapsed batch")


def test_sigreg_rejects_scaled_gaussian(backend: Any) -> None:
    """N(0, 9 I), the right shape at the wrong scale, scores far above the floor."""
    _assert_rejected(backend, 3.0 * _normal(STAT_BATCH, seed=2), "N(0, 9 I)")


def test_sigreg_rejects_rank_one(backend: Any) -> None:
    """Embeddings on one line (``g_n · u``, g standard normal, u a unit vector) score far above the floor."""
    line = _normal(2, seed=3)
    u = line[1] / np.linalg.norm(line[1])  # (D,)
    g = np.random.default_rng(3).standard_normal((STAT_BATCH, 1))
    _assert_rejected(backend, g * u, "a rank-1 batch")


def test_sigreg_rejects_shift(backend: Any) -> None:
    """N(0.5, I), a shifted mean, scores far above the floor (this needs the sine part)."""
    _assert_rejected(backend, _normal(STAT_BATCH, seed=4) + 0.5, "N(0.5, I)")


# --- the backend's directions ------------------------------------------------------


@given(dim=st.integers(1, 6), num=st.integers(1, 8), seed=st.integers(0, 2**32 - 1))
def test_sigreg_directions_unit_columns(backend: Any, dim: int, num: int, seed: int) -> None:
    """The backend's directions are ``(dim, num)`` with unit-norm columns."""
    d = np.asarray(backend.to_numpy(backend.sigreg_directions(dim, num, seed)), dtype=np.float64)
    assert d.shape == (dim, num), f"directions of shape {d.shape}, expected {(dim, num)}"
    norms = np.linalg.norm(d, axis=0)
    assert np.allclose(norms, 1.0, rtol=0.0, atol=1e-6), f"direction norms {norms} are not 1"


@given(dim=st.integers(2, 6), num=st.integers(1, 8), seed=st.integers(0, 2**32 - 2))
def test_sigreg_directions_pure_in_seed(backend: Any, dim: int, num: int, seed: int) -> None:
    """The same seed gives the same directions; another seed gives others."""
    first, again, other = (backend.to_numpy(backend.sigreg_directions(dim, num, s)) for s in (seed, seed, seed + 1))
    np.testing.assert_array_equal(first, again, err_msg=f"seed {seed} gave two different draws")
    assert not np.array_equal(first, other), f"seeds {seed} and {seed + 1} gave the same directions"


def test_sigreg_directions_isotropic(backend: Any) -> None:
    """4096 directions in R^4 have mean about 0 and second moment about I / 4 (uniform on the sphere)."""
    d = np.asarray(backend.to_numpy(backend.sigreg_directions(4, 4096, 0)), dtype=np.float64)  # (4, 4096)
    mean, moment = d.mean(axis=1), d @ d.T / d.shape[1]  # (4,), (4, 4)
    assert np.all(np.abs(mean) < 0.05), f"mean direction {mean} is not about 0"
    assert np.all(np.abs(moment - np.eye(4) / 4) < 0.03), f"second moment\n{moment}\nis not about I / 4"
