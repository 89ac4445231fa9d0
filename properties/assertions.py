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
