"""Unit tests of jepa_core.masks and jepa_core.mask_schedules (called directly, no backend)."""

from __future__ import annotations

import subprocess
import sys
from itertools import product
from typing import Any

import numpy as np
import pytest

from jepa_core import masks as M
from jepa_core.mask_schedules import TargetScaleSchedule, config_at


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        (dict(num_targets=0), "num_targets"),
        (dict(num_context=True), "num_context"),
        (dict(min_keep=2.5), "min_keep"),
        (dict(target_scale=(0.3, 0.2)), "target_scale"),
        (dict(target_scale=(0.0, 0.2)), "target_scale"),
        (dict(context_scale=(0.5, 1.5)), "context_scale"),
        (dict(target_aspect=(-1.0, 2.0)), "target_aspect"),
        (dict(context_aspect=[1.0, 1.0]), "context_aspect"),
        (dict(allow_overlap=1), "allow_overlap"),
    ],
)
def test_config_errors_name_the_field(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=rf"^MaskConfig\.{field}=") as info:
        M.MaskConfig(**fields)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("grid", "fields", "field"),
    [
        ((4, 4), dict(target_scale=(0.9, 1.0), target_aspect=(4.0, 5.0)), "target_scale"),
        ((2, 30), dict(target_aspect=(0.1, 0.2), context_scale=(0.9, 1.0), context_aspect=(2.0, 2.0)),
         "context_scale"),
        ((16, 16), dict(min_keep=257), "min_keep"),
        ((1, 9), dict(exclusive_bound=True, context_scale=(0.1, 0.1)), "min_keep"),
        ((1, 10), dict(num_targets=1, target_scale=(0.5, 0.5), context_scale=(1.0, 1.0), min_keep=6), "min_keep"),
        ((2, 1), dict(exclusive_bound=True), "exclusive_bound"),
    ],
)
def test_impossible_grid_configs_name_the_field(grid: M.Grid, fields: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=rf"^MaskConfig\.{field}"):
        M.validate(grid, M.MaskConfig(**fields))


def _min_overlap_brute(h: int, w: int, hc: int, wc: int, grid: M.Grid) -> int:
    """Least overlap of an h x w and an hc x wc rectangle over every pair of positions."""
    best = h * w
    for y, x, yc, xc in product(range(grid[0] - h + 1), range(grid[1] - w + 1),
                                range(grid[0] - hc + 1), range(grid[1] - wc + 1)):
        oy = max(0, min(y + h, yc + hc) - max(y, yc))
        ox = max(0, min(x + w, xc + wc) - max(x, xc))
        best = min(best, oy * ox)
    return best


@pytest.mark.parametrize("grid", [(3, 5), (5, 5), (6, 4)])
def test_max_context_keep_is_the_brute_force_optimum(grid: M.Grid) -> None:
    """With fixed block sizes, max_context_keep equals the brute-force best over all placements."""
    n = grid[0] * grid[1]
    for h, w, hc, wc in product(range(1, grid[0] + 1), range(1, grid[1] + 1), repeat=2):
        config = M.MaskConfig(num_targets=2, target_scale=(h * w / n,) * 2, target_aspect=(h / w,) * 2,
                              context_scale=(hc * wc / n,) * 2, context_aspect=(hc / wc,) * 2, min_keep=1)
        best = hc * wc - _min_overlap_brute(h, w, hc, wc, grid)
        if best < 1:
            with pytest.raises(ValueError, match="min_keep"):
                M.validate(grid, config)
        else:
            assert M.max_context_keep(grid, config) == best, (h, w, hc, wc)
            out = M.sample_masks(grid, config, 0, 3)
            assert [t.shape[1] for t in out.targets] == [h * w, h * w]


def test_sequences_get_interval_blocks() -> None:
    config = M.MaskConfig(target_scale=(0.1, 0.2), context_scale=(0.8, 1.0), min_keep=5)
    out = M.sample_masks_1d(100, config, 3, 6)
    assert out.grid == (1, 100)
    for t in out.targets:
        assert np.all(np.diff(t, axis=1) == 1), "a 1-D target is not an interval"
        assert 9 <= t.shape[1] <= 21
    assert out.context[0].shape[1] >= 5


def test_sample_mask_is_one_row_of_a_batch() -> None:
    contexts, targets = M.sample_mask((16, 16), M.MaskConfig(), 7)
    batch = M.sample_masks((16, 16), M.MaskConfig(), 7, 1)
    for a, b in zip(contexts + targets, batch.context + batch.targets, strict=True):
        np.testing.assert_array_equal(a, b[0])
    assert contexts[0].ndim == 1


def test_generator_advances_and_seed_type_is_checked() -> None:
    rng = np.random.default_rng(0)
    a, b = M.sample_masks((16, 16), M.MaskConfig(), rng, 2), M.sample_masks((16, 16), M.MaskConfig(), rng, 2)
    assert not all(np.array_equal(x, y) for x, y in zip(a.targets, b.targets, strict=True))
    with pytest.raises(TypeError, match="rng="):
        M.sample_masks((16, 16), M.MaskConfig(), 0.5, 2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch_size="):
        M.sample_masks((16, 16), M.MaskConfig(), 0, 0)


TIGHT = dict(num_targets=4, target_scale=(0.14, 0.14), target_aspect=(1.0, 1.0),
             context_scale=(0.5625, 0.5625), min_keep=20)  # 3x3 targets, a 6x6 context on 8x8


def test_relax_overlap_lets_the_context_overlap_targets_and_the_default_never_does() -> None:
    overlaps = {True: 0, False: 0}
    for relax, seed in product((True, False), range(20)):
        out = M.sample_masks((8, 8), M.MaskConfig(relax_overlap=relax, **TIGHT), seed, 16)  # type: ignore[arg-type]
        for b in range(16):
            targets = np.concatenate([t[b] for t in out.targets])
            overlaps[relax] += np.intersect1d(out.context[0][b], targets).size
        assert out.context[0].shape[1] >= 20
    assert overlaps[False] == 0 and overlaps[True] > 0, overlaps


def test_official_sizes_are_floored_shared_and_clipped() -> None:
    config = M.MaskConfig.official_compatible()
    for seed in range(20):
        out = M.sample_masks((16, 16), config, seed, 4)
        assert len({t.shape[1] for t in out.targets}) == 1
        for t in out.targets:
            assert t.max() // 16 < 15 and (t % 16).max() < 15
        assert out.context[0].shape[1] >= 11


def test_official_context_is_the_fixed_square_when_no_target_constrains_it() -> None:
    config = M.MaskConfig.official_compatible(allow_overlap=True)
    square = (np.arange(15)[:, None] * 16 + np.arange(15)).reshape(-1)
    for seed in range(10):
        ctx = M.sample_masks((16, 16), config, seed, 4).context[0]
        assert (ctx == square).all()


def test_default_masks_reach_every_corner() -> None:
    counts = np.zeros(256)
    for seed in range(30):
        out = M.sample_masks((16, 16), M.MaskConfig(), seed, 16)
        for m in out.context + out.targets:
            np.add.at(counts, m.reshape(-1), 1)
    assert counts[[0, 15, 240, 255]].min() > 0


def test_target_scale_schedule_is_a_pure_linear_ramp() -> None:
    s = TargetScaleSchedule(start=(0.1, 0.15), end=(0.2, 0.3), total_steps=100, warmup_steps=20)
    assert s(0) == s(20) == (0.1, 0.15)
    assert s(100) == s(500) == pytest.approx((0.2, 0.3))
    assert s(60) == pytest.approx((0.15, 0.225))
    lows = [s(k)[0] for k in range(120)]
    assert lows == sorted(lows) and s(60) == s(60)
    assert config_at(M.MaskConfig(), s, 100).target_scale == pytest.approx((0.2, 0.3))
    with pytest.raises(ValueError, match="warmup_steps"):
        TargetScaleSchedule(total_steps=5, warmup_steps=5)
    with pytest.raises(ValueError, match="start"):
        TargetScaleSchedule(start=(0.3, 0.2))


def test_masks_do_not_import_torch() -> None:
    code = "import sys, jepa_core.masks, jepa_core.mask_schedules; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_render_masks_writes_a_png(tmp_path: Any) -> None:
    pytest.importorskip("matplotlib")
    from jepa_torch.io.plots import render_masks

    batch = M.sample_masks((8, 8), M.MaskConfig(min_keep=4), 0, 3)
    written = render_masks(batch, (8, 8), tmp_path / "a" / "masks.png", samples=2)
    image = np.linspace(0.0, 1.0, 32 * 32).reshape(32, 32)
    one = render_masks(([c[0] for c in batch.context], [t[0] for t in batch.targets]), (8, 8),
                       tmp_path / "one.png", image=image, title="one sample")
    for path in (written, one):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 1000
