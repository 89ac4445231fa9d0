"""Chapter 3 of the spec: multi-block masks (docs/spec.md, "Masks"; docs/masks.md).

Structural laws are properties over drawn grids and configs; statistical laws use
fixed seeds, so they are deterministic. The backend exposes its sampler as
``backend.mask_sampler`` (the API of :mod:`jepa_core.masks`); without one the
chapter skips and the terminal summary says so (``mask_sampler`` in conftest).

Configs are drawn two ways (``strategies.mask_problems``): *exact* problems, where
every block has one size and an oracle knows the best outcome, so the sampler must
accept them; and *free* ones, which may be impossible and are skipped if rejected.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import stats

from .assertions import (
    accepted_config,
    block_shape,
    context_centres,
    coverage,
    oracle_target_areas,
    roundable,
    slot_sizes,
    target_shapes,
)
from .strategies import PAPER_GRID, MaskProblem, exact_problems, mask_problems, mask_seeds

# The mean row (or column) of one batch's context at the paper setting (16x16, batch 32) has a
# standard deviation of 0.28 over seeds on jepa_core.masks (measured over 400 batches); the
# centre law allows five standard errors of the mean over CENTRE_SEEDS batches.
CENTRE_SEEDS = 400
CENTRE_TOLERANCE = 5 * 0.28 / np.sqrt(CENTRE_SEEDS)  # 0.07 patch
# Under independent slots, Spearman's rho of two slots' sizes over SLOT_DRAWS batches has standard
# error about 1 / sqrt(SLOT_DRAWS - 1) = 0.05 (measured 0.048); the law allows five.
SLOT_DRAWS = 400
SLOT_RHO_BOUND = 5 / np.sqrt(SLOT_DRAWS - 1)


# --- structural laws (Hypothesis) ---------------------------------------------


@settings(deadline=None)
@given(problem=mask_problems(), batch=st.integers(1, 5), seed=mask_seeds)
def test_masks_are_valid_index_sets(mask_sampler: Any, problem: MaskProblem, batch: int, seed: int) -> None:
    """A satisfiable config is accepted; indices in range, sorted, unique; context keeps min_keep, avoids targets."""
    grid, config = problem.grid, accepted_config(mask_sampler, problem)
    out = mask_sampler.sample_masks(grid, config, seed, batch)
    n = grid[0] * grid[1]
    assert len(out.context) == config.num_context and len(out.targets) == config.num_targets
    for name, m in [("context", c) for c in out.context] + [("target", t) for t in out.targets]:
        assert m.dtype == np.int64 and m.ndim == 2 and m.shape[0] == batch, f"{name} shape {m.shape} {m.dtype}"
        assert m.min() >= 0 and m.max() < n, f"{name} index outside [0, {n}) on grid {grid}"
        assert np.all(np.diff(m, axis=1) > 0), f"{name} indices not sorted and unique:\n{m}"
    for c in out.context:
        assert c.shape[1] >= config.min_keep, f"context keeps {c.shape[1]} < min_keep={config.min_keep}"
        if not config.allow_overlap:
            for b in range(batch):
                shared = np.intersect1d(c[b], np.concatenate([t[b] for t in out.targets]))
                assert shared.size == 0, f"context overlaps targets at {shared} (grid {grid}, seed {seed})"


# Two context slots whose own shortest rows differ (12 and 14 patches at this seed): a sampler that trims
# each slot to its own minimum gives tensors of two lengths. Random draws meet such a case too, but not
# within every Hypothesis version's first examples.
_TWO_SLOTS = MaskProblem((8, 8), dict(num_targets=1, target_scale=(0.05, 0.1), target_aspect=(0.75, 1.5),
                                      num_context=2, context_scale=(0.3, 1.0), context_aspect=(1.0, 1.0),
                                      min_keep=2, allow_overlap=False))


@settings(deadline=None)
@given(problem=mask_problems(min_context=2), batch=st.integers(2, 5), seed=mask_seeds)
@example(problem=_TWO_SLOTS, batch=4, seed=2)
def test_context_tensors_of_a_batch_share_one_length(mask_sampler: Any, problem: MaskProblem, batch: int,
                                                     seed: int) -> None:
    """Every context tensor of a batch has one length ``Kc``: the models stack them into ``(M * B, Kc)``."""
    grid, config = problem.grid, accepted_config(mask_sampler, problem)
    out = mask_sampler.sample_masks(grid, config, seed, batch)
    lengths = [c.shape[1] for c in out.context]
    assert len(set(lengths)) == 1, f"context tensors of one batch have lengths {lengths} (grid {grid}, seed {seed})"


@settings(deadline=None)
@given(problem=mask_problems(), batch=st.integers(1, 5), seed=mask_seeds)
def test_whole_contexts_drop_no_patch(mask_sampler: Any, problem: MaskProblem, batch: int, seed: int) -> None:
    """``context_trim="none"`` keeps every context patch: each row is its block minus the targets, padded.

    Three checks per row: its first ``context_lengths`` entries are distinct, sorted and in range, and
    the padding after them holds in-range indices; no patch inside the context's bounding box is
    missing unless a target covers it (a dropped patch leaves such a hole); and the official cut
    (``"batch_min"``) of the same seed keeps, in every row, a subset of that row's whole context, of
    the batch's shortest length. The trim is applied after the draw, so both see the same blocks.
    """
    grid = problem.grid
    whole_cfg = dataclasses.replace(accepted_config(mask_sampler, problem), context_trim="none")
    whole = mask_sampler.sample_masks(grid, whole_cfg, seed, batch)
    cut = mask_sampler.sample_masks(grid, dataclasses.replace(whole_cfg, context_trim="batch_min"), seed, batch)
    assert whole.context_lengths is not None, "context_trim='none' returned no context_lengths"
    assert cut.context_lengths is None, "context_trim='batch_min' returned context_lengths (its rows are full)"
    n_patches, width = grid[0] * grid[1], grid[1]
    shortest = min(int(n.min()) for n in whole.context_lengths)
    for i, (ctx, lengths) in enumerate(zip(whole.context, whole.context_lengths, strict=True)):
        assert lengths.shape == (batch,) and ctx.shape[1] == int(max(n.max() for n in whole.context_lengths))
        assert cut.context[i].shape[1] == shortest, f"batch_min length {cut.context[i].shape[1]} != {shortest}"
        for b in range(batch):
            k = int(lengths[b])
            real, pad = ctx[b, :k], ctx[b, k:]
            where = f"context {i}, row {b} (grid {grid}, seed {seed}, length {k})"
            assert k >= whole_cfg.min_keep and np.all(np.diff(real) > 0), f"{where}: {real}"
            assert real.min() >= 0 and ctx[b].max() < n_patches and pad.min(initial=0) >= 0, f"{where}: out of range"
            rows, cols = real // width, real % width
            box = {r * width + c for r in range(rows.min(), rows.max() + 1) for c in range(cols.min(), cols.max() + 1)}
            covered = set(np.concatenate([t[b] for t in whole.targets]).tolist())
            missing = box - covered - set(real.tolist())
            assert not missing, f"{where}: patches {sorted(missing)} of the context's box were dropped"
            dropped = set(cut.context[i][b].tolist()) - set(real.tolist())
            assert not dropped, f"{where}: the batch_min cut keeps {sorted(dropped)}, outside the whole context"


@settings(deadline=None)
@given(problem=exact_problems(boundary=True), batch=st.integers(1, 4), seed=mask_seeds)
def test_min_keep_boundary_is_accepted_and_honoured(mask_sampler: Any, problem: MaskProblem, batch: int,
                                                    seed: int) -> None:
    """``min_keep`` equal to the best outcome is accepted and kept; one more is rejected, naming min_keep.

    The best outcome comes from the oracle (``oracle_best_keep``): with the targets
    stacked on one spot, the context keeps its area minus their least overlap, or its
    whole area with ``allow_overlap``.
    """
    grid, best = problem.grid, problem.best_keep
    config = accepted_config(mask_sampler, problem)
    assert mask_sampler.max_context_keep(grid, config) == best, f"max_context_keep != {best} on grid {grid}"
    out = mask_sampler.sample_masks(grid, config, seed, batch)
    for c in out.context:
        assert c.shape[1] >= best, f"context keeps {c.shape[1]} < min_keep={best} on grid {grid}"
        if not config.allow_overlap:
            for b in range(batch):
                shared = np.intersect1d(c[b], np.concatenate([t[b] for t in out.targets]))
                assert shared.size == 0, f"context overlaps targets at {shared} (grid {grid}, seed {seed})"
    over = dataclasses.replace(config, min_keep=best + 1)
    with pytest.raises(ValueError, match=r"MaskConfig\.min_keep"):
        mask_sampler.validate(grid, over)
    with pytest.raises(ValueError, match=r"MaskConfig\.min_keep"):
        mask_sampler.sample_masks(grid, over, seed, batch)


@settings(deadline=None)
@given(problem=mask_problems(), batch=st.integers(1, 4), seed=mask_seeds)
def test_targets_are_rectangles_of_the_configured_size(mask_sampler: Any, problem: MaskProblem, batch: int,
                                                       seed: int) -> None:
    """Each target row is a whole rectangle whose area and aspect lie in the ranges up to rounding."""
    grid, config = problem.grid, accepted_config(mask_sampler, problem)
    out = mask_sampler.sample_masks(grid, config, seed, batch)
    for t in out.targets:
        h, w, full = block_shape(t, grid[1])
        assert full.all(), f"a target is not a whole rectangle on grid {grid}:\n{t}"
        ok = roundable(h, w, grid[0] * grid[1], config.target_scale, config.target_aspect, grid[0] == 1)
        assert ok.all(), (f"target {h[~ok]}x{w[~ok]} is outside scale {config.target_scale}, "
                          f"aspect {config.target_aspect} on grid {grid}")


@settings(deadline=None)
@given(problem=mask_problems(), seed=mask_seeds)
def test_same_seed_same_masks(mask_sampler: Any, problem: MaskProblem, seed: int) -> None:
    """Two draws from the same seed are identical, index for index."""
    grid, config = problem.grid, accepted_config(mask_sampler, problem)
    a, b = (mask_sampler.sample_masks(grid, config, seed, 3) for _ in range(2))
    for x, y in zip(a.context + a.targets, b.context + b.targets, strict=True):
        np.testing.assert_array_equal(x, y, err_msg=f"seed {seed} gave two different masks")


# --- statistical laws (fixed seeds) --------------------------------------------


def test_every_row_and_column_is_covered_by_targets(mask_sampler: Any) -> None:
    """Over many draws every row and column of the grid, the last ones included, is in some target."""
    counts = coverage(mask_sampler, mask_sampler.MaskConfig(), PAPER_GRID, 40, 16, "targets")
    assert counts.sum(axis=1).min() > 0, f"rows never covered: {np.nonzero(counts.sum(axis=1) == 0)[0]}"
    assert counts.sum(axis=0).min() > 0, f"columns never covered: {np.nonzero(counts.sum(axis=0) == 0)[0]}"
    assert counts.min() > 0, f"cells never covered: {np.argwhere(counts == 0)}"


@pytest.mark.parametrize("grid", [(10, 14), (1, 40)])
def test_every_row_and_column_is_covered_by_contexts(mask_sampler: Any, grid: tuple[int, int]) -> None:
    """Over many draws every row, column and cell is in some context: the context is placed anywhere.

    The context block covers a quarter to a third of the grid, so a sampler that
    favours one corner (or never reaches the last row or column) leaves cells out.
    """
    config = mask_sampler.MaskConfig(num_targets=2, target_scale=(0.02, 0.05), context_scale=(0.25, 0.35),
                                     context_aspect=(0.75, 1.5), min_keep=4)
    counts = coverage(mask_sampler, config, grid, 40, 16, "context")
    assert counts.sum(axis=1).min() > 0, f"rows never in a context: {np.nonzero(counts.sum(axis=1) == 0)[0]}"
    assert counts.sum(axis=0).min() > 0, f"columns never in a context: {np.nonzero(counts.sum(axis=0) == 0)[0]}"
    assert counts.min() > 0, f"cells never in a context: {np.argwhere(counts == 0)}"


def test_target_area_matches_the_uniform_scale(mask_sampler: Any) -> None:
    """Target areas follow the oracle law (uniform scale, rounded sides): two-sample KS, generous level."""
    config = mask_sampler.MaskConfig()
    h, w = target_shapes(mask_sampler, config, PAPER_GRID, 300)
    area = h * w / 256
    oracle = oracle_target_areas(256, config.target_scale, config.target_aspect, 20000, seed=0)
    result = stats.ks_2samp(area, oracle)
    assert result.pvalue > 1e-3, f"target areas differ from the uniform-scale oracle: {result}"
    # and not a degenerate law: the mean scale sits mid-range, up to rounding
    assert abs(area.mean() - np.mean(config.target_scale)) < 0.01, f"mean target scale {area.mean():.4f}"


def test_scale_and_aspect_are_uncorrelated(mask_sampler: Any) -> None:
    """On a fine grid (little rounding), target area and aspect have no rank correlation."""
    h, w = target_shapes(mask_sampler, mask_sampler.MaskConfig(), (64, 64), 150)
    rho = stats.spearmanr(h * w, h / w).statistic
    assert abs(rho) < 0.1, f"scale and aspect correlate: Spearman rho = {rho:.3f}"


def test_target_slots_draw_sizes_independently(mask_sampler: Any) -> None:
    """Corrected mode: each target slot draws its own size, so slots differ and are not rank-correlated."""
    config = mask_sampler.MaskConfig()
    assert not config.shared_target_size
    sizes = slot_sizes(mask_sampler, config, PAPER_GRID, SLOT_DRAWS)  # (draws, num_targets)
    differ = float(np.mean(np.any(sizes != sizes[:, :1], axis=1)))
    assert differ > 0.5, f"target slots share one size in {1 - differ:.0%} of batches"
    rho = stats.spearmanr(sizes[:, 0], sizes[:, 1]).statistic
    assert abs(rho) < SLOT_RHO_BOUND, f"slot 0 and slot 1 sizes correlate: Spearman rho = {rho:.3f}"


def test_context_is_trimmed_without_spatial_bias(mask_sampler: Any) -> None:
    """The context's mean row and column are the grid's centre, to five standard errors.

    The law of a batch is symmetric under flipping rows or columns, so each batch's
    mean row has expectation 7.5; placement in a corner or a raster-order trim
    moves it by half a patch or more.
    """
    centres = context_centres(mask_sampler, mask_sampler.MaskConfig(), PAPER_GRID, CENTRE_SEEDS, 32)
    mean_row, mean_col = centres.mean(axis=0)
    assert abs(mean_row - 7.5) < CENTRE_TOLERANCE and abs(mean_col - 7.5) < CENTRE_TOLERANCE, (
        f"context centre ({mean_row:.3f}, {mean_col:.3f}) is off (7.5, 7.5) by more than {CENTRE_TOLERANCE:.3f}")


def test_official_defect_a_correlated_draw(mask_sampler: Any) -> None:
    """(a) correlated_draw: small targets are wide and large ones tall."""
    config = mask_sampler.MaskConfig(correlated_draw=True)
    h, w = target_shapes(mask_sampler, config, (64, 64), 100)
    rho = stats.spearmanr(h * w, h / w).statistic
    assert rho > 0.8, f"correlated_draw should tie aspect to scale, Spearman rho = {rho:.3f}"


def test_official_defect_b_exclusive_bound(mask_sampler: Any) -> None:
    """(b) exclusive_bound: the last row and column are never masked; the paper context is one fixed square."""
    config = mask_sampler.MaskConfig(exclusive_bound=True)
    for seed in range(20):
        out = mask_sampler.sample_masks(PAPER_GRID, config, seed, 8)
        for m in out.context + out.targets:
            assert np.all(m // 16 < 15) and np.all(m % 16 < 15), "a block reached the last row or column"
        box = dataclasses.replace(config, num_targets=1, target_scale=(0.01, 0.01), allow_overlap=True)
        ctx = mask_sampler.sample_masks(PAPER_GRID, box, seed, 1).context[0][0]
        square = (np.arange(15)[:, None] * 16 + np.arange(15)[None, :]).reshape(-1)
        np.testing.assert_array_equal(ctx, square, err_msg="the context is not the top-left 15x15 square")


def test_official_defect_c_raster_trim(mask_sampler: Any) -> None:
    """(c) raster_trim: cutting contexts in raster order drops the bottom rows, not the right columns."""
    centres = context_centres(mask_sampler, mask_sampler.MaskConfig(raster_trim=True), PAPER_GRID, 30, 32)
    mean_row, mean_col = centres.mean(axis=0)
    assert mean_row < 6.5 and abs(mean_col - 7.5) < 0.5, f"raster trim should lift the centre: ({mean_row}, {mean_col})"


def test_official_compatible_sets_every_flag(mask_sampler: Any) -> None:
    """The official mode turns every official flag on and reads min_keep as the official's strict bound."""
    config = mask_sampler.MaskConfig.official_compatible(min_keep=10)
    flags = ("correlated_draw", "floor_area", "shared_target_size", "exclusive_bound", "raster_trim", "relax_overlap")
    assert all(getattr(config, f) for f in flags), config
    assert config.min_keep == 11, f"official min_keep=10 (keep > 10) must be stored as 11, got {config.min_keep}"
    out = mask_sampler.sample_masks(PAPER_GRID, config, 0, 16)
    sizes = {t.shape[1] for t in out.targets}
    assert len(sizes) == 1, f"official targets share one size per batch, got {sizes}"


@pytest.mark.parametrize(
    "fields",
    [
        dict(target_scale=(0.9, 1.0), target_aspect=(3.0, 4.0)),  # no target fits
        dict(min_keep=300),  # more than the grid holds
        dict(num_targets=1, target_scale=(1.0, 1.0), target_aspect=(1.0, 1.0), min_keep=1),  # target fills grid
    ],
)
def test_impossible_configs_are_rejected(mask_sampler: Any, fields: dict[str, Any]) -> None:
    """An unsatisfiable config raises one ValueError that names a field, from validate and before any draw."""
    config = mask_sampler.MaskConfig(**fields)
    with pytest.raises(ValueError, match=r"MaskConfig\.\w+"):
        mask_sampler.validate(PAPER_GRID, config)
    with pytest.raises(ValueError, match=r"MaskConfig\.\w+"):
        mask_sampler.sample_masks(PAPER_GRID, config, 0, 2)
