"""Mutants of the 3-D (V-JEPA) mask sampler, one per law of properties/test_video_masks.py.

Each is the reference backend whose ``mask_sampler`` draws 3-D masks from a fresh copy of
:mod:`jepa_core.video_masks` with one private function replaced; 2-D configs go to the real sampler.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import sys
from collections.abc import Callable, Sequence
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np

from jepa_core import masks, video_masks

from ._registry import backend_getter, mutant
from .masks import _MaskMutant

_copies = itertools.count()


def _copy(**replacements: Callable[..., Any]) -> ModuleType:
    """A fresh copy of ``jepa_core.video_masks`` whose private functions ``replacements`` are swapped in."""
    name = f"jepa_core._video_masks_mutant_{next(_copies)}"
    spec = importlib.util.spec_from_file_location(name, video_masks.__file__)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "jepa_core"
    sys.modules[name] = module
    spec.loader.exec_module(module)
    for attr, fn in replacements.items():
        if not callable(getattr(module, attr, None)):
            raise AttributeError(f"jepa_core.video_masks has no function {attr!r} to replace (was it renamed?)")
        setattr(module, attr, fn)
    return module


def _sampler(module: ModuleType) -> SimpleNamespace:
    """``jepa_core.masks``' public API, with 3-D configs drawn and validated by ``module``."""
    config_cls = module.VideoMaskConfig

    def sample_masks(grid: Sequence[int], config: Any, rng: Any, batch_size: int) -> Any:
        if isinstance(config, config_cls):
            return module.sample_video_masks(grid, config, rng, batch_size)[0]
        return masks.sample_masks(grid, config, rng, batch_size)

    def validate(grid: Sequence[int], config: Any) -> None:
        if isinstance(config, config_cls):
            module.validate_video(grid, config)
        else:
            masks.validate(grid, config)

    public = {name: getattr(masks, name) for name in masks.__all__}
    return SimpleNamespace(**{**public, "VideoMaskConfig": config_cls, "sample_masks": sample_masks,
                              "validate": validate, "sample_video_masks": module.sample_video_masks})


class _Draws:
    """A stand-in generator: ``random`` and ``integers`` as given (what the sampler's helpers call)."""

    def __init__(self, random: Callable[[int], Any] | None = None,
                 integers: Callable[..., Any] | None = None) -> None:
        if random is not None:
            self.random = random
        if integers is not None:
            self.integers = integers


@mutant("mask_sampler.video", "test_box_sizes_follow_the_law_with_independent_draws")
class VideoCorrelatedDraw(_MaskMutant):
    """One uniform sets a box's scale, aspect and temporal extent (the 2-D official defect (a), in 3-D)."""

    name = "mutant: 3-D sizes from one uniform"

    def sampler(self) -> Any:
        real = video_masks._draw_sizes

        def draw_sizes(rng: np.random.Generator, grid: Any, config: Any, count: int) -> Any:
            u = rng.random(count)
            return real(_Draws(random=lambda n: u), grid, config, count)

        return _sampler(_copy(_draw_sizes=draw_sizes))


@mutant("mask_sampler.video", "test_box_sizes_follow_the_law_with_independent_draws")
class VideoSkewedScale(_MaskMutant):
    """The spatial scale is drawn as the square of a uniform: small boxes too often."""

    name = "mutant: 3-D scale not uniform"

    def sampler(self) -> Any:
        real = video_masks._draw_sizes

        def draw_sizes(rng: np.random.Generator, grid: Any, config: Any, count: int) -> Any:
            calls = itertools.count()

            def skewed(n: int) -> Any:
                u = rng.random(n)
                return u * u if next(calls) == 0 else u  # the first uniform is the spatial scale's

            return real(_Draws(random=skewed), grid, config, count)

        return _sampler(_copy(_draw_sizes=draw_sizes))


@mutant("mask_sampler.video", "test_block_centres_and_kept_tokens_have_no_spatial_or_temporal_bias")
class VideoExclusiveBound(_MaskMutant):
    """Box positions drawn below an exclusive bound (``randint(0, T - t)``): the last frame, row and
    column are reached less often."""

    name = "mutant: 3-D positions below an exclusive bound"

    def sampler(self) -> Any:
        def place(rng: np.random.Generator, t: Any, h: Any, w: Any, grid: Any, plan: Any, config: Any,
                  batch: int) -> Any:
            def exclusive(low: Any, high: Any, size: Any = None) -> Any:
                return rng.integers(low, np.maximum(np.asarray(high) - 1, 1), size=size)

            return video_masks._place(_Draws(integers=exclusive), t, h, w, grid, plan, config, batch)

        return _sampler(_copy(_place=place))


@mutant("mask_sampler.video", "test_block_centres_and_kept_tokens_have_no_spatial_or_temporal_bias")
class VideoRasterTrim(_MaskMutant):
    """Contexts and targets cut to the batch's shortest in raster order (the official's cut), always."""

    name = "mutant: 3-D raster trim"

    def sampler(self) -> Any:
        module = _copy()
        real = module._sample_one

        def sample_one(rng: np.random.Generator, grid: Any, config: Any, batch: int) -> Any:
            return real(rng, grid, dataclasses.replace(config, raster_trim=True), batch)

        module._sample_one = sample_one
        return _sampler(module)


@mutant("mask_sampler.video", "test_target_is_the_union_and_context_its_complement")
class VideoTargetIsFirstBlock(_MaskMutant):
    """The target is the first box only, not the union: the other boxes are lost to the context too."""

    name = "mutant: 3-D target not the union"

    def sampler(self) -> Any:
        real = video_masks._boxes

        def boxes(start: Any, top: Any, left: Any, t: Any, h: Any, w: Any, grid: Any) -> Any:
            return real(start[..., :1], top[..., :1], left[..., :1], t[:1], h[:1], w[:1], grid)

        return _sampler(_copy(_boxes=boxes))


@mutant("mask_sampler.video", "test_target_is_the_union_and_context_its_complement")
class VideoContextLosesBorder(_MaskMutant):
    """The context also loses the tokens just after each target run in raster order (a dilated union)."""

    name = "mutant: 3-D context minus more than the target"

    def sampler(self) -> Any:
        real = video_masks._place

        def place(*args: Any) -> Any:
            pos, union, context = real(*args)
            flat = union.reshape(union.shape[0], -1)
            after = np.zeros_like(flat)
            after[:, 1:] = flat[:, :-1] & ~flat[:, 1:]
            thinner = context & ~after.reshape(union.shape)
            counts = thinner.reshape(union.shape[0], -1).sum(axis=1)
            keep = counts >= args[6].min_keep  # only where min_keep still holds, to isolate this law
            context = np.where(keep[:, None, None, None], thinner, context)
            return pos, union, context

        return _sampler(_copy(_place=place))


@mutant("mask_sampler.video", "test_full_extent_blocks_cover_every_frame",
        "test_blocks_are_boxes_of_the_configured_size")
class VideoFloorExtent(_MaskMutant):
    """A box that should span every frame spans one fewer (``t = T`` becomes ``T - 1``, at least 1)."""

    name = "mutant: full-extent boxes miss a frame"

    def sampler(self) -> Any:
        real = video_masks._draw_sizes

        def draw_sizes(rng: np.random.Generator, grid: Any, config: Any, count: int) -> Any:
            t, h, w = real(rng, grid, config, count)
            return np.maximum(t - (t == grid[0]), 1), h, w

        return _sampler(_copy(_draw_sizes=draw_sizes))


@mutant("mask_sampler.video", "test_video_min_keep_boundary_is_accepted_and_honoured")
class VideoStrictMinKeep(_MaskMutant):
    """Validation asks for more than ``min_keep`` context tokens: the exact boundary is rejected."""

    name = "mutant: 3-D min_keep boundary rejected"

    def sampler(self) -> Any:
        real = video_masks._analyse.__wrapped__

        def analyse(grid: Any, config: Any) -> Any:
            plan = real(grid, config)
            if plan.best_keep <= config.min_keep:
                raise ValueError(f"VideoMaskConfig.min_keep={config.min_keep}: too large")
            return dataclasses.replace(plan)

        return _sampler(_copy(_analyse=analyse))


@mutant("mask_sampler.video", "test_same_seed_same_video_masks")
class VideoUnseededPlacement(_MaskMutant):
    """Box positions come from a generator the seed does not reach (the official's global torch RNG)."""

    name = "mutant: 3-D positions unseeded"

    def sampler(self) -> Any:
        real = video_masks._place
        loose = np.random.default_rng()

        def place(rng: np.random.Generator, *rest: Any) -> Any:
            return real(loose, *rest)

        return _sampler(_copy(_place=place))


__getattr__ = backend_getter(__name__)  # ``tests.mutants.video_masks:<key>`` names a backend
