"""V-JEPA's multi-block masks over a ``(T, H, W)`` grid of tubelets.

A *mask configuration* (:class:`VideoMaskConfig`) draws ``num_blocks`` boxes per sample. Each box
spans ``t`` consecutive tubelet frames and an ``h x w`` spatial rectangle: ``t`` is
``round(temporal_scale * T)`` (at least 1; ``temporal_scale = 1`` is every frame), and ``h, w`` are
``round(sqrt(area * aspect))`` and ``round(sqrt(area / aspect))`` with ``area = spatial_scale * H * W``,
the scale, aspect and temporal scale drawn independently and uniformly from their ranges. The
*target* of the sample is the union of its boxes; the *context* is every other token of the first
``context_frames`` frames (all of them by default), and it keeps at least ``min_keep`` tokens. One
flat index space, ``t * H * W + row * W + col`` (the order of ``Conv3d(...).flatten(2)``), so the
loss laws of the spec hold unchanged. V-JEPA 2 trains with two configurations per batch, short-range
(8 blocks of 0.15) and long-range (2 blocks of 0.7): :func:`sample_video_masks` draws a list of them
from one generator.

How a batch is drawn (docs/masks.md gives the reasoning):

1. One box size per block slot per batch (so every sample of a batch faces the same law), drawn
   from the configured law *conditioned on the draw being satisfiable*: every box fits the grid
   and some placement leaves ``min_keep`` context tokens. Vectorised candidates, a bounded number
   of rounds, then the witness found by validation.
2. Boxes are placed uniformly over every position (inclusive bounds) in time and space. A sample
   whose context keeps fewer than ``min_keep`` tokens gets its boxes redrawn (bounded rounds), then
   stacked in one corner, which is valid by construction. Nothing loops without bound.
3. Targets (unions) and contexts differ in length between samples. ``trim="batch_min"`` cuts each to
   the batch's shortest at random (never in raster order, which would drop late frames and bottom
   rows); ``trim="none"`` keeps every token, pads rows to the longest and reports each row's length.

A 2-D grid ``(H, W)`` is the grid ``(1, H, W)`` and a sequence ``(L,)`` the grid ``(1, 1, L)``: the
same law on images and sequences. :func:`jepa_core.masks.sample_masks` takes this config too, so the
sampler keeps one vocabulary for 1-D, 2-D and 3-D.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
from numpy.typing import NDArray

from .mask_config import CONTEXT_TRIMS, ContextTrim, MaskBatch, MaskConfig
from .mask_validation import _reachable

__all__ = [
    "VIDEO_OFFICIAL_FLAGS",
    "Grid3",
    "VideoMaskConfig",
    "as_grid3",
    "sample_video_masks",
    "validate_video",
    "vjepa2_configs",
]

Grid3: TypeAlias = tuple[int, int, int]
"""A tubelet grid ``(T, H, W)``."""

BoolArray: TypeAlias = NDArray[np.bool_]
IntArray: TypeAlias = NDArray[np.int64]

VIDEO_OFFICIAL_FLAGS = ("floor_size", "shared_block_size", "raster_trim")
"""The :class:`VideoMaskConfig` fields that each reproduce one behaviour of the official collator."""

_SIZE_ROUNDS = 8  # rounds of vectorised candidate sizes before the witness
_SIZE_CANDIDATES = 32  # candidate size sets per round
_PLACE_ROUNDS = 16  # rounds of re-placement before the stacked placement


def _error(name: str, value: object, rule: str) -> ValueError:
    return ValueError(f"VideoMaskConfig.{name}={value!r}: {rule}")


def _check_range(name: str, value: object, upper: float) -> None:
    pair = value if isinstance(value, tuple) and len(value) == 2 else None
    ok = pair is not None and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in pair)
    if pair is None or not ok or not (0.0 < pair[0] <= pair[1] <= upper and math.isfinite(pair[1])):
        bound = "<= 1" if upper == 1.0 else "finite"
        raise _error(name, value, f"must be a tuple (low, high) with 0 < low <= high, {bound}")


@dataclass(frozen=True)
class VideoMaskConfig:
    """One mask configuration of V-JEPA: the law of its boxes; grid-free, checked on construction.

    Whether a grid can satisfy it is :func:`validate_video`'s question, asked before every draw.

    Attributes:
        num_blocks: boxes per sample (official ``num_blocks``), at least 1.
        spatial_scale: ``(low, high)`` share of a frame's ``H * W`` tokens per box, ``<= 1``.
        temporal_scale: ``(low, high)`` share of the ``T`` frames a box spans, ``<= 1``
            (``(1, 1)``: every frame, V-JEPA's default).
        aspect: ``(low, high)`` height / width of a box's spatial rectangle.
        context_frames: the context lies in the first ``max(1, floor(context_frames * T))``
            frames (official ``max_temporal_keep``; 1.0 = every frame).
        min_keep: the context *must* keep at least this many tokens (the official only requires
            a non-empty context: 1).
        trim: ``"batch_min"``: contexts and targets cut to the batch's shortest, at random;
            ``"none"``: whole, padded, with lengths (see :class:`jepa_core.masks.MaskBatch`).
        floor_size: official sizing: ``t = max(1, int(scale_t * T))`` and area
            ``int(scale * H * W)`` floored, where we round.
        shared_block_size: official: one box size for every block of a configuration (we draw
            one per block slot).
        raster_trim: official: the cut to the batch's shortest keeps the *first* tokens in raster
            order, so the last frames and bottom rows of long targets and contexts are dropped.
    """

    num_blocks: int = 8
    spatial_scale: tuple[float, float] = (0.15, 0.15)
    temporal_scale: tuple[float, float] = (1.0, 1.0)
    aspect: tuple[float, float] = (0.75, 1.5)
    context_frames: float = 1.0
    min_keep: int = 1
    trim: ContextTrim = "batch_min"
    floor_size: bool = False
    shared_block_size: bool = False
    raster_trim: bool = False

    def __post_init__(self) -> None:
        for name in ("num_blocks", "min_keep"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise _error(name, value, "must be an integer >= 1")
        _check_range("spatial_scale", self.spatial_scale, 1.0)
        _check_range("temporal_scale", self.temporal_scale, 1.0)
        _check_range("aspect", self.aspect, math.inf)
        cf = self.context_frames
        if isinstance(cf, bool) or not isinstance(cf, (int, float)) or not 0.0 < cf <= 1.0:
            raise _error("context_frames", cf, "must be a number in (0, 1]")
        if self.trim not in CONTEXT_TRIMS:
            raise _error("trim", self.trim, "must be 'batch_min' or 'none'")
        for name in VIDEO_OFFICIAL_FLAGS:
            if not isinstance(getattr(self, name), bool):
                raise _error(name, getattr(self, name), "must be True or False")

    @classmethod
    def official_compatible(cls, **fields: Any) -> VideoMaskConfig:
        """The official collator's law: every official flag on (``min_keep`` defaults to 1, as there)."""
        return cls(**{**dict.fromkeys(VIDEO_OFFICIAL_FLAGS, True), **fields})


def vjepa2_configs(**fields: Any) -> list[VideoMaskConfig]:
    """V-JEPA 2's two configurations: short-range (8 blocks of 0.15) and long-range (2 of 0.7).

    Both span every frame with aspect ``(0.75, 1.5)``; ``fields`` override both (e.g. ``trim``).
    """
    return [VideoMaskConfig(**{"num_blocks": 8, "spatial_scale": (0.15, 0.15), **fields}),
            VideoMaskConfig(**{"num_blocks": 2, "spatial_scale": (0.7, 0.7), **fields})]


def as_grid3(grid: Sequence[int]) -> Grid3:
    """``(L,) -> (1, 1, L)``, ``(H, W) -> (1, H, W)``, ``(T, H, W)`` unchanged; rejects anything else."""
    dims = tuple(grid)
    if not 1 <= len(dims) <= 3 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1
                                      for v in dims):
        raise ValueError(f"grid={grid!r}: must be (L,), (H, W) or (T, H, W) with positive integers")
    t, h, w = (1,) * (3 - len(dims)) + tuple(int(v) for v in dims)
    return t, h, w


@dataclass(frozen=True)
class _Plan:
    context_frames: int  # frames [0, Tc) hold the context
    t_range: tuple[int, int]  # reachable temporal extents, inclusive
    witness: tuple[int, int, int]  # a box size that, in every slot, admits a valid context
    best_keep: int


def _extent(t_grid: int, scale: float, floor: bool) -> int:
    raw = math.floor(scale * t_grid) if floor else round(scale * t_grid)
    return min(t_grid, max(1, int(raw)))


def _stacked_overlap(t: IntArray, h: IntArray, w: IntArray, grid: Grid3, tc: int) -> IntArray:
    """Context tokens covered by boxes ``(..., M)`` stacked in one spatial corner, ending at the last frame.

    The boxes' union is a staircase; returned per leading index: ``(...)``.
    """
    frames, rows, cols = np.arange(grid[0]), np.arange(grid[1]), np.arange(grid[2])
    in_t = (frames >= grid[0] - t[..., None]) & (frames < tc)  # (..., M, T)
    in_r = rows < h[..., None]  # (..., M, H)
    in_c = cols < w[..., None]  # (..., M, W)
    cover = (in_t[..., :, None, None] & in_r[..., None, :, None] & in_c[..., None, None, :]).any(axis=-4)
    out: IntArray = cover.reshape(*cover.shape[:-3], -1).sum(axis=-1)
    return out


@functools.lru_cache(maxsize=256)
def _analyse(grid: Grid3, config: VideoMaskConfig) -> _Plan:
    t_grid, h_grid, w_grid = grid
    tc = max(1, int(math.floor(config.context_frames * t_grid)))
    t_lo = _extent(t_grid, config.temporal_scale[0], config.floor_size)
    t_hi = _extent(t_grid, config.temporal_scale[1], config.floor_size)
    spatial = MaskConfig(target_scale=config.spatial_scale, target_aspect=config.aspect,
                         floor_area=config.floor_size)
    reach = _reachable((h_grid, w_grid), (h_grid, w_grid), config.spatial_scale, config.aspect, spatial)
    where = f"on the {t_grid}x{h_grid}x{w_grid} grid"
    if not reach.any():
        raise _error("spatial_scale", config.spatial_scale,
                     f"no box with aspect {config.aspect} fits a {h_grid}x{w_grid} frame {where}; "
                     "change spatial_scale or aspect")
    hs, ws = np.nonzero(reach)
    smallest = int(np.argmin(hs * ws))
    h, w = int(hs[smallest]), int(ws[smallest])
    covered = int(_stacked_overlap(np.array([t_lo]), np.array([h]), np.array([w]), grid, tc))
    best_keep = tc * h_grid * w_grid - covered
    if best_keep == 0:
        raise _error("spatial_scale", config.spatial_scale,
                     f"the smallest blocks of temporal_scale {config.temporal_scale} cover every context token "
                     f"{where}; shrink spatial_scale / temporal_scale, or widen context_frames")
    if best_keep < config.min_keep:
        raise _error("min_keep", config.min_keep,
                     f"at most {best_keep} context tokens can remain after removing the blocks {where}; "
                     f"lower min_keep to <= {best_keep}, or shrink spatial_scale / temporal_scale")
    return _Plan(tc, (t_lo, t_hi), (t_lo, h, w), best_keep)


def validate_video(grid: Sequence[int], config: VideoMaskConfig) -> int:
    """Reject a (grid, config) that no draw can satisfy, before any draw; return the most context any keeps.

    Raises:
        ValueError: one line naming the field at fault and the fix.
    """
    return _analyse(as_grid3(grid), config).best_keep


def _draw_sizes(rng: np.random.Generator, grid: Grid3, config: VideoMaskConfig,
                count: int) -> tuple[IntArray, IntArray, IntArray]:
    """``count`` box sizes ``(t, h, w)`` from the law: scale, aspect and temporal scale independent."""
    t_grid, h_grid, w_grid = grid
    u_s, u_a, u_t = rng.random(count), rng.random(count), rng.random(count)
    lo, hi = config.spatial_scale
    area = (lo + u_s * (hi - lo)) * (h_grid * w_grid)
    ts = config.temporal_scale[0] + u_t * (config.temporal_scale[1] - config.temporal_scale[0])
    if config.floor_size:
        area, t = np.floor(area), np.floor(ts * t_grid)
    else:
        t = np.rint(ts * t_grid)
    t = np.clip(t, 1, t_grid)
    ratio = config.aspect[0] + u_a * (config.aspect[1] - config.aspect[0])
    if h_grid == 1:
        h, w = np.ones(count), np.rint(area)
    else:
        h, w = np.rint(np.sqrt(area * ratio)), np.rint(np.sqrt(area / ratio))
    return t.astype(np.int64), h.astype(np.int64), w.astype(np.int64)


def _choose_sizes(rng: np.random.Generator, grid: Grid3, plan: _Plan,
                  config: VideoMaskConfig) -> tuple[IntArray, IntArray, IntArray]:
    """One satisfiable size set: ``(M,)`` extents, heights and widths."""
    m, c = config.num_blocks, _SIZE_CANDIDATES
    slots = 1 if config.shared_block_size else m
    for _ in range(_SIZE_ROUNDS):
        t, h, w = (np.broadcast_to(a.reshape(c, slots), (c, m)) for a in _draw_sizes(rng, grid, config, c * slots))
        ok = ((h >= 1) & (w >= 1) & (h <= grid[1]) & (w <= grid[2])).all(axis=1)  # (C,)
        keep = plan.context_frames * grid[1] * grid[2] - _stacked_overlap(
            np.minimum(t, grid[0]), np.clip(h, 0, grid[1]), np.clip(w, 0, grid[2]), grid, plan.context_frames)
        ok &= keep >= config.min_keep
        if ok.any():
            i = int(np.argmax(ok))
            return t[i].copy(), h[i].copy(), w[i].copy()
    return tuple(np.full(m, v, dtype=np.int64) for v in plan.witness)  # type: ignore[return-value]


def _boxes(start: IntArray, top: IntArray, left: IntArray, t: IntArray, h: IntArray, w: IntArray,
           grid: Grid3) -> BoolArray:
    """Union of the boxes of each sample: positions ``(B, M)``, sizes ``(M,)`` -> ``(B, T, H, W)``."""
    frames, rows, cols = np.arange(grid[0]), np.arange(grid[1]), np.arange(grid[2])
    in_t = (frames >= start[..., None]) & (frames < (start + t)[..., None])  # (B, M, T)
    in_r = (rows >= top[..., None]) & (rows < (top + h)[..., None])  # (B, M, H)
    in_c = (cols >= left[..., None]) & (cols < (left + w)[..., None])  # (B, M, W)
    cells: BoolArray = in_t[..., :, None, None] & in_r[..., None, :, None] & in_c[..., None, None, :]
    out: BoolArray = cells.any(axis=1)  # type: ignore[assignment]  # (B, T, H, W); numpy's stub says bool | array
    return out


def _place(rng: np.random.Generator, t: IntArray, h: IntArray, w: IntArray, grid: Grid3, plan: _Plan,
           config: VideoMaskConfig, batch: int) -> tuple[IntArray, BoolArray, BoolArray]:
    """Box positions ``(B, M, 3)`` (start, top, left), the union ``(B, T, H, W)`` and the context."""
    m = t.size
    hi = np.stack([grid[0] - t, grid[1] - h, grid[2] - w])  # (3, M) inclusive upper bounds
    pos = rng.integers(0, hi[None] + 1, size=(batch, 3, m))  # (B, 3, M)
    frames = np.arange(grid[0])[None, :, None, None] < plan.context_frames  # (1, T, 1, 1)
    union = _boxes(pos[:, 0], pos[:, 1], pos[:, 2], t, h, w, grid)
    context = ~union & frames
    bad = context.reshape(batch, -1).sum(axis=1) < config.min_keep
    for attempt in range(_PLACE_ROUNDS + 1):
        if not bad.any():
            break
        idx = np.nonzero(bad)[0]
        if attempt < _PLACE_ROUNDS:
            pos[idx] = rng.integers(0, hi[None] + 1, size=(idx.size, 3, m))
        else:  # stacked in a random spatial corner, ending at the last frame: valid by construction
            corner = rng.integers(0, 4, size=(idx.size, 1))
            pos[idx, 0] = grid[0] - t
            pos[idx, 1] = np.where(corner // 2 == 1, grid[1] - h, 0)
            pos[idx, 2] = np.where(corner % 2 == 1, grid[2] - w, 0)
        union[idx] = _boxes(pos[idx, 0], pos[idx, 1], pos[idx, 2], t, h, w, grid)
        context[idx] = ~union[idx] & frames
        bad[idx] = context[idx].reshape(idx.size, -1).sum(axis=1) < config.min_keep
    if bad.any():
        raise RuntimeError("video masks: stacked placement left too small a context (a bug, please report)")
    return pos.transpose(0, 2, 1), union, context


def _sample_one(rng: np.random.Generator, grid: Grid3, config: VideoMaskConfig, batch: int) -> MaskBatch:
    from .masks import _pad, _trim

    plan = _analyse(grid, config)
    t, h, w = _choose_sizes(rng, grid, plan, config)
    pos, union, context = _place(rng, t, h, w, grid, plan, config, batch)
    sizes = np.broadcast_to(np.stack([t, h, w], axis=1), pos.shape)  # (B, M, 3)
    boxes = np.concatenate([pos, sizes], axis=2).astype(np.int64)  # (B, M, 6)
    flat_ctx: BoolArray = context.reshape(batch, -1)
    flat_tgt: BoolArray = union.reshape(batch, -1)
    if config.trim == "none":
        (ctx,), (ctx_len,) = _pad([flat_ctx])
        (tgt,), (tgt_len,) = _pad([flat_tgt])
        return MaskBatch([ctx], [tgt], grid, [ctx_len], target_lengths=[tgt_len], boxes=boxes)
    (ctx,) = _trim(rng, [flat_ctx], config.raster_trim)
    (tgt,) = _trim(rng, [flat_tgt], config.raster_trim)
    return MaskBatch([ctx], [tgt], grid, boxes=boxes)


def _as_rng(rng: np.random.Generator | int) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng={rng!r}: pass a numpy Generator or an integer seed")


def sample_video_masks(grid: Sequence[int], configs: VideoMaskConfig | Sequence[VideoMaskConfig],
                       rng: np.random.Generator | int, batch_size: int) -> list[MaskBatch]:
    """Draw the masks of one batch for each mask configuration, in order, from one generator.

    Args:
        grid: ``(T, H, W)`` tubelets (or ``(H, W)``, ``(L,)``: see :func:`as_grid3`).
        configs: one configuration or several (V-JEPA 2: :func:`vjepa2_configs`); each is
            validated on ``grid`` before anything is drawn.
        rng: a numpy Generator (advanced) or an integer seed: the same seed *must* give the
            same masks.
        batch_size: ``B >= 1``.

    Returns:
        One :class:`MaskBatch` per configuration: ``context`` and ``targets`` each one array
        ``(B, K)`` of sorted int64 indices into the flat ``T * H * W`` grid (the target is the
        union of the blocks), ``grid`` the 3-D grid, ``boxes`` ``(B, num_blocks, 6)`` as
        ``(start, top, left, t, h, w)``, and with ``trim="none"`` ``context_lengths`` and
        ``target_lengths``.

    Raises:
        ValueError: a config that cannot be satisfied on ``grid`` (see :func:`validate_video`).
    """
    grid3 = as_grid3(grid)
    cfgs = [configs] if isinstance(configs, VideoMaskConfig) else list(configs)
    if not cfgs or not all(isinstance(c, VideoMaskConfig) for c in cfgs):
        raise ValueError(f"configs={configs!r}: pass one VideoMaskConfig or a non-empty list of them")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}: must be an integer >= 1")
    for c in cfgs:
        _analyse(grid3, c)
    gen = _as_rng(rng)
    return [_sample_one(gen, grid3, c, batch_size) for c in cfgs]
