"""Which mask configs a grid can satisfy, decided before any draw.

:func:`validate` rejects a (grid, config) that no outcome can satisfy, with one line naming the
field; :func:`max_context_keep` is the most context patches any outcome keeps. The sampler
(:mod:`jepa_core.masks`) plans every draw from the same analysis (:func:`analyse`), so every
accepted config samples in bounded work.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
from numpy.typing import NDArray

from .mask_config import Grid, MaskConfig

__all__ = ["Plan", "analyse", "max_context_keep", "overlap_free", "validate"]

BoolArray: TypeAlias = NDArray[np.bool_]

@dataclass(frozen=True)
class Plan:
    """What validation learns about a (grid, config): placement grid and a witness."""

    place: Grid  # the grid blocks are placed in: (H, W), or (H - 1, W - 1) with exclusive_bound
    target: tuple[int, int]  # a target size that, used by every slot, admits a valid context
    context: tuple[int, int]
    best_keep: int  # the most context patches any outcome can keep


def _reachable(grid: Grid, place: Grid, scale: tuple[float, float], aspect: tuple[float, float],
               config: MaskConfig) -> BoolArray:
    """Closure of the block sizes a draw can give: ``R[h, w]`` for ``1 <= h, w`` within ``place``.

    An over-approximation (boundaries included), so a config rejected because of
    it is rejected rightly.
    """
    n_cells = grid[0] * grid[1]
    lo, hi = scale[0] * n_cells, scale[1] * n_cells
    if config.floor_area:
        lo, hi = float(math.floor(lo)), float(math.floor(hi))
    out = np.zeros((place[0] + 1, place[1] + 1), dtype=bool)
    if hi <= 0.0:
        return out
    if grid[0] == 1:  # 1-D: h = 1, w = round(area)
        w = np.arange(max(1, math.ceil(lo - 0.5)), math.floor(hi + 0.5) + 1)
        h = np.ones_like(w)
    else:
        hs = np.arange(1, math.ceil(math.sqrt(hi * aspect[1])) + 2)[:, None]
        ws = np.arange(1, math.ceil(math.sqrt(hi / aspect[0])) + 2)[None, :]
        x0, x1, y0, y1 = np.log(hs - 0.5), np.log(hs + 0.5), np.log(ws - 0.5), np.log(ws + 0.5)
        p0, p1 = math.log(max(lo, 1e-300)), math.log(hi)
        q0, q1 = math.log(aspect[0]), math.log(aspect[1])
        # exists x in [x0,x1], y in [y0,y1] with x + y in [p0,p1], x - y in [q0,q1] (log h, log w)
        x_lo = np.maximum(np.maximum(x0, y0 + q0), np.maximum(p0 - y1, (p0 + q0) / 2))
        x_hi = np.minimum(np.minimum(x1, p1 - y0), np.minimum(y1 + q1, (p1 + q1) / 2))
        hh, ww = np.nonzero(x_lo <= x_hi + 1e-9)
        h, w = hh + 1, ww + 1
    if config.exclusive_bound:
        h, w = np.minimum(h, place[0]), np.minimum(w, place[1])
    fits = (h <= place[0]) & (w <= place[1])
    out[h[fits], w[fits]] = True
    return out


def overlap_free(config: MaskConfig) -> bool:
    """True when the context only needs its own block to be big enough."""
    return config.allow_overlap or config.relax_overlap


@functools.lru_cache(maxsize=512)
def analyse(grid: Grid, config: MaskConfig) -> Plan:
    h_grid, w_grid = grid
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in grid):
        raise ValueError(f"grid={grid!r}: must be (H, W) with positive integers")
    one_d = h_grid == 1
    place = (h_grid if one_d else h_grid - 1, w_grid - 1) if config.exclusive_bound else grid
    if min(place) < 1:
        raise ValueError(f"MaskConfig.exclusive_bound: grid {h_grid}x{w_grid} leaves no position "
                         "below the exclusive bound; use a larger grid or exclusive_bound=False")
    where = f"on the {h_grid}x{w_grid} grid"
    r_t = _reachable(grid, place, config.target_scale, config.target_aspect, config)
    if not r_t.any():
        raise ValueError(f"MaskConfig.target_scale={config.target_scale}: no target block with aspect "
                         f"{config.target_aspect} fits {where}; change target_scale or target_aspect")
    r_c = _reachable(grid, place, config.context_scale, config.context_aspect, config)
    if not r_c.any():
        raise ValueError(f"MaskConfig.context_scale={config.context_scale}: no context block with aspect "
                         f"{config.context_aspect} fits {where}; change context_scale or context_aspect")
    ch, cw = np.nonzero(r_c)  # (Nc,)
    if overlap_free(config):
        keep = ch * cw  # (Nc,)
        th, tw = np.nonzero(r_t)
        best, t_pick = int(np.argmax(keep)), 0
    else:
        # For each target height the narrowest target overlaps least; the least any
        # placement can overlap is max(0, h + hc - H) * max(0, w + wc - W) (opposite corners).
        th = np.nonzero(r_t.any(axis=1))[0]
        tw = np.argmax(r_t[th], axis=1)
        over = (np.maximum(0, th[None, :] + ch[:, None] - place[0])
                * np.maximum(0, tw[None, :] + cw[:, None] - place[1]))  # (Nc, Nt)
        keep_all = (ch * cw)[:, None] - over
        b_idx, t_idx = np.unravel_index(int(np.argmax(keep_all)), keep_all.shape)
        best, t_pick = int(b_idx), int(t_idx)
        keep = keep_all[:, t_pick]
    best_keep = int(keep[best])
    if best_keep < config.min_keep:
        raise ValueError(f"MaskConfig.min_keep={config.min_keep}: at most {best_keep} context patches can "
                         f"remain after removing the targets {where}; lower min_keep to <= {best_keep}, "
                         "or shrink target_scale / grow context_scale")
    return Plan(place, (int(th[t_pick]), int(tw[t_pick])), (int(ch[best]), int(cw[best])), best_keep)


def validate(grid: Grid, config: MaskConfig) -> None:
    """Reject a (grid, config) that cannot be satisfied, before any draw.

    A config is impossible when no target (or no context) block in its ranges
    fits the grid, or when no outcome it allows keeps ``min_keep`` context
    patches. Every other config is accepted and samples in bounded work.

    Raises:
        ValueError: one line naming the field at fault and the fix.
    """
    analyse(tuple(grid), config)


def max_context_keep(grid: Grid, config: MaskConfig) -> int:
    """The most context patches any outcome of ``config`` can keep on ``grid``.

    Raises:
        ValueError: as :func:`validate`.
    """
    return analyse(tuple(grid), config).best_keep
