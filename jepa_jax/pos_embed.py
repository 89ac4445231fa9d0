"""Fixed sine-cosine position embeddings, 1-D (sequences) and 2-D (patch grids), as numpy tables.

The official I-JEPA formulas (from MAE): for a width ``D`` and an integer position ``p``, frequency
``k`` in ``0 .. D/2 - 1`` is ``omega_k = 10000 ** -(k / (D/2))`` and the embedding is
``[sin(p * omega), cos(p * omega)]``. On a 2-D grid the first ``D/2`` channels encode the column and
the last ``D/2`` the row, tokens in raster order. The tables are computed in float64 and rounded
through float32 once, as the official buffers (and ``jepa_torch``'s) are, so an initialised model
here holds the very ``pos_embed`` values of a checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

__all__ = ["sincos_pos_embed"]


def _sincos(dim: int, positions: NDArray[np.float64]) -> NDArray[np.float64]:
    """``(M,)`` positions -> ``(M, dim)`` float64: ``[sin(p * omega), cos(p * omega)]``."""
    omega = 1.0 / 10000.0 ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2.0))  # (dim/2,)
    angles = np.outer(positions, omega)  # (M, dim/2)
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)  # (M, dim)


def sincos_pos_embed(dim: int, grid: Sequence[int]) -> NDArray[np.float64]:
    """The position table of a 1-D sequence ``(length,)`` or a 2-D grid ``(rows, cols)``: ``(1, N, dim)``.

    Values are float32-rounded, held in float64.

    Raises:
        ValueError: for an odd width (1-D), a width not divisible by 4 (2-D), an empty grid or another rank.
    """
    if len(grid) == 1:
        if dim <= 0 or dim % 2 or grid[0] <= 0:
            raise ValueError(f"1-D sin-cos positions need an even width and a length >= 1, got dim={dim}, grid={grid}")
        emb = _sincos(dim, np.arange(grid[0], dtype=np.float64))  # (L, dim)
    elif len(grid) == 2:
        rows, cols = grid
        if dim <= 0 or dim % 4 or rows <= 0 or cols <= 0:
            raise ValueError(f"2-D sin-cos positions need a width divisible by 4 and a non-empty grid, "
                             f"got dim={dim}, grid={tuple(grid)}")
        row, col = np.meshgrid(np.arange(rows, dtype=np.float64), np.arange(cols, dtype=np.float64), indexing="ij")
        emb = np.concatenate([_sincos(dim // 2, col.reshape(-1)), _sincos(dim // 2, row.reshape(-1))], axis=1)
    else:
        raise ValueError(f"position grid must be (length,) or (rows, cols), got {tuple(grid)}")
    return emb.astype(np.float32).astype(np.float64)[None]  # (1, N, dim)
