"""The multi-block mask law's configuration and a batch of masks: what the sampler draws from and returns.

Part of the masks chapter of the spec (docs/spec.md, chapter 3), with :mod:`jepa_core.mask_validation`
(which configs are possible on a grid) and :mod:`jepa_core.masks` (the sampler, which re-exports
everything here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from .protocols import IndexArray

__all__ = ["CONTEXT_TRIMS", "OFFICIAL_FLAGS", "ContextTrim", "Grid", "MaskBatch", "MaskConfig"]

Grid: TypeAlias = tuple[int, int]
"""A patch grid ``(H, W)``; a sequence of length ``L`` is the grid ``(1, L)``."""

OFFICIAL_FLAGS = ("correlated_draw", "floor_area", "shared_target_size", "exclusive_bound", "raster_trim",
                  "relax_overlap")
"""The :class:`MaskConfig` fields that each reproduce one official defect (all False by default)."""

ContextTrim: TypeAlias = Literal["batch_min", "none"]
"""How contexts of unequal length share a batch: cut to the shortest (official) or padded, whole."""

CONTEXT_TRIMS: tuple[ContextTrim, ...] = ("batch_min", "none")


def _range_error(name: str, value: object, rule: str) -> ValueError:
    return ValueError(f"MaskConfig.{name}={value!r}: {rule}")


@dataclass(frozen=True)
class MaskConfig:
    """What a multi-block mask draw looks like; grid-free, validated on construction.

    Grid-dependent impossibility (blocks that cannot fit, ``min_keep`` that no
    placement can honour) is checked by :func:`validate`, which every sampler
    calls before drawing anything.

    Attributes:
        num_targets: target blocks per sample (``npred``), at least 1.
        target_scale: ``(low, high)`` share of the grid per target, ``0 < low <= high <= 1``.
        target_aspect: ``(low, high)`` height / width of a target, ``0 < low <= high``.
        num_context: context blocks per sample (``nenc``), at least 1.
        context_scale: ``(low, high)`` share of the grid of the context block.
        context_aspect: ``(low, high)`` aspect of the context block (official: 1).
        min_keep: the context *must* keep at least this many patches (``>=``).
        allow_overlap: when True the context *may* include target patches.
        correlated_draw: official defect (a): one uniform sets scale and aspect.
        floor_area: official sizing: the area ``int(scale * H * W)`` is floored.
        shared_target_size: official: one size for every target slot of a batch.
        exclusive_bound: official defect (b): sizes clipped to ``H - 1``/``W - 1``
            and positions drawn below an exclusive bound, so the last row and
            column are never in a block.
        raster_trim: official defect (c): contexts cut to the batch's shortest
            (one length for all context slots) by keeping the first patches in
            raster order.
        relax_overlap: official defect (e): a context that finds no valid spot
            in 20 tries drops the last target's constraint, and so on, and may
            then overlap targets.
        context_trim: how contexts of unequal length share a batch.
            ``"batch_min"`` (official): each is cut to the batch's shortest (at
            random, or in raster order with ``raster_trim``), so a context loses
            about a third of its patches at the paper's settings.
            ``"none"``: every context keeps all of its patches; rows are padded
            to the longest and :attr:`MaskBatch.context_lengths` says where
            each ends (the models then mask the padding out of attention).
            The trim comes after the draw: one seed *must* give the same blocks
            under either value, so a ``"batch_min"`` row is a subset of the
            same row drawn with ``"none"``.
    """

    num_targets: int = 4
    target_scale: tuple[float, float] = (0.15, 0.2)
    target_aspect: tuple[float, float] = (0.75, 1.5)
    num_context: int = 1
    context_scale: tuple[float, float] = (0.85, 1.0)
    context_aspect: tuple[float, float] = (1.0, 1.0)
    min_keep: int = 10
    allow_overlap: bool = False
    correlated_draw: bool = False
    floor_area: bool = False
    shared_target_size: bool = False
    exclusive_bound: bool = False
    raster_trim: bool = False
    relax_overlap: bool = False
    context_trim: ContextTrim = "batch_min"

    def __post_init__(self) -> None:
        for name in ("num_targets", "num_context", "min_keep"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise _range_error(name, value, "must be an integer >= 1")
        for name, upper in (
            ("target_scale", 1.0),
            ("context_scale", 1.0),
            ("target_aspect", math.inf),
            ("context_aspect", math.inf),
        ):
            value = getattr(self, name)
            ok = isinstance(value, tuple) and len(value) == 2
            ok = ok and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
            if not ok or not (0.0 < value[0] <= value[1] <= upper and math.isfinite(value[1])):
                bound = "<= 1" if upper == 1.0 else "finite"
                raise _range_error(name, value, f"must be a tuple (low, high) with 0 < low <= high, {bound}")
        if self.context_trim not in CONTEXT_TRIMS:
            raise _range_error("context_trim", self.context_trim, "must be 'batch_min' or 'none'")
        for name in ("allow_overlap", *OFFICIAL_FLAGS):
            if not isinstance(getattr(self, name), bool):
                raise _range_error(name, getattr(self, name), "must be True or False")

    @classmethod
    def official_compatible(cls, **fields: Any) -> MaskConfig:
        """The official collator's distribution: every official flag on.

        Args:
            **fields: other fields, with the official meaning of ``min_keep``:
                the official keeps a mask when it has *more than* ``min_keep``
                patches, so ``min_keep=m`` here is stored as ``m + 1`` (default
                official value 10, the paper's).

        Returns:
            A config that reproduces the official defects (a)-(c) and (e).
        """
        fields["min_keep"] = int(fields.get("min_keep", 10)) + 1
        return cls(**{**dict.fromkeys(OFFICIAL_FLAGS, True), **fields})


@dataclass(frozen=True)
class MaskBatch:
    """The masks of a batch of ``B`` samples, in the official I-JEPA convention.

    Attributes:
        context: one ``(B, Kc)`` int64 array per context block: kept patch
            indices, raster order (``row * W + col``). With ``context_lengths``
            None every entry is a context patch; otherwise row ``b`` of block
            ``i`` holds its patches in its first ``context_lengths[i][b]``
            entries and repeats its last patch after them (padding: a valid
            index, so gathers stay in range, that *must not* be counted).
        targets: one ``(B, Kt)`` int64 array per target block; each row is a
            whole rectangle, raster order.
        grid: the grid the indices refer to: ``(H, W)``, or ``(T, H, W)`` for 3-D masks.
        context_lengths: None when every context row is full (``context_trim``
            ``"batch_min"``), else one ``(B,)`` int64 array per context block:
            the number of patches of each row (``context_trim="none"``).
        target_lengths: as ``context_lengths``, for targets of unequal length (the unions
            of V-JEPA's 3-D blocks, :mod:`jepa_core.video_masks`, with ``trim="none"``);
            None when every target row is full.
        boxes: for 3-D masks, ``(B, num_blocks, 6)`` int64 ``(start, top, left, t, h, w)``
            of each block the target is the union of; None for 2-D masks.
    """

    context: list[IndexArray]
    targets: list[IndexArray]
    grid: tuple[int, ...]
    context_lengths: list[IndexArray] | None = None
    target_lengths: list[IndexArray] | None = None
    boxes: IndexArray | None = None
