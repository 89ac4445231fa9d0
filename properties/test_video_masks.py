"""Chapter 3 of the spec on video: V-JEPA's 3-D multi-block masks (docs/spec.md, "Masks"; docs/masks.md).

A mask configuration (``VideoMaskConfig``) draws ``num_blocks`` boxes over a ``(T, H, W)`` tubelet
grid; the target is their union and the context the rest of its first ``Tc`` frames. The sampler is
the backend's ``mask_sampler`` (the API of :mod:`jepa_core.masks`), asked with a ``VideoMaskConfig``;
a sampler without one skips this chapter and says so.

Structural laws are Hypothesis properties over drawn grids and configs: *exact* problems, where every
box has one size and a brute-force oracle knows the best outcome, must be accepted; *free* ones may be
impossible and are skipped if rejected. Statistical laws use fixed seeds, so they are deterministic.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from .assertions import accepted_video_config, box_tokens, roundable, rows_of
from .strategies import VideoMaskProblem, mask_seeds, video_exact_problems, video_mask_problems

# Box statistics: 300 single-sample batches of 4 independent slots give 1200 sizes; Spearman's rho
# of independent draws then has standard error about 1 / sqrt(1199) = 0.029; the law allows four.
SIZE_DRAWS = 300
RHO_BOUND = 4 / np.sqrt(4 * SIZE_DRAWS - 1)
# Centres: 200 batches of 8 samples x 2 boxes on a 6x9x9 grid. A box centre's standard deviation is
# at most 2.6 tokens along any axis here, so the mean of 3200 has a standard error under 0.05 even
# with the sizes shared within a batch; a one-sided bound moves it by half a token.
CENTRE_BATCHES = 200
CENTRE_TOLERANCE = 0.15


@pytest.fixture(scope="session")
def video_sampler(mask_sampler: Any) -> Any:
    """The backend's sampler, if it draws 3-D masks; otherwise this chapter skips and says so."""
    if not hasattr(mask_sampler, "VideoMaskConfig"):
        pytest.skip("3-D masks skipped: the backend's mask_sampler has no VideoMaskConfig")
    return mask_sampler


def _draw(sampler: Any, problem: VideoMaskProblem, seed: int, batch: int) -> tuple[Any, Any]:
    config = accepted_video_config(sampler, problem)
    return config, sampler.sample_masks(problem.grid, config, seed, batch)


def _context_frames(config: Any, frames: int) -> int:
    return max(1, int(np.floor(config.context_frames * frames)))


# --- structural laws (Hypothesis) ---------------------------------------------


@settings(deadline=None)
@given(problem=video_mask_problems(), batch=st.integers(1, 4), seed=mask_seeds)
def test_video_masks_are_valid_index_sets(video_sampler: Any, problem: VideoMaskProblem, batch: int,
                                          seed: int) -> None:
    """One context and one target per config; sorted unique indices in range; the context keeps
    ``min_keep``, lies in its first ``Tc`` frames and shares no token with the target."""
    config, out = _draw(video_sampler, problem, seed, batch)
    frames, rows, cols = problem.grid
    n, tc = frames * rows * cols, _context_frames(config, frames)
    assert len(out.context) == 1 and len(out.targets) == 1, "a 3-D config gives one context and one target"
    assert tuple(out.grid) == problem.grid, f"grid {out.grid} != {problem.grid}"
    ctx_len = None if out.context_lengths is None else out.context_lengths[0]
    tgt_len = None if out.target_lengths is None else out.target_lengths[0]
    for name, m in (("context", out.context[0]), ("target", out.targets[0])):
        assert m.dtype == np.int64 and m.ndim == 2 and m.shape[0] == batch, f"{name} shape {m.shape} {m.dtype}"
        assert m.min() >= 0 and m.max() < n, f"{name} index outside [0, {n}) on grid {problem.grid}"
    for b, (ctx, tgt) in enumerate(zip(rows_of(out.context[0], ctx_len), rows_of(out.targets[0], tgt_len))):
        where = f"row {b} (grid {problem.grid}, seed {seed})"
        k_ctx = len(ctx) if ctx_len is None else int(ctx_len[b])
        assert len(ctx) == k_ctx and np.all(np.diff(out.context[0][b, :k_ctx]) > 0), f"{where}: context unsorted"
        k_tgt = len(tgt) if tgt_len is None else int(tgt_len[b])
        assert len(tgt) == k_tgt and np.all(np.diff(out.targets[0][b, :k_tgt]) > 0), f"{where}: target unsorted"
        assert len(ctx) >= config.min_keep, f"{where}: context keeps {len(ctx)} < min_keep={config.min_keep}"
        assert not ctx & tgt, f"{where}: context and target share {sorted(ctx & tgt)}"
        late = [i for i in ctx if i // (rows * cols) >= tc]
        assert not late, f"{where}: context tokens {late} lie past its first {tc} frames"


@settings(deadline=None)
@given(problem=video_mask_problems(), batch=st.integers(1, 4), seed=mask_seeds)
def test_blocks_are_boxes_of_the_configured_size(video_sampler: Any, problem: VideoMaskProblem, batch: int,
                                                 seed: int) -> None:
    """Every box lies inside the grid and its ``t`` and ``h x w`` are reachable by the configured law."""
    config, out = _draw(video_sampler, problem, seed, batch)
    frames, rows, cols = problem.grid
    boxes = np.asarray(out.boxes)
    assert boxes.shape == (batch, config.num_blocks, 6), f"boxes shape {boxes.shape}"
    start, top, left, t, h, w = boxes.reshape(-1, 6).T
    assert (start >= 0).all() and (top >= 0).all() and (left >= 0).all(), f"a box starts outside: {boxes}"
    assert (start + t <= frames).all() and (top + h <= rows).all() and (left + w <= cols).all(), (
        f"a box ends outside the {problem.grid} grid: {boxes}")
    lo, hi = config.temporal_scale[0] * frames, config.temporal_scale[1] * frames
    rounded = (t - 0.5 <= hi + 1e-9) & (t + 0.5 >= lo - 1e-9)  # t = round(s * T) for some s in range
    t_ok = (t >= 1) & (rounded | ((t == 1) & (lo <= 1.5 + 1e-9)))  # or round(s * T) < 1, raised to 1
    assert t_ok.all(), f"temporal extents {t} not max(1, round(s * {frames})) for s in {config.temporal_scale}"
    hw_ok = roundable(h, w, rows * cols, config.spatial_scale, config.aspect, one_d=rows == 1)
    assert hw_ok.all(), (f"spatial sizes {list(zip(h, w))} not reachable with scale {config.spatial_scale}, "
                         f"aspect {config.aspect} on {rows}x{cols}")


@settings(deadline=None)
@given(problem=video_mask_problems(), batch=st.integers(1, 4), seed=mask_seeds)
def test_target_is_the_union_and_context_its_complement(video_sampler: Any, problem: VideoMaskProblem,
                                                       batch: int, seed: int) -> None:
    """Whole masks (``trim="none"``): the target is exactly the union of the boxes, the context exactly the
    rest of the first ``Tc`` frames, nothing else removed. The batch cut (``"batch_min"``) of the same
    seed keeps, per row, a subset of each, of the batch's shortest length."""
    config = accepted_video_config(video_sampler, problem)
    whole_cfg = dataclasses.replace(config, trim="none")
    whole = video_sampler.sample_masks(problem.grid, whole_cfg, seed, batch)
    cut = video_sampler.sample_masks(problem.grid, dataclasses.replace(config, trim="batch_min"), seed, batch)
    frames, rows, cols = problem.grid
    tc = _context_frames(config, frames)
    assert whole.context_lengths is not None and whole.target_lengths is not None, "trim='none' gave no lengths"
    contexts = rows_of(whole.context[0], whole.context_lengths[0])
    targets = rows_of(whole.targets[0], whole.target_lengths[0])
    np.testing.assert_array_equal(np.asarray(cut.boxes), np.asarray(whole.boxes),
                                  err_msg="the trim changed the boxes: it must come after the draw")
    for b in range(batch):
        where = f"row {b} (grid {problem.grid}, seed {seed})"
        union = set().union(*(box_tokens(box, problem.grid) for box in np.asarray(whole.boxes)[b]))
        assert targets[b] == union, f"{where}: target minus union {sorted(targets[b] - union)}, " \
                                    f"union minus target {sorted(union - targets[b])}"
        complement = set(range(tc * rows * cols)) - union
        assert contexts[b] == complement, f"{where}: context misses {sorted(complement - contexts[b])}, " \
                                          f"has extra {sorted(contexts[b] - complement)}"
    for name, cut_m, sets in (("context", cut.context[0], contexts), ("target", cut.targets[0], targets)):
        assert cut_m.shape[1] == min(len(s) for s in sets), f"batch_min {name} length {cut_m.shape[1]}"
        for b in range(batch):
            assert set(cut_m[b].tolist()) <= sets[b], f"batch_min {name} row {b} is not a subset of the whole"


@settings(deadline=None)
@given(problem=video_mask_problems(), seed=mask_seeds)
def test_full_extent_blocks_cover_every_frame(video_sampler: Any, problem: VideoMaskProblem, seed: int) -> None:
    """With ``temporal_scale = (1, 1)`` every box spans all ``T`` frames: the target is a spatial set
    repeated in every frame (a tube), and the context the same in every context frame."""
    fields = {**problem.fields, "temporal_scale": (1.0, 1.0), "trim": "none"}
    config, out = _draw(video_sampler, dataclasses.replace(problem, fields=fields, best_keep=None), seed, 2)
    frames, rows, cols = problem.grid
    boxes = np.asarray(out.boxes)
    assert (boxes[..., 0] == 0).all() and (boxes[..., 3] == frames).all(), f"boxes not full extent: {boxes}"
    assert out.target_lengths is not None
    for b, tgt in enumerate(rows_of(out.targets[0], out.target_lengths[0])):
        cells = {i % (rows * cols) for i in tgt}
        tube = {f * rows * cols + c for f in range(frames) for c in cells}
        assert tgt == tube, f"row {b}: target is not a tube over all {frames} frames: misses {sorted(tube - tgt)}"


@settings(deadline=None)
@given(problem=video_mask_problems(), seed=mask_seeds)
def test_same_seed_same_video_masks(video_sampler: Any, problem: VideoMaskProblem, seed: int) -> None:
    """Masks are a function of (grid, config, seed): two draws from one seed are equal, boxes included."""
    config = accepted_video_config(video_sampler, problem)
    a = video_sampler.sample_masks(problem.grid, config, seed, 3)
    b = video_sampler.sample_masks(problem.grid, config, seed, 3)
    for name in ("context", "targets"):
        for x, y in zip(getattr(a, name), getattr(b, name), strict=True):
            np.testing.assert_array_equal(x, y, err_msg=f"{name} differ between two draws of seed {seed}")
    np.testing.assert_array_equal(np.asarray(a.boxes), np.asarray(b.boxes), err_msg="boxes differ")


@settings(deadline=None)
@given(problem=video_exact_problems(boundary=True), batch=st.integers(1, 6), seed=mask_seeds)
def test_video_min_keep_boundary_is_accepted_and_honoured(video_sampler: Any, problem: VideoMaskProblem,
                                                          batch: int, seed: int) -> None:
    """At ``min_keep`` = the brute-force best outcome the config is accepted and every context keeps that
    many tokens (so the sampler found the one stacked placement); one more is rejected in one line."""
    config, out = _draw(video_sampler, problem, seed, batch)
    lengths = [len(r) for r in rows_of(out.context[0], None if out.context_lengths is None
                                       else out.context_lengths[0])]
    assert min(lengths) >= config.min_keep, f"contexts keep {lengths} < min_keep={config.min_keep}"
    over = dataclasses.replace(config, min_keep=config.min_keep + 1)
    with pytest.raises(ValueError, match="min_keep"):
        video_sampler.validate(problem.grid, over)


@pytest.mark.parametrize("grid, fields", [
    ((2, 4, 4), dict(spatial_scale=(1.0, 1.0), aspect=(1.0, 1.0))),  # one box covers everything
    ((4, 4, 4), dict(spatial_scale=(1.0, 1.0), aspect=(3.0, 3.0))),  # no box of that aspect fits
    ((4, 6, 6), dict(spatial_scale=(0.5, 0.5), aspect=(1.0, 1.0), min_keep=4 * 36 - 18 + 1)),
    ((4, 6, 6), dict(spatial_scale=(0.5, 0.5), temporal_scale=(0.5, 0.5), context_frames=0.5,
                     min_keep=2 * 36 + 1)),
])
def test_impossible_video_configs_are_rejected(video_sampler: Any, grid: tuple[int, int, int],
                                               fields: dict[str, Any]) -> None:
    """A config no outcome satisfies is refused before any draw, by validate and by sample_masks alike."""
    config = video_sampler.VideoMaskConfig(**fields)
    with pytest.raises(ValueError):
        video_sampler.validate(grid, config)
    with pytest.raises(ValueError):
        video_sampler.sample_masks(grid, config, 0, 2)


# --- statistical laws (fixed seeds) ----------------------------------------------


def _box_sizes(sampler: Any, config: Any, grid: tuple[int, int, int], draws: int) -> np.ndarray:
    """``(draws * num_blocks, 3)``: ``t, h, w`` of every box of ``draws`` single-sample batches."""
    return np.concatenate([np.asarray(sampler.sample_masks(grid, config, seed, 1).boxes)[0, :, 3:]
                           for seed in range(draws)])


def test_box_sizes_follow_the_law_with_independent_draws(video_sampler: Any) -> None:
    """Spatial scale, aspect and temporal extent are independent uniforms: their rounded outcomes match a
    ten-line numpy oracle (two-sample KS) and have no rank correlation with each other."""
    grid = (16, 48, 48)
    config = video_sampler.VideoMaskConfig(num_blocks=4, spatial_scale=(0.05, 0.3), aspect=(0.5, 2.0),
                                           temporal_scale=(0.1, 1.0))
    t, h, w = _box_sizes(video_sampler, config, grid, SIZE_DRAWS).T
    rng = np.random.default_rng(0)
    s, a, u = rng.uniform(0.05, 0.3, 20000), rng.uniform(0.5, 2.0, 20000), rng.uniform(0.1, 1.0, 20000)
    oracle_area = np.rint(np.sqrt(s * 2304 * a)) * np.rint(np.sqrt(s * 2304 / a))
    oracle_t = np.clip(np.rint(u * 16), 1, 16)
    for name, got, want in (("area", h * w, oracle_area), ("extent", t, oracle_t)):
        result = stats.ks_2samp(got, want)
        assert result.pvalue > 1e-3, f"box {name} differs from the uniform-law oracle: {result}"
    for name, x, y in (("area/aspect", h * w, h / w), ("extent/area", t, h * w), ("extent/aspect", t, h / w)):
        rho = stats.spearmanr(x, y).statistic
        assert abs(rho) < RHO_BOUND, f"{name} correlate: Spearman rho = {rho:.3f} (bound {RHO_BOUND:.3f})"


def test_block_centres_and_kept_tokens_have_no_spatial_or_temporal_bias(video_sampler: Any) -> None:
    """Box centres, and the tokens the batch cut keeps, average at the grid's centre in t, row and col.

    The law is symmetric under reversing time or flipping rows or columns (with every frame in the
    context), so each mean has expectation ``((T-1)/2, (H-1)/2, (W-1)/2)``. An exclusive upper bound on
    positions, or a cut that keeps the first tokens in raster order, moves a mean by half a token or more.
    """
    grid = (6, 9, 9)
    centre = (np.asarray(grid) - 1) / 2.0
    config = video_sampler.VideoMaskConfig(num_blocks=2, spatial_scale=(0.1, 0.3), aspect=(0.75, 1.5),
                                           temporal_scale=(0.3, 0.7))
    box_centres, kept = [], {"context": [], "target": []}
    for seed in range(CENTRE_BATCHES):
        out = video_sampler.sample_masks(grid, config, seed, 8)
        boxes = np.asarray(out.boxes).reshape(-1, 6)
        box_centres.append(boxes[:, :3] + (boxes[:, 3:] - 1) / 2.0)
        for name, m in (("context", out.context[0]), ("target", out.targets[0])):
            idx = m.reshape(-1)
            kept[name].append(np.stack([idx // 81, idx // 9 % 9, idx % 9], axis=1).mean(axis=0))
    for name, values in (("box centre", np.concatenate(box_centres)), *(
            (f"kept {k} token", np.asarray(v)) for k, v in kept.items())):
        mean = values.mean(axis=0)
        assert np.all(np.abs(mean - centre) < CENTRE_TOLERANCE), (
            f"mean {name} (t, row, col) = {np.round(mean, 3)} is off {centre} by more than {CENTRE_TOLERANCE}")


def test_vjepa2_configs_draw_both_ranges(video_sampler: Any) -> None:
    """V-JEPA 2's two configs on its 8x16x16 grid: 8 short-range and 2 long-range tubes per sample, drawn
    in order from one seed; the long-range target is the larger on average."""
    grid = (8, 16, 16)
    configs = [video_sampler.VideoMaskConfig(num_blocks=8, spatial_scale=(0.15, 0.15)),
               video_sampler.VideoMaskConfig(num_blocks=2, spatial_scale=(0.7, 0.7))]
    short, long_ = video_sampler.sample_video_masks(grid, configs, 0, 4)
    assert np.asarray(short.boxes).shape == (4, 8, 6) and np.asarray(long_.boxes).shape == (4, 2, 6)
    assert (np.asarray(short.boxes)[..., 3] == 8).all() and (np.asarray(long_.boxes)[..., 3] == 8).all()
    assert long_.targets[0].shape[1] > short.targets[0].shape[1], "long-range targets are not the larger"
    again = video_sampler.sample_video_masks(grid, configs, 0, 4)
    for x, y in zip((short, long_), again, strict=True):
        np.testing.assert_array_equal(x.targets[0], y.targets[0], err_msg="same seed, other configs' masks")
