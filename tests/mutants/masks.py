"""Mutants of the mask sampler (backend.mask_sampler), one per mask law.

Each is the reference backend whose ``mask_sampler`` carries one bug. Bugs in the
public surface wrap :mod:`jepa_core.masks` in a namespace (:func:`_wrapped`);
bugs inside the draw are a fresh copy of the module with one private function
replaced (:func:`_patched`), so the rest of the sampler is the real one.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import sys
from collections.abc import Callable
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np

from jepa_core import masks
from jepa_core.masks import Grid, MaskBatch, MaskConfig
from jepa_core.reference import ReferenceBackend

from ._registry import backend_getter, mutant

_copies = itertools.count()


def _wrapped(**overrides: Any) -> SimpleNamespace:
    """The public API of ``jepa_core.masks`` with some names replaced."""
    unknown = set(overrides) - set(masks.__all__)
    if unknown:
        raise AttributeError(f"jepa_core.masks has no public {sorted(unknown)}")
    return SimpleNamespace(**{**{name: getattr(masks, name) for name in masks.__all__}, **overrides})


def _patched(**replacements: Callable[..., Any]) -> ModuleType:
    """A fresh copy of ``jepa_core.masks`` whose private functions ``replacements`` are swapped in."""
    name = f"jepa_core._masks_mutant_{next(_copies)}"
    spec = importlib.util.spec_from_file_location(name, masks.__file__)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the copy executes
    spec.loader.exec_module(module)
    for attr, fn in replacements.items():
        if not callable(getattr(module, attr, None)):
            raise AttributeError(f"jepa_core.masks has no function {attr!r} to replace (was it renamed?)")
        setattr(module, attr, fn)
    return module


def _with_config(**changes: Any) -> SimpleNamespace:
    """A sampler that draws with ``changes`` applied to every config (a flag read wrongly)."""

    def sample_masks(grid: Grid, config: MaskConfig, rng: Any, batch_size: int) -> MaskBatch:
        return masks.sample_masks(grid, dataclasses.replace(config, **changes), rng, batch_size)

    return _wrapped(sample_masks=sample_masks)


class _MaskMutant(ReferenceBackend):
    """The reference backend with the sampler built by :meth:`sampler`, once."""

    def __init__(self) -> None:
        self._sampler = self.sampler()

    def sampler(self) -> Any:
        raise NotImplementedError

    @property
    def mask_sampler(self) -> Any:
        return self._sampler


# --- indices and placement -------------------------------------------------------------


def _trim_unsorted(rng: np.random.Generator, masks_: list[Any], raster: bool) -> list[Any]:
    if raster:
        return masks._trim(rng, masks_, raster)
    k = min(int(m.sum(axis=1).min()) for m in masks_)
    out = []
    for m in masks_:
        keys = np.where(m, rng.random(m.shape), 2.0)
        out.append(np.argpartition(keys, k - 1, axis=1)[:, :k].astype(np.int64))  # the sort is missing
    return out


@mutant("mask_sampler", "test_masks_are_valid_index_sets")
class UnsortedContext(_MaskMutant):
    """The random trim returns the kept context patches in argpartition order, not raster order."""

    name = "mutant: context indices unsorted"

    def sampler(self) -> Any:
        return _patched(_trim=_trim_unsorted)


def _trim_with_replacement(rng: np.random.Generator, masks_: list[Any], raster: bool) -> list[Any]:
    if raster:
        return masks._trim(rng, masks_, raster)
    k = min(int(m.sum(axis=1).min()) for m in masks_)
    out = []
    for m in masks_:
        rows = [np.sort(rng.choice(np.flatnonzero(row), size=k, replace=True)) for row in m]  # replace=True
        out.append(np.asarray(rows, dtype=np.int64).reshape(m.shape[0], k))
    return out


@mutant("mask_sampler", "test_masks_are_valid_index_sets")
class TrimWithReplacement(_MaskMutant):
    """The random trim draws the kept patches with replacement: a context may repeat a patch."""

    name = "mutant: context indices duplicated"

    def sampler(self) -> Any:
        return _patched(_trim=_trim_with_replacement)


@mutant("mask_sampler", "test_masks_are_valid_index_sets", "test_min_keep_boundary_is_accepted_and_honoured")
class ContextIgnoresTargets(_MaskMutant):
    """The context block is not cut by the targets: allow_overlap is read as always True."""

    name = "mutant: context overlaps targets"

    def sampler(self) -> Any:
        return _with_config(allow_overlap=True)


@mutant("mask_sampler", "test_masks_are_valid_index_sets", "test_min_keep_boundary_is_accepted_and_honoured")
class MinKeepNotHonoured(_MaskMutant):
    """The context goes to any position that keeps one patch: min_keep is only checked on the sizes."""

    name = "mutant: min_keep not honoured by the placement"

    def sampler(self) -> Any:
        place = masks._valid_positions

        def valid_positions(free: Any, ch: int, cw: int, min_keep: int) -> Any:
            return place(free, ch, cw, 1)

        return _patched(_valid_positions=valid_positions)


def _pick_first(rng: np.random.Generator, valid: Any) -> tuple[Any, Any]:
    top, left = np.divmod(valid.reshape(valid.shape[0], -1).argmax(axis=1), valid.shape[2])
    return top.astype(np.int64), left.astype(np.int64)


@mutant("mask_sampler", "test_every_row_and_column_is_covered_by_contexts",
        "test_context_is_trimmed_without_spatial_bias")
class TopLeftContext(_MaskMutant):
    """The context goes to the first valid position in raster order instead of a uniform one."""

    name = "mutant: context always top-left"

    def sampler(self) -> Any:
        return _patched(_pick=_pick_first)


@mutant("mask_sampler", "test_every_row_and_column_is_covered_by_targets",
        "test_every_row_and_column_is_covered_by_contexts")
class ExclusiveBoundInCorrectedMode(_MaskMutant):
    """Positions drawn below an exclusive bound, as the official's ``randint(0, H - h)``, in every mode."""

    name = "mutant: last row and column never reached"

    def sampler(self) -> Any:
        return _with_config(exclusive_bound=True)


@mutant("mask_sampler", "test_context_is_trimmed_without_spatial_bias")
class RasterTrimInCorrectedMode(_MaskMutant):
    """Contexts are cut to the batch minimum in raster order in every mode (the official's trim)."""

    name = "mutant: raster trim in the corrected mode"

    def sampler(self) -> Any:
        return _with_config(raster_trim=True)


def _trim_per_slot(rng: np.random.Generator, masks_: list[Any], raster: bool) -> list[Any]:
    return [masks._trim(rng, [m], raster)[0] for m in masks_]  # each slot to its own minimum


@mutant("mask_sampler", "test_context_tensors_of_a_batch_share_one_length")
class ContextsTrimmedPerSlot(_MaskMutant):
    """Each context tensor is trimmed to its own slot's minimum: the slots of one batch differ in length."""

    name = "mutant: context slots of different lengths"

    def sampler(self) -> Any:
        return _patched(_trim=_trim_per_slot)


def _pad_after_random_cut(masks_: list[Any]) -> tuple[list[Any], list[Any]]:
    out, lengths = masks._pad(masks_)
    keep = [np.maximum(n - 1, 1) for n in lengths]  # each whole context loses one patch
    return out, keep


@mutant("mask_sampler", "test_whole_contexts_drop_no_patch")
class WholeContextsLoseAPatch(_MaskMutant):
    """``context_trim="none"`` reports each row one patch shorter than its whole context."""

    name = "mutant: whole contexts lose a patch"

    def sampler(self) -> Any:
        return _patched(_pad=_pad_after_random_cut)


def _unseeded(grid: Grid, config: MaskConfig, rng: Any, batch_size: int) -> MaskBatch:
    return masks.sample_masks(grid, config, np.random.default_rng(), batch_size)  # the seed is ignored


@mutant("mask_sampler", "test_same_seed_same_masks")
class UnseededDraw(_MaskMutant):
    """Draws from a fresh unseeded generator: the same seed gives different masks."""

    name = "mutant: masks ignore the seed"

    def sampler(self) -> Any:
        return _wrapped(sample_masks=_unseeded)


# --- sizes -------------------------------------------------------------------------------


def _targets_missing_corner(grid: Grid, config: MaskConfig, rng: Any, batch_size: int) -> MaskBatch:
    out = masks.sample_masks(grid, config, rng, batch_size)
    targets = [t[:, :-1] if t.shape[1] > 1 else t for t in out.targets]  # off by one: the last patch is lost
    return MaskBatch(out.context, targets, out.grid)


@mutant("mask_sampler", "test_targets_are_rectangles_of_the_configured_size")
class TargetMissingCorner(_MaskMutant):
    """Each target loses its last patch (bottom-right corner): not a whole rectangle."""

    name = "mutant: target missing a cell"

    def sampler(self) -> Any:
        return _wrapped(sample_masks=_targets_missing_corner)


def _draw_sizes_ceil(rng: np.random.Generator, grid: Grid, place: Grid, scale: tuple[float, float],
                     aspect: tuple[float, float], config: MaskConfig, count: int) -> tuple[Any, Any]:
    u_scale = rng.random(count)
    u_aspect = u_scale if config.correlated_draw else rng.random(count)
    area = (scale[0] + u_scale * (scale[1] - scale[0])) * (grid[0] * grid[1])
    if config.floor_area:
        area = np.floor(area)
    ratio = aspect[0] + u_aspect * (aspect[1] - aspect[0])
    if grid[0] == 1:
        h, w = np.ones(count), np.ceil(area)
    else:  # sides rounded up, not to the nearest integer
        h, w = np.ceil(np.sqrt(area * ratio)), np.ceil(np.sqrt(area / ratio))
    if config.exclusive_bound:
        h, w = np.minimum(h, place[0]), np.minimum(w, place[1])
    return h.astype(np.int64), w.astype(np.int64)


@mutant("mask_sampler", "test_targets_are_rectangles_of_the_configured_size",
        "test_target_area_matches_the_uniform_scale")
class SidesRoundedUp(_MaskMutant):
    """Block sides are rounded up (``ceil``) instead of to the nearest integer: blocks one row or column too big."""

    name = "mutant: block sizes off by one"

    def sampler(self) -> Any:
        return _patched(_draw_sizes=_draw_sizes_ceil)


@mutant("mask_sampler", "test_scale_and_aspect_are_uncorrelated")
class CorrelatedInCorrectedMode(_MaskMutant):
    """One uniform sets both scale and aspect (the official's defect (a)) in every mode."""

    name = "mutant: scale and aspect correlated"

    def sampler(self) -> Any:
        return _with_config(correlated_draw=True)


@mutant("mask_sampler", "test_target_slots_draw_sizes_independently")
class SharedTargetSlots(_MaskMutant):
    """Every target slot of a batch gets one size (the official's draw) in every mode."""

    name = "mutant: target slots share one size"

    def sampler(self) -> Any:
        return _with_config(shared_target_size=True)


# --- the official mode ---------------------------------------------------------------------


@mutant("mask_sampler", "test_official_defect_a_correlated_draw", "test_official_defect_b_exclusive_bound",
        "test_official_defect_c_raster_trim")
class OfficialFlagsIgnored(_MaskMutant):
    """correlated_draw, exclusive_bound and raster_trim do nothing: the official mode is not reproduced."""

    name = "mutant: official flags ignored"

    def sampler(self) -> Any:
        return _with_config(correlated_draw=False, exclusive_bound=False, raster_trim=False)


class _OfficialMinKeepAsIs(MaskConfig):
    @classmethod
    def official_compatible(cls, **fields: Any) -> MaskConfig:
        flags = dict(correlated_draw=True, floor_area=True, shared_target_size=True,
                     exclusive_bound=True, raster_trim=True, relax_overlap=True)
        return cls(**{"min_keep": 10, **flags, **fields})  # the official's "> m" read as ">= m"


@mutant("mask_sampler", "test_official_compatible_sets_every_flag")
class OfficialMinKeepNotShifted(_MaskMutant):
    """official_compatible stores the official min_keep as is: the official keeps ``> m``, this ``>= m``."""

    name = "mutant: official min_keep not shifted"

    def sampler(self) -> Any:
        return _wrapped(MaskConfig=_OfficialMinKeepAsIs)


# --- validation ----------------------------------------------------------------------------


def _validate_boundary_excluded(grid: Grid, config: MaskConfig) -> None:
    best = masks.max_context_keep(grid, config)
    if config.min_keep >= best:  # ">=" where ">" is meant
        raise ValueError(f"MaskConfig.min_keep={config.min_keep}: at most {best} context patches can remain")


def _validating(validate: Callable[[Grid, MaskConfig], None]) -> Callable[..., MaskBatch]:
    def sample_masks(grid: Grid, config: MaskConfig, rng: Any, batch_size: int) -> MaskBatch:
        validate(tuple(grid), config)
        return masks.sample_masks(grid, config, rng, batch_size)

    return sample_masks


@mutant("mask_sampler", "test_masks_are_valid_index_sets", "test_min_keep_boundary_is_accepted_and_honoured")
class ValidateRejectsTheBoundary(_MaskMutant):
    """validate rejects ``min_keep`` equal to the best outcome (an off-by-one in the comparison)."""

    name = "mutant: validate rejects the min_keep boundary"

    def sampler(self) -> Any:
        return _wrapped(validate=_validate_boundary_excluded, sample_masks=_validating(_validate_boundary_excluded))


def _validate_disjoint_targets(grid: Grid, config: MaskConfig) -> None:
    masks.validate(grid, config)
    if config.allow_overlap:
        return
    smallest = max(1, round(config.target_scale[0] * grid[0] * grid[1]))
    bound = masks.max_context_keep(grid, config) - (config.num_targets - 1) * smallest
    if config.min_keep > bound:  # as if the targets could never overlap one another
        raise ValueError(f"MaskConfig.min_keep={config.min_keep}: at most {bound} context patches can remain")


@mutant("mask_sampler", "test_masks_are_valid_index_sets", "test_min_keep_boundary_is_accepted_and_honoured")
class ValidateAssumesDisjointTargets(_MaskMutant):
    """validate counts every target as disjoint from the others: it rejects satisfiable configs."""

    name = "mutant: validate over-rejects"

    def sampler(self) -> Any:
        return _wrapped(validate=_validate_disjoint_targets, sample_masks=_validating(_validate_disjoint_targets))


def _sample_late(grid: Grid, config: MaskConfig, rng: Any, batch_size: int) -> MaskBatch:
    try:
        return masks.sample_masks(grid, config, rng, batch_size)
    except ValueError as exc:
        raise RuntimeError("masks: no valid context found after 1000 tries") from exc


@mutant("mask_sampler", "test_impossible_configs_are_rejected", "test_min_keep_boundary_is_accepted_and_honoured")
class ValidationSkipped(_MaskMutant):
    """validate accepts everything and an impossible config fails late, in the draw, with another error."""

    name = "mutant: validation skipped"

    def sampler(self) -> Any:
        return _wrapped(validate=lambda grid, config: None, sample_masks=_sample_late)


__getattr__ = backend_getter(__name__)  # ``tests.mutants.masks:<key>`` names a backend
