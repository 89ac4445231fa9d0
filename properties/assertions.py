"""Assertions and ten-line numpy oracles of the law suite.

Each assertion names the law and prints the numbers involved, so a failure reads
as a counter-example; Hypothesis adds the shrunk inputs and a reproduction blob.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

REL = 1e-9
ABS = 1e-9


def assert_close(actual: float, expected: float, law: str, rel: float = REL, abs_: float = ABS) -> None:
    """``actual`` equals ``expected`` up to float64 rounding, or the law fails."""
    if not math.isclose(actual, expected, rel_tol=rel, abs_tol=abs_):
        raise AssertionError(f"{law}: {actual!r} != {expected!r} (diff {actual - expected:.3e})")


def assert_array_close(actual: NDArray[Any], expected: NDArray[Any], law: str, tol: float = 1e-9) -> None:
    """Elementwise closeness of two arrays of the same shape."""
    if np.shape(actual) != np.shape(expected):
        raise AssertionError(f"{law}: shape {np.shape(actual)} != {np.shape(expected)}")
    if not np.allclose(actual, expected, rtol=tol, atol=tol):
        worst = float(np.max(np.abs(np.asarray(actual) - np.asarray(expected))))
        raise AssertionError(f"{law}: arrays differ by up to {worst:.3e}\nactual={actual}\nexpected={expected}")


# --- oracles: written independently of jepa_core, from the definitions -------


def oracle_elementwise(target: NDArray[np.float64], pred: NDArray[np.float64], kind: str) -> NDArray[np.float64]:
    """Smooth-L1 (beta 1) or squared error, elementwise."""
    d = np.abs(pred - target)
    if kind == "l2":
        return d**2
    return np.where(d < 1.0, 0.5 * d**2, d - 0.5)


def oracle_block_loss(
    predictions: list[NDArray[np.float64]],
    targets: NDArray[np.float64],
    blocks: list[NDArray[np.int64]],
    kind: str,
) -> float:
    """The formal sum, one block after another, with an explicit gather loop."""
    total = 0.0
    for pred, block in zip(predictions, blocks, strict=True):
        for b in range(block.shape[0]):
            for j, pos in enumerate(block[b]):
                total += float(oracle_elementwise(targets[b, pos], pred[b, j], kind).sum())
    return total


def oracle_layer_norm(x: NDArray[np.float64], eps: float = 1e-5) -> NDArray[np.float64]:
    """Zero mean, unit (biased) variance over the last axis."""
    mu = x.mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(x.var(-1, keepdims=True) + eps)  # type: ignore[no-any-return]


def oracle_vicreg_variance(z: NDArray[np.float64], gamma: float, eps: float) -> float:
    """Mean over columns of ``max(0, gamma - sqrt(unbiased variance + eps))``, column by column."""
    rows = z.reshape(-1, z.shape[-1])
    n = rows.shape[0]
    hinges = []
    for column in rows.T:
        deviation = column - column.sum() / n
        std = math.sqrt(float(deviation @ deviation) / (n - 1) + eps)
        hinges.append(max(0.0, gamma - std))
    return sum(hinges) / len(hinges)


def oracle_vicreg_covariance(z: NDArray[np.float64]) -> float:
    """Sum over ``j != k`` of numpy's sample covariance ``C_jk²``, divided by D."""
    rows = z.reshape(-1, z.shape[-1])
    dim = rows.shape[1]
    cov = np.cov(rows, rowvar=False).reshape(dim, dim)
    return sum(float(cov[j, k]) ** 2 for j in range(dim) for k in range(dim) if j != k) / dim


def _trapezoid_loop(values: NDArray[np.float64], knots: NDArray[np.float64]) -> float:
    return sum(0.5 * float(values[i] + values[i + 1]) * float(knots[i + 1] - knots[i]) for i in range(len(knots) - 1))


def oracle_sigreg(z: NDArray[np.float64], directions: NDArray[np.float64], knots: NDArray[np.float64]) -> float:
    """Mean over directions of ``N ∫ w |ecf - phi|²``, the ECF as a mean of complex exponentials."""
    projections = z @ directions  # (N, M)
    normal = np.exp(-(knots**2) / 2.0)  # (T,) phi(t) and the window w(t)
    statistics = []
    for x in projections.T:
        ecf = np.exp(1j * np.outer(knots, x)).mean(axis=1)  # (T,) complex
        statistics.append(len(x) * _trapezoid_loop(normal * np.abs(ecf - normal) ** 2, knots))
    return sum(statistics) / len(statistics)


def oracle_sigreg_floor(knots: NDArray[np.float64]) -> float:
    """E[N ∫ w |ecf - phi|²] for N(0, 1) samples: ``∫ (exp(-t²/2) - exp(-3t²/2)) dt`` by trapezoids."""
    return _trapezoid_loop(np.exp(-(knots**2) / 2.0) - np.exp(-1.5 * knots**2), knots)
