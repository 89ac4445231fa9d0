"""Multi-block masks: the context and target patch indices of I-JEPA.

For a grid of ``(H, W)`` patches each sample gets ``num_targets`` rectangular
target blocks and ``num_context`` context blocks with the targets removed. A
block's scale (its share of the grid) and aspect ratio (height / width) are drawn
independently and uniformly from the configured ranges; its height and width are
``round(sqrt(scale * H * W * aspect))`` and ``round(sqrt(scale * H * W / aspect))``.

How a batch is drawn (docs/masks.md gives the reasoning):

1. One size per target slot and one context size per batch, drawn from the
   configured law *conditioned on the draw being satisfiable*: every block fits
   the grid and some placement leaves ``min_keep`` context patches. All rows of a
   target tensor therefore have the same length, and every target is a whole
   rectangle.
2. Targets are placed uniformly over every position (inclusive bounds). The
   context is placed uniformly among the positions where it keeps ``min_keep``
   patches, found at once from a summed-area table; a sample with no such
   position gets its targets redrawn (a bounded number of rounds, then a
   corner-stacked placement that is valid by construction).
3. Contexts differ in length after the targets are cut out. With
   ``context_trim="batch_min"`` (the official batching) each is trimmed to the
   batch minimum by dropping patches at random, never in raster order; with
   ``"none"`` each keeps every patch, rows are padded to the longest, and the
   batch carries each row's length.

Impossible configurations are rejected before any draw (:func:`validate`), and
every accepted one finishes in bounded work: there is no unbounded retry loop.
The flags of :meth:`MaskConfig.official_compatible` reproduce the official
collator's distribution (docs/fidelity.md, section Masks).

The config and batch types live in :mod:`jepa_core.mask_config` and the validation in
:mod:`jepa_core.mask_validation`; this module re-exports both, so ``jepa_core.masks`` is the
whole sampler API.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

import numpy as np
from numpy.typing import NDArray

from .mask_config import CONTEXT_TRIMS, OFFICIAL_FLAGS, ContextTrim, Grid, MaskBatch, MaskConfig
from . import mask_validation
from .mask_validation import Plan, analyse, overlap_free
from .protocols import IndexArray
from .video_masks import VideoMaskConfig, sample_video_masks, validate_video

__all__ = [
    "CONTEXT_TRIMS",
    "OFFICIAL_FLAGS",
    "ContextTrim",
    "Grid",
    "MaskBatch",
    "MaskConfig",
    "VideoMaskConfig",
    "max_context_keep",
    "sample_mask",
    "sample_masks",
    "sample_masks_1d",
    "sample_video_masks",
    "validate",
]

Rng: TypeAlias = "np.random.Generator | int"
BoolArray: TypeAlias = NDArray[np.bool_]
IntArray: TypeAlias = NDArray[np.int64]

_SIZE_ROUNDS = 8  # rounds of vectorised candidate sizes before the precomputed witness
_SIZE_CANDIDATES = 32  # candidate size sets per round
_PLACE_ROUNDS = 16  # rounds of target re-placement before the corner-stacked placement
_OFFICIAL_TRIES = 20  # the official collator's tries per relaxation level
def _draw_sizes(rng: np.random.Generator, grid: Grid, place: Grid, scale: tuple[float, float],
                aspect: tuple[float, float], config: MaskConfig, count: int) -> tuple[IntArray, IntArray]:
    """``count`` block sizes ``(h, w)`` drawn from the configured law (before conditioning)."""
    u_scale = rng.random(count)
    u_aspect = u_scale if config.correlated_draw else rng.random(count)
    area = (scale[0] + u_scale * (scale[1] - scale[0])) * (grid[0] * grid[1])
    if config.floor_area:
        area = np.floor(area)
    ratio = aspect[0] + u_aspect * (aspect[1] - aspect[0])
    if grid[0] == 1:
        h, w = np.ones(count), np.rint(area)
    else:
        h, w = np.rint(np.sqrt(area * ratio)), np.rint(np.sqrt(area / ratio))
    if config.exclusive_bound:
        h, w = np.minimum(h, place[0]), np.minimum(w, place[1])
    return h.astype(np.int64), w.astype(np.int64)


def _stacked_keep(th: IntArray, tw: IntArray, ch: IntArray, cw: IntArray, place: Grid) -> IntArray:
    """Context patches kept with all targets stacked in one corner, the context in the opposite one.

    Args:
        th, tw: ``(C, M)`` target sizes. ch, cw: ``(C,)`` context sizes.

    Returns:
        ``(C,)``: ``hc * wc`` minus the staircase union of the corner overlaps.
    """
    a = np.maximum(0, th + ch[:, None] - place[0])  # (C, M) rows of overlap
    b = np.maximum(0, tw + cw[:, None] - place[1])  # (C, M) columns of overlap
    order = np.argsort(-a, axis=1)
    a, b = np.take_along_axis(a, order, 1), np.take_along_axis(b, order, 1)
    prev = np.concatenate([np.zeros_like(b[:, :1]), np.maximum.accumulate(b, axis=1)[:, :-1]], axis=1)
    union = (a * np.maximum(0, b - prev)).sum(axis=1)
    out: IntArray = ch * cw - union
    return out


def _choose_sizes(rng: np.random.Generator, grid: Grid, plan: Plan,
                  config: MaskConfig) -> tuple[IntArray, IntArray, int, int]:
    """One satisfiable size set: target ``(M,)`` heights and widths, the context's height and width.

    Draws vectorised candidates from the configured law and keeps the first that
    fits and passes the corner-stacked test; after a bounded number of rounds it
    uses the witness found by validation.
    """
    m, c, place = config.num_targets, _SIZE_CANDIDATES, plan.place
    slots = 1 if config.shared_target_size else m
    for _ in range(_SIZE_ROUNDS):
        th, tw = _draw_sizes(rng, grid, place, config.target_scale, config.target_aspect, config, c * slots)
        th = np.broadcast_to(th.reshape(c, slots), (c, m))  # (C, M)
        tw = np.broadcast_to(tw.reshape(c, slots), (c, m))
        ch, cw = _draw_sizes(rng, grid, place, config.context_scale, config.context_aspect, config, c)
        ok = ((th >= 1) & (tw >= 1) & (th <= place[0]) & (tw <= place[1])).all(axis=1)
        ok &= (ch >= 1) & (cw >= 1) & (ch <= place[0]) & (cw <= place[1])
        keep = ch * cw if overlap_free(config) else _stacked_keep(th, tw, ch, cw, place)
        ok &= keep >= config.min_keep
        if ok.any():
            i = int(np.argmax(ok))
            return th[i].copy(), tw[i].copy(), int(ch[i]), int(cw[i])
    return (np.full(m, plan.target[0], dtype=np.int64), np.full(m, plan.target[1], dtype=np.int64),
            plan.context[0], plan.context[1])


def _rects(top: IntArray, left: IntArray, h: IntArray | int, w: IntArray | int, place: Grid) -> BoolArray:
    """Boolean blocks on the placement grid: ``top, left: (...)`` -> ``(..., Hp, Wp)``."""
    rows, cols = np.arange(place[0]), np.arange(place[1])
    in_r = (rows >= top[..., None]) & (rows < (top + h)[..., None])  # (..., Hp)
    in_c = (cols >= left[..., None]) & (cols < (left + w)[..., None])  # (..., Wp)
    out: BoolArray = in_r[..., :, None] & in_c[..., None, :]
    return out


def _valid_positions(free: BoolArray, ch: int, cw: int, min_keep: int) -> BoolArray:
    """``(B, Hp, Wp)`` free patches -> ``(B, Hp-ch+1, Wp-cw+1)``: where the context keeps ``min_keep``."""
    b, hp, wp = free.shape
    s = np.zeros((b, hp + 1, wp + 1), dtype=np.int32)
    s[:, 1:, 1:] = free.view(np.uint8).cumsum(axis=1, dtype=np.int32).cumsum(axis=2)  # summed-area table
    win = s[:, ch:, cw:] - s[:, : hp + 1 - ch, cw:] - s[:, ch:, : wp + 1 - cw] + s[:, : hp + 1 - ch, : wp + 1 - cw]
    out: BoolArray = win >= min_keep
    return out


def _pick(rng: np.random.Generator, valid: BoolArray) -> tuple[IntArray, IntArray]:
    """A uniform valid position per row of ``valid: (B, P, Q)`` (each row has one) -> ``top, left: (B,)``."""
    keys = np.where(valid, rng.random(valid.shape), -1.0).reshape(valid.shape[0], -1)  # (B, P*Q)
    top, left = np.divmod(keys.argmax(axis=1), valid.shape[2])
    return top.astype(np.int64), left.astype(np.int64)


def _place_corrected(rng: np.random.Generator, top: IntArray, left: IntArray, th: IntArray, tw: IntArray,
                     ch: int, cw: int, config: MaskConfig, place: Grid) -> tuple[BoolArray, BoolArray]:
    """Redraw targets (in place) where no context position is valid; return ``free, valid``."""
    cover: BoolArray = np.any(_rects(top, left, th, tw, place), axis=1)  # (B, Hp, Wp)
    valid = _valid_positions(~cover, ch, cw, config.min_keep)
    bad: BoolArray = np.logical_not(np.any(valid, axis=(1, 2)))
    for attempt in range(_PLACE_ROUNDS + 1):
        if not bad.any():
            break
        idx = np.nonzero(bad)[0]
        if attempt < _PLACE_ROUNDS:
            top[idx] = rng.integers(0, place[0] - th + 1, size=(idx.size, th.size))
            left[idx] = rng.integers(0, place[1] - tw + 1, size=(idx.size, tw.size))
        else:  # stack the targets in a random corner: the opposite corner is valid by construction
            corner = rng.integers(0, 4, size=(idx.size, 1))
            top[idx] = np.where(corner // 2 == 1, place[0] - th, 0)
            left[idx] = np.where(corner % 2 == 1, place[1] - tw, 0)
        cover[idx] = np.any(_rects(top[idx], left[idx], th, tw, place), axis=1)
        valid[idx] = _valid_positions(~cover[idx], ch, cw, config.min_keep)
        bad[idx] = np.logical_not(np.any(valid[idx], axis=(1, 2)))
    if bad.any():
        raise RuntimeError("masks: corner-stacked placement left no valid context (a bug, please report)")
    return ~cover, valid


class _Levels:
    """Free masks of the relaxation levels, their valid context positions computed on demand."""

    def __init__(self, frees: list[BoolArray], ch: int, cw: int, min_keep: int,
                 valid0: BoolArray | None = None) -> None:
        self.frees, self.ch, self.cw, self.min_keep = frees, ch, cw, min_keep
        self._valid: dict[int, BoolArray] = {} if valid0 is None else {0: valid0}

    def valid(self, t: int) -> BoolArray:
        if t not in self._valid:
            self._valid[t] = _valid_positions(self.frees[t], self.ch, self.cw, self.min_keep)
        return self._valid[t]


def _contexts(rng: np.random.Generator, top: IntArray, left: IntArray, th: IntArray, tw: IntArray,
              ch: int, cw: int, config: MaskConfig, place: Grid) -> list[BoolArray]:
    """One ``(B, Hp, Wp)`` boolean context per context slot (targets may be redrawn in place)."""
    b = top.shape[0]
    if config.allow_overlap:
        levels = _Levels([np.ones((b, *place), dtype=bool)], ch, cw, config.min_keep)
    elif not config.relax_overlap:
        free, valid = _place_corrected(rng, top, left, th, tw, ch, cw, config, place)
        levels = _Levels([free], ch, cw, config.min_keep, valid)
    else:  # official: level t keeps the constraints of the first M - t targets only
        rects = _rects(top, left, th, tw, place)  # (B, M, Hp, Wp)
        frees = [np.ones((b, *place), dtype=bool)]  # level M: no constraint
        for j in range(config.num_targets):
            frees.append(frees[-1] & ~rects[:, j])
        levels = _Levels(frees[::-1], ch, cw, config.min_keep)
    out = []
    for _ in range(config.num_context):
        ctx = np.zeros((b, *place), dtype=bool)
        undecided = np.ones(b, dtype=bool)
        for t in range(len(levels.frees)):
            if not undecided.any():
                break
            free, valid = levels.frees[t], levels.valid(t)
            go = undecided
            if t < len(levels.frees) - 1:  # 20 uniform tries all fail with probability (1 - p)^20
                p = valid.mean(axis=(1, 2))
                go = undecided & (rng.random(b) >= (1.0 - p) ** _OFFICIAL_TRIES)
            if go.any():
                ct, cl = _pick(rng, valid[go])
                ctx[go] = _rects(ct, cl, ch, cw, place) & free[go]
            undecided = undecided & ~go
        out.append(ctx)
    return out


def _trim(rng: np.random.Generator, masks: list[BoolArray], raster: bool) -> list[IndexArray]:
    """``(B, N)`` boolean masks -> ``(B, K)`` sorted indices (random or raster cut).

    K is the minimum over the batch and over every context slot, so that all context
    masks of a batch stack into the models' ``(M * B, K)`` convention.
    """
    k = min(int(m.sum(axis=1).min()) for m in masks)
    out = []
    for m in masks:
        if raster:  # the first k kept patches in raster order
            idx = np.argsort(~m, axis=1, kind="stable")[:, :k]
        else:  # k kept patches uniformly at random, then raster order
            keys = np.where(m, rng.random(m.shape), 2.0)
            idx = np.sort(np.argpartition(keys, k - 1, axis=1)[:, :k], axis=1)
        out.append(idx.astype(np.int64))
    return out


def _pad(masks: list[BoolArray]) -> tuple[list[IndexArray], list[IndexArray]]:
    """``(B, N)`` boolean masks -> every kept patch, ``(B, K)`` raster indices padded with each row's last
    patch (``K`` the longest row over the batch and every slot), and the ``(B,)`` lengths."""
    lengths = [m.sum(axis=1).astype(np.int64) for m in masks]
    k = max(int(n.max()) for n in lengths)
    out = []
    for m, n in zip(masks, lengths):
        order = np.argsort(~m, axis=1, kind="stable")[:, :k]  # kept patches first, in raster order
        last = np.minimum(np.arange(k), n[:, None] - 1)  # (B, K): positions past the end repeat the last
        out.append(np.take_along_axis(order, last, axis=1).astype(np.int64))
    return out, lengths


def _as_rng(rng: Rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng={rng!r}: pass a numpy Generator or an integer seed")


def validate(grid: Sequence[int], config: MaskConfig | VideoMaskConfig) -> None:
    """Reject a (grid, config) that cannot be satisfied, before any draw (one line naming the field).

    I-JEPA's law (:class:`MaskConfig`): :func:`jepa_core.mask_validation.validate`; V-JEPA's
    (:class:`VideoMaskConfig`): :func:`jepa_core.video_masks.validate_video`.
    """
    if isinstance(config, VideoMaskConfig):
        validate_video(grid, config)
    else:
        mask_validation.validate((int(grid[0]), int(grid[1])), config)


def max_context_keep(grid: Sequence[int], config: MaskConfig | VideoMaskConfig) -> int:
    """The most context tokens any outcome of ``config`` keeps on ``grid`` (raises as :func:`validate`)."""
    if isinstance(config, VideoMaskConfig):
        return validate_video(grid, config)
    return mask_validation.max_context_keep((int(grid[0]), int(grid[1])), config)


def sample_masks(grid: Sequence[int], config: MaskConfig | VideoMaskConfig, rng: Rng,
                 batch_size: int) -> MaskBatch:
    """Draw the context and target masks of one batch.

    Args:
        grid: ``(H, W)`` patches; ``H == 1`` is a sequence (see :func:`sample_masks_1d`).
            With a :class:`VideoMaskConfig`, also ``(T, H, W)`` tubelets.
        config: the mask law; validated against ``grid`` first. A :class:`VideoMaskConfig`
            draws V-JEPA's law: one target, the union of the blocks, and its complement as
            context (:func:`jepa_core.video_masks.sample_video_masks`).
        rng: a numpy Generator (advanced) or an integer seed. The same seed *must*
            give the same masks.
        batch_size: ``B >= 1``.

    Returns:
        A :class:`MaskBatch`: ``num_context`` arrays ``(B, Kc)`` and ``num_targets``
        arrays ``(B, Kt)``, int64 raster indices in ``[0, H * W)``. Each target row
        is a whole rectangle; each context row keeps at least ``min_keep`` patches
        and excludes every target patch unless ``allow_overlap`` (or, with
        ``relax_overlap``, unless no valid spot was found). With
        ``context_trim="none"`` each context row is its whole block minus the
        targets, padded, and ``context_lengths`` gives its length.

    Raises:
        ValueError: the config cannot be satisfied on ``grid`` (see :func:`validate`).
    """
    if isinstance(config, VideoMaskConfig):
        return sample_video_masks(grid, config, rng, batch_size)[0]
    if len(grid) != 2:
        raise ValueError(f"grid={tuple(grid)!r}: MaskConfig (I-JEPA's law) draws on (H, W) grids; "
                         "use a VideoMaskConfig for (T, H, W)")
    grid2: Grid = (int(grid[0]), int(grid[1]))
    plan = analyse(grid2, config)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}: must be an integer >= 1")
    gen = _as_rng(rng)
    place, (h_grid, w_grid) = plan.place, grid2
    th, tw, ch, cw = _choose_sizes(gen, grid2, plan, config)
    shape = (batch_size, config.num_targets)
    top = gen.integers(0, place[0] - th + 1, size=shape)  # (B, M), inclusive upper bound
    left = gen.integers(0, place[1] - tw + 1, size=shape)
    contexts = _contexts(gen, top, left, th, tw, ch, cw, config, place)
    flat = []
    for ctx in contexts:
        full = np.zeros((batch_size, h_grid, w_grid), dtype=bool)
        full[:, : place[0], : place[1]] = ctx
        flat.append(full.reshape(batch_size, -1))  # (B, N)
    targets = []
    for j in range(config.num_targets):
        rows = top[:, j, None] + np.arange(th[j])  # (B, h)
        cols = left[:, j, None] + np.arange(tw[j])  # (B, w)
        targets.append((rows[:, :, None] * w_grid + cols[:, None, :]).reshape(batch_size, -1))
    if config.context_trim == "none":
        context, lengths = _pad(flat)
        return MaskBatch(context, targets, grid2, lengths)
    return MaskBatch(_trim(gen, flat, config.raster_trim), targets, grid2)


def sample_mask(grid: Grid, config: MaskConfig, rng: Rng) -> tuple[list[IndexArray], list[IndexArray]]:
    """The masks of one sample: ``(contexts, targets)``, lists of 1-D int64 index arrays.

    Equivalent to :func:`sample_masks` with ``batch_size=1`` (so nothing is trimmed).
    """
    batch = sample_masks(grid, config, rng, 1)
    lengths = batch.context_lengths or [np.array([c.shape[1]]) for c in batch.context]
    return [c[0, : n[0]] for c, n in zip(batch.context, lengths)], [t[0] for t in batch.targets]


def sample_masks_1d(length: int, config: MaskConfig, rng: Rng, batch_size: int) -> MaskBatch:
    """Multi-block masks over a sequence of ``length`` tokens: blocks are intervals.

    The same law on the grid ``(1, length)``: a block's length is
    ``round(scale * length)``; the aspect ranges are ignored. Returns as
    :func:`sample_masks`, with ``grid == (1, length)``.
    """
    return sample_masks((1, length), config, rng, batch_size)
