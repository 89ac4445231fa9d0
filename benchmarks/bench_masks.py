"""Microseconds per image of the mask sampler at the paper's setting, beside the official collator.

The paper's setting: 224 px images, patch 14 (a 16x16 grid), batch 128, 4 targets of scale
0.15-0.2 and aspect 0.75-1.5, 1 context of scale 0.85-1.0 and aspect 1, min_keep 10.

    python benchmarks/bench_masks.py                          # ours: corrected and official-compatible
    python benchmarks/bench_masks.py --official ~/src/ijepa   # and the official MaskCollator, alternately

With ``--official PATH`` (a checkout of facebookresearch/ijepa) its ``src.masks.multiblock.MaskCollator``
is imported from there and timed in the same process, in rounds alternating with ours; each
collator call also collates its batch of 128 one-element tensors, which costs microseconds. On the
16x16 grid it finishes; on small grids (8x8) it can loop without end, see benchmarks/bench_step.py.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jepa_core.masks import MaskConfig, sample_masks  # noqa: E402

GRID = (16, 16)


def _ours(config: MaskConfig, batch_size: int) -> Callable[[], object]:
    rng = np.random.default_rng(0)
    sample_masks(GRID, config, rng, batch_size)  # warm the validation cache
    return lambda: sample_masks(GRID, config, rng, batch_size)


def _official(path: Path, batch_size: int) -> Callable[[], object]:
    sys.path.insert(0, str(path.resolve()))
    try:
        from src.masks.multiblock import MaskCollator  # type: ignore[import-not-found]
    except ImportError as exc:
        raise SystemExit(f"--official {path}: src.masks.multiblock does not import ({exc}); give an ijepa checkout")
    finally:
        sys.path.pop(0)
    collator = MaskCollator(input_size=(224, 224), patch_size=14, enc_mask_scale=(0.85, 1.0),
                            pred_mask_scale=(0.15, 0.2), aspect_ratio=(0.75, 1.5), nenc=1, npred=4, min_keep=10,
                            allow_overlap=False)
    batch = [(torch.zeros(1),)] * batch_size
    return lambda: collator(batch)


def side_by_side(official: Any, batches: int = 40, batch_size: int = 128, rounds: int = 6,
                 official_path: Path | None = None) -> list[dict[str, Any]]:
    """Per-image microseconds of each sampler: the median over ``rounds`` alternating rounds of ``batches`` calls.

    Args:
        official: anything true (the modules of ``bench_step.import_official``) to time the official
            collator too; its checkout is ``official_path`` or, when None, the one on ``sys.path``.
    """
    fns: dict[str, Callable[[], object]] = {
        "corrected (default)": _ours(MaskConfig(), batch_size),
        "official_compatible": _ours(MaskConfig.official_compatible(), batch_size),
    }
    if official:
        fns["official MaskCollator"] = _official(official_path or _checkout(), batch_size)
    per_round: dict[str, list[float]] = {k: [] for k in fns}
    for r in range(rounds):
        for name in fns if r % 2 == 0 else list(fns)[::-1]:
            start = time.perf_counter()
            for _ in range(batches):
                fns[name]()
            per_round[name].append((time.perf_counter() - start) / (batches * batch_size) * 1e6)
    rows = []
    for name, times in per_round.items():
        row: dict[str, Any] = {"mode": name, "us_per_image": statistics.median(times), "rounds_us": times}
        if "official MaskCollator" in per_round and name != "official MaskCollator":
            ratios = [o / t for o, t in zip(per_round["official MaskCollator"], times)]
            row["speedup_vs_official"] = statistics.median(ratios)
            row["speedup_range"] = [min(ratios), max(ratios)]
        rows.append(row)
    return rows


def _checkout() -> Path:
    for entry in sys.path:
        if (Path(entry) / "src" / "masks" / "multiblock.py").is_file():
            return Path(entry)
    raise SystemExit("no ijepa checkout on sys.path; pass --official PATH")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", type=Path, help="a checkout of facebookresearch/ijepa")
    parser.add_argument("--batches", type=int, default=40, help="batches per round")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    print(f"grid {GRID}, batch {args.batch_size}, {args.rounds} alternating rounds of {args.batches} batches (median)")
    rows = side_by_side(args.official, args.batches, args.batch_size, args.rounds, official_path=args.official)
    print(f"{'sampler':<24}{'us/image':>10}{'ms/batch':>10}{'official / ours':>24}")
    for row in rows:
        vs = (f"{row['speedup_vs_official']:.1f}x ({row['speedup_range'][0]:.1f}-{row['speedup_range'][1]:.1f})"
              if "speedup_vs_official" in row else "")
        us = row["us_per_image"]
        print(f"{row['mode']:<24}{us:>10.2f}{us * args.batch_size / 1e3:>10.3f}{vs:>24}")


if __name__ == "__main__":
    main()
