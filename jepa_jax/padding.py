"""Static shapes for ragged inputs: pad on the host, mark what is real, compile once.

``jax.jit`` compiles a program per input shape, and JEPA's inputs are ragged: contexts and target
blocks change length from batch to batch (the corrected sampler), or from sample to sample (whole
contexts). The JAX way is to pad them on the host to a few static sizes and pass validity masks,
which the networks and losses honour exactly: a padded context or target entry is never a key in
attention and counts for nothing in the loss, so every real value equals the unpadded one.
:func:`bucket` picks the sizes (powers of two above a floor), :func:`pad_masks` pads index arrays.
Everything here is numpy: padding is data preparation, done before the arrays reach the device.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["bucket", "pad_axis", "pad_masks"]


def bucket(n: int, floor: int = 1) -> int:
    """The static size for ``n`` entries: the smallest power of two ``>= max(n, floor)``."""
    size = max(n, floor, 1)
    return 1 << (size - 1).bit_length()


def pad_axis(x: NDArray[Any], size: int, axis: int = 0, value: Any = 0) -> NDArray[Any]:
    """``x`` padded with ``value`` at the end of ``axis`` to ``size`` entries (a copy; ``size >= x.shape[axis]``)."""
    x = np.asarray(x)
    if size < x.shape[axis]:
        raise ValueError(f"cannot pad axis {axis} of shape {x.shape} down to {size}")
    widths = [(0, 0)] * x.ndim
    widths[axis] = (0, size - x.shape[axis])
    return np.pad(x, widths, constant_values=value)


def pad_masks(masks: Sequence[NDArray[np.int64]], size: int, count: int | None = None,
              batch: int | None = None) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Stack ``M`` index arrays ``(B, K_m)`` into ``(count, batch, size)`` indices and their validity.

    Padded entries hold index 0 (a valid position, so a gather reads finite values) and are False in
    the validity; extra masks (up to ``count``) and extra rows (up to ``batch``) are all padding.

    Args:
        masks: index arrays of one batch size ``B``, any lengths ``K_m <= size``.
        size: the static length.
        count: the static number of masks (default ``M``).
        batch: the static batch size (default ``B``).

    Returns:
        ``(indices, valid)``, both ``(count, batch, size)``.
    """
    rows = batch if batch is not None else (masks[0].shape[0] if masks else 0)
    total = len(masks) if count is None else count
    if total < len(masks) or any(m.ndim != 2 or m.shape[0] > rows or m.shape[1] > size for m in masks):
        raise ValueError(f"masks of shapes {[m.shape for m in masks]} do not fit ({total}, {rows}, {size})")
    indices = np.zeros((total, rows, size), np.int64)
    valid = np.zeros((total, rows, size), bool)
    for i, m in enumerate(masks):
        indices[i, : m.shape[0], : m.shape[1]] = m
        valid[i, : m.shape[0], : m.shape[1]] = True
    return indices, valid
