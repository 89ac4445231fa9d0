"""Chapter 3 of the spec: multi-block masks (docs/spec.md, "Masks"; docs/masks.md).

Structural laws are properties over drawn grids and configs; statistical laws use
fixed seeds, so they are deterministic. The backend exposes its sampler as
``backend.mask_sampler`` (the API of :mod:`jepa_core.masks`); without one these
laws skip.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from scipy import stats

IntArray = NDArray[np.int64]
PAPER_GRID = (16, 16)  # 224 px / patch 14


@pytest.fixture(scope="module")
def sampler(backend: Any) -> Any:
    found = getattr(backend, "mask_sampler", None)
    if found is None:
        pytest.skip(f"backend {getattr(backend, 'name', backend)!r} has no mask_sampler")
    return found


# --- strategies and oracles ---------------------------------------------------


@st.composite
def ranges(draw: st.DrawFn, lo: float, hi: float, max_width: float) -> tuple[float, float]:
    """A ``(low, high)`` range inside ``[lo, hi]``; a point range first (shrinks there)."""
    low = draw(st.floats(lo, hi, allow_nan=False))
    width = draw(st.one_of(st.just(0.0), st.floats(0.0, max_width, allow_nan=False)))
    return low, min(hi, low + width)


@st.composite
def problems(draw: st.DrawFn) -> tuple[tuple[int, int], dict[str, Any]]:
    """A grid (2-D, or a sequence as ``(1, L)``) and the fields of a corrected-mode config."""
    if draw(st.booleans()):
        grid = (draw(st.integers(2, 14)), draw(st.integers(2, 14)))
    else:
        grid = (1, draw(st.integers(2, 64)))
    fields = dict(
        num_targets=draw(st.integers(1, 4)),
        target_scale=draw(ranges(0.02, 0.5, 0.3)),
        target_aspect=draw(ranges(0.3, 3.0, 2.0)),
        num_context=draw(st.integers(1, 2)),
        context_scale=draw(ranges(0.3, 1.0, 0.5)),
        context_aspect=draw(ranges(0.5, 2.0, 1.0)),
        min_keep=draw(st.integers(1, 6)),
        allow_overlap=draw(st.booleans()),
    )
    return grid, fields


def block_shape(rows: IntArray, width: int) -> tuple[IntArray, IntArray, IntArray]:
    """``(B, K)`` indices -> per row: height, width of the bounding box, and whether it is full."""
    r, c = rows // width, rows % width
    h = r.max(axis=1) - r.min(axis=1) + 1
    w = c.max(axis=1) - c.min(axis=1) + 1
    return h, w, h * w == rows.shape[1]


def roundable(h: IntArray, w: IntArray, n: int, scale: tuple[float, float], aspect: tuple[float, float],
              one_d: bool) -> IntArray:
    """Whether ``h, w`` can be ``round(sqrt(s*n*a)), round(sqrt(s*n/a))`` with s, a in the ranges."""
    if one_d:  # length = round(s * n)
        return (h == 1) & (w - 0.5 <= scale[1] * n + 1e-9) & (w + 0.5 >= scale[0] * n - 1e-9)
    area_ok = ((h - 0.5) * (w - 0.5) <= scale[1] * n + 1e-9) & ((h + 0.5) * (w + 0.5) >= scale[0] * n - 1e-9)
    aspect_ok = ((h - 0.5) / (w + 0.5) <= aspect[1] + 1e-9) & ((h + 0.5) / (w - 0.5) >= aspect[0] - 1e-9)
    return area_ok & aspect_ok


def oracle_target_areas(n: int, scale: tuple[float, float], aspect: tuple[float, float], count: int,
                        seed: int) -> NDArray[np.float64]:
    """Ten-line numpy oracle of the corrected law: independent uniform scale and aspect, rounded sides."""
    rng = np.random.default_rng(seed)
    s = rng.uniform(*scale, size=count)
    a = rng.uniform(*aspect, size=count)
    h = np.rint(np.sqrt(s * n * a))
    w = np.rint(np.sqrt(s * n / a))
    return h * w / n


def target_shapes(sampler: Any, config: Any, grid: tuple[int, int], draws: int) -> tuple[IntArray, IntArray]:
    """Heights and widths of every target block of ``draws`` single-sample batches (fixed seeds)."""
    hs, ws = [], []
    for seed in range(draws):
        for t in sampler.sample_masks(grid, config, seed, 1).targets:
            h, w, _ = block_shape(t, grid[1])
            hs.append(h[0])
            ws.append(w[0])
    return np.asarray(hs), np.asarray(ws)


def accepted(sampler: Any, grid: tuple[int, int], fields: dict[str, Any]) -> Any:
    try:
        config = sampler.MaskConfig(**fields)
        sampler.validate(grid, config)
    except ValueError:
        assume(False)
    return config


# --- structural laws (Hypothesis) ---------------------------------------------


@settings(deadline=None)
@given(problem=problems(), batch=st.integers(1, 5), seed=st.integers(0, 2**32 - 1))
def test_masks_are_valid_index_sets(sampler: Any, problem: tuple[tuple[int, int], dict[str, Any]],
                                    batch: int, seed: int) -> None:
    """Indices in range, sorted, unique; one length per tensor; context keeps min_keep and avoids targets."""
    grid, fields = problem
    config = accepted(sampler, grid, fields)
    out = sampler.sample_masks(grid, config, seed, batch)
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


@settings(deadline=None)
@given(problem=problems(), batch=st.integers(1, 4), seed=st.integers(0, 2**32 - 1))
def test_targets_are_rectangles_of_the_configured_size(sampler: Any, problem: tuple[tuple[int, int], dict[str, Any]],
                                                       batch: int, seed: int) -> None:
    """Each target row is a whole rectangle whose area and aspect lie in the ranges up to rounding."""
    grid, fields = problem
    config = accepted(sampler, grid, fields)
    out = sampler.sample_masks(grid, config, seed, batch)
    for t in out.targets:
        h, w, full = block_shape(t, grid[1])
        assert full.all(), f"a target is not a whole rectangle on grid {grid}:\n{t}"
        ok = roundable(h, w, grid[0] * grid[1], config.target_scale, config.target_aspect, grid[0] == 1)
        assert ok.all(), (f"target {h[~ok]}x{w[~ok]} is outside scale {config.target_scale}, "
                          f"aspect {config.target_aspect} on grid {grid}")


@settings(deadline=None)
@given(problem=problems(), seed=st.integers(0, 2**32 - 1))
def test_same_seed_same_masks(sampler: Any, problem: tuple[tuple[int, int], dict[str, Any]], seed: int) -> None:
    """Two draws from the same seed are identical, index for index."""
    grid, fields = problem
    config = accepted(sampler, grid, fields)
    a, b = (sampler.sample_masks(grid, config, seed, 3) for _ in range(2))
    for x, y in zip(a.context + a.targets, b.context + b.targets, strict=True):
        np.testing.assert_array_equal(x, y, err_msg=f"seed {seed} gave two different masks")


# --- statistical laws (fixed seeds) --------------------------------------------


def test_every_row_and_column_is_covered_by_targets(sampler: Any) -> None:
    """Over many draws every row and column of the grid, the last ones included, is in some target."""
    counts = np.zeros(PAPER_GRID)
    for seed in range(40):
        for t in sampler.sample_masks(PAPER_GRID, sampler.MaskConfig(), seed, 16).targets:
            np.add.at(counts.reshape(-1), t.reshape(-1), 1)
    assert counts.sum(axis=1).min() > 0, f"rows never covered: {np.nonzero(counts.sum(axis=1) == 0)[0]}"
    assert counts.sum(axis=0).min() > 0, f"columns never covered: {np.nonzero(counts.sum(axis=0) == 0)[0]}"
    assert counts.min() > 0, f"cells never covered: {np.argwhere(counts == 0)}"


def test_target_area_matches_the_uniform_scale(sampler: Any) -> None:
    """Target areas follow the oracle law (uniform scale, rounded sides): two-sample KS, generous level."""
    config = sampler.MaskConfig()
    h, w = target_shapes(sampler, config, PAPER_GRID, 300)
    area = h * w / 256
    oracle = oracle_target_areas(256, config.target_scale, config.target_aspect, 20000, seed=0)
    result = stats.ks_2samp(area, oracle)
    assert result.pvalue > 1e-3, f"target areas differ from the uniform-scale oracle: {result}"
    # and not a degenerate law: the mean scale sits mid-range, up to rounding
    assert abs(area.mean() - np.mean(config.target_scale)) < 0.01, f"mean target scale {area.mean():.4f}"


def test_scale_and_aspect_are_uncorrelated(sampler: Any) -> None:
    """On a fine grid (little rounding), target area and aspect have no rank correlation."""
    h, w = target_shapes(sampler, sampler.MaskConfig(), (64, 64), 150)
    rho = stats.spearmanr(h * w, h / w).statistic
    assert abs(rho) < 0.1, f"scale and aspect correlate: Spearman rho = {rho:.3f}"


def test_context_is_trimmed_without_spatial_bias(sampler: Any) -> None:
    """Trimming to the batch minimum keeps the context's centre: mean row and column near the middle."""
    rows, cols = [], []
    for seed in range(30):
        c = sampler.sample_masks(PAPER_GRID, sampler.MaskConfig(), seed, 32).context[0]
        rows.append((c // 16).ravel())
        cols.append((c % 16).ravel())
    mean_row, mean_col = float(np.concatenate(rows).mean()), float(np.concatenate(cols).mean())
    assert abs(mean_row - 7.5) < 0.4 and abs(mean_col - 7.5) < 0.4, f"context centre ({mean_row}, {mean_col})"


def test_official_defect_a_correlated_draw(sampler: Any) -> None:
    """(a) correlated_draw: small targets are wide and large ones tall."""
    config = sampler.MaskConfig(correlated_draw=True)
    h, w = target_shapes(sampler, config, (64, 64), 100)
    rho = stats.spearmanr(h * w, h / w).statistic
    assert rho > 0.8, f"correlated_draw should tie aspect to scale, Spearman rho = {rho:.3f}"


def test_official_defect_b_exclusive_bound(sampler: Any) -> None:
    """(b) exclusive_bound: the last row and column are never masked; the paper context is one fixed square."""
    config = sampler.MaskConfig(exclusive_bound=True)
    for seed in range(20):
        out = sampler.sample_masks(PAPER_GRID, config, seed, 8)
        for m in out.context + out.targets:
            assert np.all(m // 16 < 15) and np.all(m % 16 < 15), "a block reached the last row or column"
        box = dataclasses.replace(config, num_targets=1, target_scale=(0.01, 0.01), allow_overlap=True)
        ctx = sampler.sample_masks(PAPER_GRID, box, seed, 1).context[0][0]
        square = (np.arange(15)[:, None] * 16 + np.arange(15)[None, :]).reshape(-1)
        np.testing.assert_array_equal(ctx, square, err_msg="the context is not the top-left 15x15 square")


def test_official_defect_c_raster_trim(sampler: Any) -> None:
    """(c) raster_trim: cutting contexts in raster order drops the bottom rows, not the right columns."""
    config = sampler.MaskConfig(raster_trim=True)
    rows, cols = [], []
    for seed in range(30):
        c = sampler.sample_masks(PAPER_GRID, config, seed, 32).context[0]
        rows.append((c // 16).ravel())
        cols.append((c % 16).ravel())
    mean_row, mean_col = float(np.concatenate(rows).mean()), float(np.concatenate(cols).mean())
    assert mean_row < 6.5 and abs(mean_col - 7.5) < 0.5, f"raster trim should lift the centre: ({mean_row}, {mean_col})"


def test_official_compatible_sets_every_flag(sampler: Any) -> None:
    """The official mode turns every official flag on and reads min_keep as the official's strict bound."""
    config = sampler.MaskConfig.official_compatible(min_keep=10)
    flags = ("correlated_draw", "floor_area", "shared_target_size", "exclusive_bound", "raster_trim", "relax_overlap")
    assert all(getattr(config, f) for f in flags), config
    assert config.min_keep == 11
    out = sampler.sample_masks(PAPER_GRID, config, 0, 16)
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
def test_impossible_configs_are_rejected(sampler: Any, fields: dict[str, Any]) -> None:
    """An unsatisfiable config raises one ValueError that names a field, before any draw."""
    config = sampler.MaskConfig(**fields)
    with pytest.raises(ValueError, match=r"MaskConfig\.\w+"):
        sampler.sample_masks(PAPER_GRID, config, 0, 2)
