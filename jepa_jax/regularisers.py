"""VICReg's variance and covariance terms and SIGReg, in JAX (the spec's ``jepa_core.regularisers``).

Each function takes a batch of embeddings and returns a differentiable 0-d array, eagerly or under
``jax.jit``. Argument checks that read only shapes and Python numbers raise here; the knots'
values (finite, strictly increasing) are checked by :func:`check_knots` on concrete arrays.

SIGReg's directions come from JAX's own generator (:func:`sigreg_directions`, threefry keyed by the
seed): uniform on the sphere like the spec's draw, a function of ``(dim, num, seed)`` alone, and
different from it value for value, which the spec allows.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from jepa_core.regularisers import DEFAULT_KNOTS, VICREG_EPS

__all__ = [
    "DEFAULT_KNOTS",
    "VICREG_EPS",
    "check_knots",
    "check_variance_args",
    "epps_pulley",
    "sigreg",
    "sigreg_directions",
    "vicreg_covariance",
    "vicreg_variance",
]


def _rows(embeddings: Array) -> Array:
    """Flatten ``(..., D)`` to ``(n, D)``, with at least one row and one feature."""
    if embeddings.ndim < 2 or embeddings.size == 0:
        raise ValueError(f"embeddings of shape {tuple(embeddings.shape)}: expected (..., N, D) with N >= 1 and D >= 1")
    return embeddings.reshape(-1, embeddings.shape[-1])  # (n, D)


def check_variance_args(gamma: float | Array, eps: float | Array) -> None:
    """Raise ``ValueError`` for a negative ``gamma`` or ``eps`` given as Python numbers (traced ones pass)."""
    if isinstance(gamma, (int, float)) and not gamma >= 0.0:
        raise ValueError(f"gamma={gamma}: the target standard deviation must be >= 0")
    if isinstance(eps, (int, float)) and not eps >= 0.0:
        raise ValueError(f"eps={eps}: the variance epsilon must be >= 0")


def vicreg_variance(embeddings: Array, gamma: float | Array = 1.0, eps: float | Array = VICREG_EPS) -> Array:
    """VICReg's variance hinge: ``mean_j max(0, gamma - sqrt(var_j + eps))`` over the ``(n, D)`` rows.

    The variance is the unbiased one, or the population one (0) for a single row, as the spec.

    Args:
        embeddings: ``(..., D)`` embeddings, flattened over the leading axes.
        gamma: the target standard deviation, ``>= 0``.
        eps: added to each variance under the square root, ``>= 0``.
    """
    check_variance_args(gamma, eps)
    z = _rows(embeddings)  # (n, D)
    n = z.shape[0]
    centred = z - jnp.mean(z, axis=0)  # (n, D)
    var = jnp.sum(centred * centred, axis=0) / max(n - 1, 1)  # (D,)
    return jnp.mean(jnp.maximum(0.0, gamma - jnp.sqrt(var + eps)))


def vicreg_covariance(embeddings: Array) -> Array:
    """VICReg's covariance penalty: ``Σ_{j != k} C_jk² / D`` with ``C = zᵀz / max(n - 1, 1)`` of centred rows."""
    z = _rows(embeddings)  # (n, D)
    n, d = z.shape
    centred = z - jnp.mean(z, axis=0)  # (n, D)
    cov = centred.T @ centred / max(n - 1, 1)  # (D, D)
    off_diagonal = jnp.where(jnp.eye(d, dtype=bool), 0.0, cov)  # (D, D)
    return jnp.sum(off_diagonal * off_diagonal) / d


def check_knots(knots: Array) -> None:
    """Raise ``ValueError`` unless the concrete ``knots`` are 1-D, finite, strictly increasing, >= 2 points."""
    t = np.asarray(knots, dtype=np.float64)
    if t.ndim != 1 or t.size < 2 or not np.all(np.isfinite(t)) or not np.all(np.diff(t) > 0.0):
        raise ValueError(f"knots of shape {t.shape}: expected a 1-D, finite, strictly increasing array of >= 2 points")


def _trapezoid(values: Array, knots: Array) -> Array:
    """The trapezoid rule over the last axis: ``(..., T), (T,) -> (...)``."""
    return 0.5 * jnp.sum((values[..., 1:] + values[..., :-1]) * jnp.diff(knots), axis=-1)


def epps_pulley(projections: Array, knots: Array) -> Array:
    """The Epps-Pulley statistic of each column of ``projections`` against N(0, 1): ``(N, M) -> (M,)``.

    ``N · ∫ w(t) |phi_N(t) - phi(t)|² dt`` with ``phi(t) = w(t) = exp(-t²/2)``, the empirical
    characteristic function ``phi_N`` split into its cosine and sine means, and the integral taken
    by the trapezoid rule over ``knots`` ``(T,)``.
    """
    if projections.ndim != 2 or projections.shape[0] < 1 or projections.shape[1] < 1:
        raise ValueError(f"projections of shape {tuple(projections.shape)}: expected (N, M) with N >= 1 and M >= 1")
    if knots.ndim != 1 or knots.shape[0] < 2:
        raise ValueError(f"knots of shape {tuple(knots.shape)}: expected a 1-D array of >= 2 points")
    angles = projections[:, :, None] * knots  # (N, M, T)
    real = jnp.mean(jnp.cos(angles), axis=0)  # (M, T)
    imag = jnp.mean(jnp.sin(angles), axis=0)  # (M, T)
    normal = jnp.exp(-0.5 * knots * knots)  # (T,) phi(t), also the window w(t)
    distance = (real - normal) ** 2 + imag**2  # (M, T)
    return projections.shape[0] * _trapezoid(normal * distance, knots)  # (M,)


def sigreg(embeddings: Array, directions: Array, knots: Array | None = None, valid: Array | None = None) -> Array:
    """SIGReg: the mean Epps-Pulley statistic of ``embeddings (N, D)`` projected on ``directions (D, M)``.

    The directions are used as given (never renormalised); ``knots`` default to the spec's 17 points
    on ``[-5, 5]``. ``valid`` ``(M,)``: None, or False at padded directions, which the mean leaves out
    (a static number of directions under ``jax.jit``). Zero columns appended to the embeddings with
    zero rows to the directions, or knots that repeat the last one, change nothing.
    """
    t = jnp.asarray(DEFAULT_KNOTS) if knots is None else knots
    if embeddings.ndim != 2 or embeddings.shape[0] < 1:
        raise ValueError(f"embeddings of shape {tuple(embeddings.shape)}: SIGReg expects (N, D) with N >= 1")
    if directions.ndim != 2 or directions.shape[1] < 1:
        raise ValueError(f"directions of shape {tuple(directions.shape)}: expected (D, M) with M >= 1")
    if directions.shape[0] != embeddings.shape[1]:
        raise ValueError(f"directions of shape {tuple(directions.shape)} for embeddings of width "
                         f"D={embeddings.shape[1]}: D must match")
    statistics = epps_pulley(embeddings @ directions, t)  # (M,) of the (N, M) projections
    if valid is None:
        return jnp.mean(statistics)
    return jnp.sum(jnp.where(valid, statistics, 0.0)) / jnp.sum(valid)


DRAW_FLOOR = 8
"""The smallest side of :func:`sigreg_directions`' draw."""


def _draw_size(n: int) -> int:
    """The power of two ``>= max(n, DRAW_FLOOR)``: a draw's side for ``n`` entries."""
    return 1 << (max(n, DRAW_FLOOR) - 1).bit_length()


@partial(jax.jit, static_argnums=(0, 1))
def _unit_columns(rows: int, cols: int, key: Array, dim: Array) -> Array:
    """A ``(rows, cols)`` standard normal draw, its rows from ``dim`` on zeroed, each column divided by its norm."""
    draws = jax.random.normal(key, (rows, cols), jnp.float64)  # (R, C)
    kept = jnp.where(jnp.arange(rows)[:, None] < dim, draws, 0.0)  # (R, C)
    out: Array = kept / jnp.linalg.norm(kept, axis=0, keepdims=True)
    return out


def sigreg_directions(dim: int, num: int, seed: int | Array) -> Array:
    """``num`` directions uniform on the unit sphere of ``R^dim``: ``(dim, num)`` float64, unit columns.

    The top-left ``(dim, num)`` block of a standard normal draw of ``jax.random.key(seed)`` of shape
    ``(s(dim), s(num))``, ``s(n)`` the power of two ``>= max(n, 8)``, each column divided by its norm.
    Independent normal entries make every column uniform on the sphere whatever the block; drawing
    at bucketed sides lets one compiled program serve every size up to ``8 x 8`` (and each bucket above).

    Args:
        dim: the embedding width D, >= 1.
        num: the number of directions M, >= 1.
        seed: an integer seed, or a JAX key (e.g. split from the training step's key).
    """
    if dim < 1 or num < 1:
        raise ValueError(f"dim={dim}, num={num}: SIGReg needs at least one feature and one direction")
    is_key = isinstance(seed, jax.Array) and jnp.issubdtype(seed.dtype, jax.dtypes.prng_key)
    key = seed if is_key else jax.random.key(seed)
    columns: Array = _unit_columns(_draw_size(dim), _draw_size(num), key, jnp.asarray(dim))  # (s(dim), s(num))
    return columns[:dim, :num]
