"""Representation regularisers: functions of a batch of embeddings, added to the loss.

The JEPA objective alone is minimised by a constant encoder (every input mapped to
one point makes every prediction easy). A *regulariser* is a non-negative function
of a batch of embeddings that is small when the embeddings spread and large when
they collapse; training minimises the prediction loss plus a weighted sum of them:

    regularised_objective(loss, z, [(w_1, r_1), ...]) = loss + Σ_i w_i · r_i(z)

Two families are specified here, both over embeddings ``z: (N, D)`` (N samples,
D features):

- **VICReg** (Bardes, Ponce & LeCun 2022): a hinge on each feature's standard
  deviation (:func:`vicreg_variance`) and a penalty on the off-diagonal
  covariances (:func:`vicreg_covariance`).
- **SIGReg** (LeJEPA, Balestriero & LeCun 2025): the embeddings projected on M
  unit directions, each projection compared with the standard normal by the
  Epps-Pulley statistic, a weighted distance between the empirical and the
  normal characteristic functions (:func:`epps_pulley`, :func:`sigreg`).

Every function is pure numpy and a function of its arguments alone; the
directions of SIGReg are an argument, drawn by :func:`sigreg_directions`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

import numpy as np

from .protocols import FloatArray

__all__ = [
    "DEFAULT_KNOTS",
    "VICREG_EPS",
    "Regulariser",
    "epps_pulley",
    "regularised_objective",
    "sigreg",
    "sigreg_directions",
    "sigreg_floor",
    "vicreg_covariance",
    "vicreg_variance",
]

Embeddings_contra = TypeVar("Embeddings_contra", contravariant=True)


class Regulariser(Protocol[Embeddings_contra]):
    """A non-negative function of a batch of embeddings."""

    def __call__(self, embeddings: Embeddings_contra, /) -> float:
        """Return the regulariser's value on ``embeddings``.

        Args:
            embeddings: ``(N, D)`` embeddings, one row per sample.

        Returns:
            A non-negative float. It *must* be invariant to the order of the rows
            (a batch is a set of samples) and *should* be larger for collapsed
            embeddings than for spread ones.
        """
        ...


VICREG_EPS = 1e-4
"""The epsilon under VICReg's square root: it keeps the hinge's gradient finite at collapse."""

DEFAULT_KNOTS: FloatArray = np.linspace(-5.0, 5.0, 17)
"""The default integration knots of the Epps-Pulley statistic: 17 points on ``[-5, 5]``."""
DEFAULT_KNOTS.flags.writeable = False


def _as_rows(embeddings: FloatArray) -> FloatArray:
    """Flatten ``(..., D)`` to ``(n, D)``, checking that there is at least one row and feature."""
    z = np.asarray(embeddings, dtype=np.float64)
    if z.ndim < 2 or z.size == 0:
        raise ValueError(f"embeddings of shape {z.shape}: expected (..., N, D) with N >= 1 and D >= 1")
    out: FloatArray = z.reshape(-1, z.shape[-1])
    return out


def vicreg_variance(embeddings: FloatArray, gamma: float = 1.0, eps: float = VICREG_EPS) -> float:
    """VICReg's variance term: the mean hinge ``max(0, gamma - std)`` over features.

    With ``z`` the embeddings flattened to ``(n, D)`` over all leading axes, each
    column's variance is the unbiased one (divisor ``n - 1``, as
    ``torch.Tensor.var``); ``std_j = sqrt(var_j + eps)`` and the result is
    ``mean_j max(0, gamma - std_j)``. A batch of one row has no unbiased variance:
    the spec then takes its population variance, 0, so the term is
    ``max(0, gamma - sqrt(eps))``. Backends *must* agree for ``n >= 2`` and *may*
    differ for ``n = 1``.

    Args:
        embeddings: ``(..., D)`` embeddings with at least one leading axis.
        gamma: the target standard deviation; must be non-negative.
        eps: added to each variance under the square root; must be non-negative.

    Returns:
        A float in ``[0, gamma]``; 0 exactly when every column has
        ``sqrt(var + eps) >= gamma``.
    """
    if not gamma >= 0.0:
        raise ValueError(f"gamma={gamma}: the target standard deviation must be >= 0")
    if not eps >= 0.0:
        raise ValueError(f"eps={eps}: the variance epsilon must be >= 0")
    z = _as_rows(embeddings)  # (n, D)
    ddof = 1 if z.shape[0] >= 2 else 0
    std = np.sqrt(z.var(axis=0, ddof=ddof) + eps)  # (D,)
    return float(np.maximum(0.0, gamma - std).mean())


def vicreg_covariance(embeddings: FloatArray) -> float:
    """VICReg's covariance term: the squared off-diagonal covariances, summed, over D.

    With ``z`` the embeddings flattened to ``(n, D)`` and centred per column,
    ``C = z.T @ z / max(n - 1, 1)`` and the result is
    ``Σ_{j != k} C_jk² / D``.

    Args:
        embeddings: ``(..., D)`` embeddings with at least one leading axis.

    Returns:
        A non-negative float; 0 when the columns are empirically uncorrelated.
    """
    z = _as_rows(embeddings)  # (n, D)
    n, d = z.shape
    centred = z - z.mean(axis=0)  # (n, D)
    cov = centred.T @ centred / max(n - 1, 1)  # (D, D)
    off_diagonal = cov[~np.eye(d, dtype=bool)]  # (D * (D - 1),)
    return float(np.sum(off_diagonal**2) / d)


def sigreg_directions(dim: int, num: int, seed: int) -> FloatArray:
    """``num`` directions drawn uniformly on the unit sphere of ``R^dim``.

    The columns of ``np.random.default_rng(seed).standard_normal((dim, num))``,
    each divided by its Euclidean norm. The result is a function of the three
    arguments alone.

    Args:
        dim: the embedding width D; must be >= 1.
        num: the number of directions M; must be >= 1.
        seed: the seed of the draw.

    Returns:
        ``(dim, num)`` float64 directions with unit-norm columns.
    """
    if dim < 1 or num < 1:
        raise ValueError(f"dim={dim}, num={num}: SIGReg needs at least one feature and one direction")
    draws = np.random.default_rng(seed).standard_normal((dim, num))  # (D, M)
    out: FloatArray = draws / np.linalg.norm(draws, axis=0, keepdims=True)
    return out


def _check_knots(knots: FloatArray) -> FloatArray:
    t = np.asarray(knots, dtype=np.float64)
    if t.ndim != 1 or t.size < 2 or not np.all(np.isfinite(t)) or not np.all(np.diff(t) > 0.0):
        raise ValueError(f"knots of shape {t.shape}: expected a 1-D, finite, strictly increasing array of >= 2 points")
    return t


def _trapezoid(values: FloatArray, knots: FloatArray) -> FloatArray:
    """The trapezoid rule over the last axis: ``(..., T), (T,) -> (...)``."""
    out: FloatArray = 0.5 * ((values[..., 1:] + values[..., :-1]) * np.diff(knots)).sum(axis=-1)
    return out


def epps_pulley(projections: FloatArray, knots: FloatArray = DEFAULT_KNOTS) -> FloatArray:
    """The Epps-Pulley statistic of each column of ``projections`` against N(0, 1).

    For one column ``x_1 .. x_N``, with the empirical characteristic function
    ``phi_N(t) = mean_n exp(i t x_n)``, the normal one ``phi(t) = exp(-t²/2)`` and
    the window ``w(t) = exp(-t²/2)``:

        EP(x) = N · ∫ w(t) |phi_N(t) - phi(t)|² dt
        |phi_N(t) - phi(t)|² = (mean_n cos(t x_n) - phi(t))² + (mean_n sin(t x_n))²

    the integral taken by the trapezoid rule over ``knots``. The factor ``N``
    makes the statistic of a normal sample O(1) whatever N (see
    :func:`sigreg_floor`), while any departure from normality grows like N.

    Args:
        projections: ``(N, M)``: M samples of size N, one per column.
        knots: ``(T,)`` strictly increasing integration points, ``T >= 2``.

    Returns:
        ``(M,)`` non-negative statistics, float64.
    """
    x = np.asarray(projections, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"projections of shape {x.shape}: expected (N, M) with N >= 1 and M >= 1")
    t = _check_knots(knots)  # (T,)
    angles = x[:, :, None] * t  # (N, M, T)
    real = np.cos(angles).mean(axis=0)  # (M, T)
    imag = np.sin(angles).mean(axis=0)  # (M, T)
    normal = np.exp(-0.5 * t * t)  # (T,) phi(t), also the window w(t)
    distance = (real - normal) ** 2 + imag**2  # (M, T)
    out: FloatArray = x.shape[0] * _trapezoid(normal * distance, t)
    return out


def sigreg(embeddings: FloatArray, directions: FloatArray, knots: FloatArray = DEFAULT_KNOTS) -> float:
    """SIGReg: the mean Epps-Pulley statistic of the embeddings projected on each direction.

    ``sigreg(z, d) = mean_m epps_pulley(z @ d)[m]``. The directions *should* be
    unit vectors (drawn by :func:`sigreg_directions`): the statistic compares each
    projection with N(0, 1), so a direction of norm ``c`` compares ``z`` with
    N(0, 1 / c²) instead. The function uses them as given.

    Args:
        embeddings: ``(N, D)`` embeddings.
        directions: ``(D, M)`` directions, one per column, ``M >= 1``.
        knots: ``(T,)`` integration points, as :func:`epps_pulley`.

    Returns:
        A non-negative float: about :func:`sigreg_floor` for N(0, I) embeddings,
        growing like N for any other distribution.
    """
    z = np.asarray(embeddings, dtype=np.float64)
    d = np.asarray(directions, dtype=np.float64)
    if z.ndim != 2 or z.shape[0] < 1:
        raise ValueError(f"embeddings of shape {z.shape}: SIGReg expects (N, D) with N >= 1")
    if d.ndim != 2 or d.shape[1] < 1:
        raise ValueError(f"directions of shape {d.shape}: expected (D, M) with M >= 1")
    if d.shape[0] != z.shape[1]:
        raise ValueError(f"directions of shape {d.shape} for embeddings of width D={z.shape[1]}: D must match")
    return float(np.mean(epps_pulley(z @ d, knots)))  # (N, M) projections


def sigreg_floor(knots: FloatArray = DEFAULT_KNOTS) -> float:
    """The expected Epps-Pulley statistic of N i.i.d. N(0, 1) samples, for any N.

    Each ``exp(i t x_n)`` has mean ``phi(t)`` and ``E|exp(i t x_n)|² = 1``, so the
    empirical characteristic function is unbiased with variance

        E|phi_N(t) - phi(t)|² = (1 - phi(t)²) / N = (1 - exp(-t²)) / N.

    The statistic is linear in ``|phi_N - phi|²`` (the trapezoid rule included),
    so its expectation is ``N · ∫ w(t) (1 - exp(-t²)) / N dt``:

        floor = ∫ exp(-t²/2) (1 - exp(-t²)) dt

    by the trapezoid rule over ``knots``; over the whole line it would be
    ``sqrt(2π) - sqrt(2π/3) ≈ 1.0594``. It is also the expected SIGReg of N(0, I)
    embeddings with unit directions, since each projection is then N(0, 1).

    Args:
        knots: ``(T,)`` integration points, as :func:`epps_pulley`.

    Returns:
        The floor, a positive float.
    """
    t = _check_knots(knots)
    return float(_trapezoid(np.exp(-0.5 * t * t) * (1.0 - np.exp(-t * t)), t))


def regularised_objective(
    jepa_loss_value: float,
    embeddings: FloatArray,
    terms: Sequence[tuple[float, Regulariser[FloatArray]]],
) -> float:
    """The JEPA loss plus a weighted sum of regularisers of one batch of embeddings.

    ``jepa_loss_value + Σ_i weight_i · regulariser_i(embeddings)``. A regulariser
    that needs more than the embeddings (SIGReg's directions) is bound first,
    e.g. ``functools.partial(sigreg, directions=d)``.

    Args:
        jepa_loss_value: the prediction loss (in training, its mean form).
        embeddings: the batch the regularisers see, ``(N, D)``.
        terms: ``(weight, regulariser)`` pairs; every weight must be >= 0.

    Returns:
        The regularised objective, a float.
    """
    for weight, _ in terms:
        if not weight >= 0.0:
            raise ValueError(f"regulariser weight {weight}: weights must be >= 0")
    return float(jepa_loss_value + sum(weight * float(term(embeddings)) for weight, term in terms))
