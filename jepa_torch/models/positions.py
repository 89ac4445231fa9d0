"""Fixed sine-cosine position embeddings, 1-D (sequences), 2-D (patch grids) and 3-D (tubelet grids).

The formulas follow the official I-JEPA code (itself from MAE): for a width ``D`` and an integer
position ``p``, frequency ``k`` in ``0 .. D/2 - 1`` is ``omega_k = 10000 ** -(k / (D/2))`` and the
embedding is ``[sin(p * omega), cos(p * omega)]`` (all sines first, then all cosines).

On a 2-D grid of ``H`` rows and ``W`` columns the tokens are numbered in raster order,
``n = row * W + col`` (the order of ``Conv2d(...).flatten(2)``). The first ``D/2`` channels encode the
**column** and the last ``D/2`` the **row**: the official code builds its mesh with the width axis
first, so its half named ``emb_h`` in fact holds the column. We reproduce that order exactly, so that
tensors computed here equal the ``pos_embed`` buffers stored in official checkpoints.

Everything is computed in float64 with numpy, as the official code does, and cast to float32 once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch

__all__ = ["sincos_1d", "sincos_2d", "sincos_3d", "sincos_pos_embed"]


def _sincos_from_positions(dim: int, positions: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Sine-cosine embedding of arbitrary positions.

    Args:
        dim: embedding width; must be even.
        positions: positions ``(M,)``.

    Returns:
        ``(M, dim)`` float64: ``[sin(p * omega), cos(p * omega)]``.
    """
    omega = np.arange(dim // 2, dtype=np.float64) / (dim / 2.0)  # (dim/2,)
    omega = 1.0 / 10000.0**omega  # (dim/2,)
    angles = np.outer(positions.reshape(-1), omega)  # (M, dim/2)
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)  # (M, dim)


def sincos_1d(dim: int, length: int) -> torch.Tensor:
    """1-D sine-cosine embedding of the positions ``0 .. length - 1``.

    Args:
        dim: embedding width; must be even.
        length: number of positions; must be positive.

    Returns:
        ``(length, dim)`` float32.

    Raises:
        ValueError: if ``dim`` is odd or ``length`` is not positive.
    """
    if dim <= 0 or dim % 2 != 0:
        raise ValueError(f"1-D sin-cos position embedding needs an even positive width, got dim={dim}")
    if length <= 0:
        raise ValueError(f"1-D sin-cos position embedding needs length >= 1, got length={length}")
    emb = _sincos_from_positions(dim, np.arange(length, dtype=np.float64))  # (L, dim)
    return torch.from_numpy(emb).float()


def _spread(n: int, over: int) -> npt.NDArray[np.float64]:
    """``n`` positions evenly over ``0 .. over - 1`` (``0 .. n - 1`` exactly when ``n == over``)."""
    if n == over:
        return np.arange(n, dtype=np.float64)
    if n == 1:
        return np.array([(over - 1) / 2.0])
    return np.arange(n, dtype=np.float64) * ((over - 1) / (n - 1))


def sincos_2d(dim: int, rows: int, cols: int, span: tuple[int, int] | None = None) -> torch.Tensor:
    """2-D sine-cosine embedding of a ``rows x cols`` grid in raster order.

    With ``span=(R, C)`` the ``rows x cols`` grid is laid evenly over the positions of an ``R x C``
    grid: row ``i`` sits at ``i * (R - 1) / (rows - 1)`` (the centre, ``(R - 1) / 2``, for one row),
    and so for columns. An image of another size than the one a model was built for thus sees the
    same range of positions, as interpolating a learned table would give, but computed exactly.
    ``span=(rows, cols)`` (or None) is the plain integer grid.

    Args:
        dim: embedding width; must be a multiple of 4.
        rows: grid height; positive.
        cols: grid width; positive.
        span: the grid whose positions ``rows x cols`` spread over (None: ``(rows, cols)``).

    Returns:
        ``(rows * cols, dim)`` float32; channels ``[:dim/2]`` encode the column, ``[dim/2:]`` the row.

    Raises:
        ValueError: if ``dim`` is not a multiple of 4 or the grid is empty.
    """
    if dim <= 0 or dim % 4 != 0:
        raise ValueError(f"2-D sin-cos position embedding needs a width divisible by 4, got dim={dim}")
    if rows <= 0 or cols <= 0:
        raise ValueError(f"2-D sin-cos position embedding needs a non-empty grid, got {rows}x{cols}")
    span_rows, span_cols = (rows, cols) if span is None else span
    row_idx, col_idx = np.meshgrid(_spread(rows, span_rows), _spread(cols, span_cols), indexing="ij")  # (rows, cols)
    emb_col = _sincos_from_positions(dim // 2, col_idx.reshape(-1))  # (rows*cols, dim/2)
    emb_row = _sincos_from_positions(dim // 2, row_idx.reshape(-1))  # (rows*cols, dim/2)
    emb = np.concatenate([emb_col, emb_row], axis=1)  # (rows*cols, dim)
    return torch.from_numpy(emb).float()


def sincos_3d(dim: int, grid: Sequence[int], uniform_power: bool = False,
              span: Sequence[int] | None = None) -> torch.Tensor:
    """3-D sine-cosine embedding of a ``(T, H, W)`` tubelet grid in raster order (the V-JEPA layout).

    Channels hold ``[frame, row, column]`` in that order. Without ``uniform_power`` the frame gets
    ``dim / 2`` channels and row and column ``dim / 4`` each; with it each gets
    ``2 * ceil(dim / 6)`` and the concatenation is cut to ``dim`` (so the column may lose a few).
    Unlike the 2-D layout, the row half really encodes the row here (the official 3-D mesh is built
    in ``[t, h, w]`` order). With ``span=(T', H', W')`` rows and columns spread over the span's range
    as in :func:`sincos_2d`; frames keep integer positions, so a shorter clip sees the first frames'
    positions (what cutting the stored table gives).

    Raises:
        ValueError: a width the split cannot use (a multiple of 8 without ``uniform_power``, even with
            it) or an empty grid.
    """
    frames, rows, cols = (int(v) for v in grid)
    if min(frames, rows, cols) <= 0:
        raise ValueError(f"3-D sin-cos position embedding needs a non-empty grid, got {tuple(grid)}")
    if uniform_power:
        each = int(math.ceil(dim / 6) * 2)
        widths = (each, each, each)
    else:
        widths = (dim // 2, dim // 4, dim // 4)
    if dim <= 0 or any(w <= 0 or w % 2 for w in widths) or (not uniform_power and dim % 8):
        need = "an even width" if uniform_power else "a width divisible by 8"
        raise ValueError(f"3-D sin-cos position embedding needs {need}, got dim={dim}")
    _, span_rows, span_cols = (frames, rows, cols) if span is None else (int(v) for v in span)
    t_idx, r_idx, c_idx = np.meshgrid(np.arange(frames, dtype=np.float64), _spread(rows, span_rows),
                                      _spread(cols, span_cols), indexing="ij")  # each (T, H, W)
    parts = [_sincos_from_positions(w, idx.reshape(-1)) for w, idx in zip(widths, (t_idx, r_idx, c_idx))]
    emb = np.concatenate(parts, axis=1)[:, :dim]  # (T*H*W, dim)
    return torch.from_numpy(emb).float()


def sincos_pos_embed(dim: int, grid: Sequence[int], span: Sequence[int] | None = None) -> torch.Tensor:
    """Sine-cosine embedding for a 1-D sequence or a 2-D grid, with a leading batch axis.

    Args:
        dim: embedding width (even for 1-D, a multiple of 4 for 2-D).
        grid: ``(length,)`` or ``(rows, cols)``.
        span: for a 2-D grid, the grid whose positions it spreads over (see :func:`sincos_2d`).

    Returns:
        ``(1, prod(grid), dim)`` float32, ready to be added to tokens ``(B, N, dim)``.

    Raises:
        ValueError: for a grid of another rank, or a width the rank cannot use.
    """
    if len(grid) == 1:
        emb = sincos_1d(dim, grid[0])  # (L, dim)
    elif len(grid) == 2:
        emb = sincos_2d(dim, grid[0], grid[1], None if span is None else (span[0], span[1]))  # (H*W, dim)
    else:
        raise ValueError(f"position grid must be (length,) or (rows, cols), got {tuple(grid)}")
    return emb.unsqueeze(0)  # (1, N, dim)
