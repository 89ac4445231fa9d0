"""Microseconds per clip of the 3-D (V-JEPA) mask sampler, beside the official V-JEPA 2 mask generators.

V-JEPA 2's setting: 16 frames of 256 px, tubelets 2x16x16 (an 8x16x16 grid), batch 32, two mask
configurations per batch (8 blocks of spatial scale 0.15 and 2 of 0.7, every frame, aspect 0.75-1.5).

    python benchmarks/bench_video_masks.py                             # ours: corrected and official-compatible
    python benchmarks/bench_video_masks.py --official ~/src/vjepa2     # and the official generators, alternately

With ``--official PATH`` (a checkout of facebookresearch/vjepa2) the ``_MaskGenerator`` objects of its
``src.masks.multiseq_multiblock3d.MaskCollator`` are imported from there and called in the same
process, one per configuration, in rounds alternating with ours (no data is collated on either side).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jepa_core.video_masks import VideoMaskConfig, sample_video_masks, vjepa2_configs  # noqa: E402

GRID = (8, 16, 16)
OFFICIAL_CFGS = [dict(aspect_ratio=(0.75, 1.5), num_blocks=8, spatial_scale=(0.15, 0.15), temporal_scale=(1.0, 1.0),
                      max_temporal_keep=1.0),
                 dict(aspect_ratio=(0.75, 1.5), num_blocks=2, spatial_scale=(0.7, 0.7), temporal_scale=(1.0, 1.0),
                      max_temporal_keep=1.0)]


def _ours(configs: list[VideoMaskConfig], batch_size: int) -> Callable[[], object]:
    rng = np.random.default_rng(0)
    sample_video_masks(GRID, configs, rng, batch_size)  # warm the validation cache
    return lambda: sample_video_masks(GRID, configs, rng, batch_size)


def _official(path: Path, batch_size: int) -> Callable[[], object]:
    sys.path.insert(0, str(path.resolve()))
    try:
        from src.masks.multiseq_multiblock3d import MaskCollator  # type: ignore[import-not-found]
    except ImportError as exc:
        raise SystemExit(f"--official {path}: src.masks.multiseq_multiblock3d does not import ({exc}); "
                         "give a vjepa2 checkout")
    finally:
        sys.path.pop(0)
    collator = MaskCollator(cfgs_mask=OFFICIAL_CFGS, dataset_fpcs=[16], crop_size=(256, 256), patch_size=(16, 16),
                            tubelet_size=2)
    generators = collator.mask_generators[16]
    return lambda: [g(batch_size) for g in generators]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", type=Path, help="a checkout of facebookresearch/vjepa2")
    parser.add_argument("--batches", type=int, default=10, help="batches per round")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    fns = {"corrected (default)": _ours(vjepa2_configs(), args.batch_size),
           "official_compatible": _ours([VideoMaskConfig.official_compatible(num_blocks=c.num_blocks,
                                                                             spatial_scale=c.spatial_scale)
                                         for c in vjepa2_configs()], args.batch_size)}
    if args.official:
        fns["official generators"] = _official(args.official, args.batch_size)
    per_round: dict[str, list[float]] = {k: [] for k in fns}
    for r in range(args.rounds):
        for name in fns if r % 2 == 0 else list(fns)[::-1]:
            start = time.perf_counter()
            for _ in range(args.batches):
                fns[name]()
            per_round[name].append((time.perf_counter() - start) / (args.batches * args.batch_size) * 1e6)
    print(f"grid {GRID} (T, H, W), batch {args.batch_size}, 2 configurations, {args.rounds} alternating rounds "
          f"of {args.batches} batches (median)")
    print(f"{'sampler':<24}{'us/clip':>10}{'ms/batch':>10}{'official / ours':>24}")
    for name, times in per_round.items():
        us = statistics.median(times)
        vs = ""
        if "official generators" in per_round and name != "official generators":
            ratios = [o / t for o, t in zip(per_round["official generators"], times)]
            vs = f"{statistics.median(ratios):.1f}x ({min(ratios):.1f}-{max(ratios):.1f})"
        print(f"{name:<24}{us:>10.1f}{us * args.batch_size / 1e3:>10.2f}{vs:>24}")


if __name__ == "__main__":
    main()
