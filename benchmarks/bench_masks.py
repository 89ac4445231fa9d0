"""Microseconds per image of the mask sampler at the paper's setting, against the official collator.

The paper's setting: 224 px images, patch 14 (a 16x16 grid), batch 128, 4 targets
of scale 0.15-0.2 and aspect 0.75-1.5, 1 context of scale 0.85-1.0 and aspect 1,
min_keep 10. The official collator (src/masks/multiblock.py, Python loops) was
measured at 66 ms per batch of 128 on the reference machine: 516 us per image.

    python benchmarks/bench_masks.py [--batches 200] [--batch-size 128]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from jepa_core.masks import MaskConfig, sample_masks

OFFICIAL_US_PER_IMAGE = 516.0
GRID = (16, 16)


def us_per_image(config: MaskConfig, batches: int, batch_size: int) -> float:
    """Median over 5 repeats of the mean time per image of ``batches`` batches."""
    rng = np.random.default_rng(0)
    sample_masks(GRID, config, rng, batch_size)  # warm the validation cache
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(batches):
            sample_masks(GRID, config, rng, batch_size)
        runs.append((time.perf_counter() - start) / (batches * batch_size) * 1e6)
    return float(np.median(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    print(f"grid {GRID}, batch {args.batch_size}, {args.batches} batches x 5 repeats (median)")
    print(f"{'mode':<22}{'us/image':>10}{'ms/batch':>10}{'vs official':>13}")
    for name, config in (("corrected (default)", MaskConfig()),
                         ("official_compatible", MaskConfig.official_compatible())):
        us = us_per_image(config, args.batches, args.batch_size)
        print(f"{name:<22}{us:>10.2f}{us * args.batch_size / 1e3:>10.3f}{OFFICIAL_US_PER_IMAGE / us:>12.1f}x")
    print(f"{'official collator':<22}{OFFICIAL_US_PER_IMAGE:>10.2f}{OFFICIAL_US_PER_IMAGE * 128 / 1e3:>10.3f}"
          f"{1.0:>12.1f}x  (measured, not re-run)")


if __name__ == "__main__":
    main()
