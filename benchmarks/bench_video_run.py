"""Whole training runs of the video recipe with its clips decoded in different places: in the training process,
in a DataLoader worker, or once into memory before the first step.

    python benchmarks/bench_video_run.py                                 # the worker against the cache, 2 rounds
    python benchmarks/bench_video_run.py --variants process worker cache --epochs 2 --rounds 3

Each run is ``jepa-torch train --config configs/moving_digits_vjepa.yaml`` for ``--epochs`` epochs with the
collapse monitor off (it encodes the same clips either way), in a fresh process each (so each pays its own
start-up, as a user's run does), the variants alternating round by round:

- ``process``: ``data.num_workers=0 data.cache_mb=0``: every clip decoded in the training process;
- ``worker``: ``data.num_workers=1 data.cache_mb=0``: decoded in one worker while the step runs;
- ``cache``: ``data.num_workers=0 data.cache_mb=512``: each video decoded once, before the first step
  (that time is in the run's), every clip cut from memory.

Printed per run: wall seconds and the last logged loss, which must be the same for every variant (the batches
depend on none of this); then each variant's median seconds and, per round, the ratio of the first variant's
time to each other's (median and range over the rounds). On a 2-core CPU a worker competes with the step's two
threads for the cores, so its gain is what decoding ahead of the step buys net of that.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_step import cpu_name  # noqa: E402

VARIANTS = {"process": ("data.num_workers=0", "data.cache_mb=0"),
            "worker": ("data.num_workers=1", "data.cache_mb=0"),
            "cache": ("data.num_workers=0", "data.cache_mb=512")}


def run(out: Path, variant: str, epochs: int) -> tuple[float, str]:
    """One training run in a fresh process: its wall seconds and its last logged loss."""
    cmd = [sys.executable, "-m", "jepa_torch.cli", "train", "--config", str(ROOT / "configs/moving_digits_vjepa.yaml"),
           "--out", str(out), "--no-progress", "--set", f"optimization.epochs={epochs}",
           "--set", "run.monitor_every=0", "--set", "run.checkpoint_every=100000"]
    for override in VARIANTS[variant]:
        cmd += ["--set", override]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{variant} run failed ({' '.join(cmd)}):\n{done.stderr.strip()[-2000:]}")
    with (out / "log.csv").open() as f:
        last = list(csv.DictReader(f))[-1]
    return seconds, last["loss"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=["worker", "cache"],
                        help="what to compare (two or more; ratios are the first's time over each other's)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs of each run (44 steps each; at least 2)")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    if args.epochs < 2 or args.rounds < 1:
        parser.error(f"--epochs {args.epochs} --rounds {args.rounds}: need epochs >= 2 (one is warm-up) and rounds >= 1")
    if len(set(args.variants)) < 2:
        parser.error(f"--variants {' '.join(args.variants)}: name two or more different variants")
    import torch

    variants = list(dict.fromkeys(args.variants))
    print(f"{cpu_name()}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"configs/moving_digits_vjepa.yaml, {args.epochs} epochs, monitor off")
    seconds: dict[str, list[float]] = {v: [] for v in variants}
    ratios: dict[str, list[float]] = {v: [] for v in variants[1:]}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            losses = {}
            for variant in variants:
                took, losses[variant] = run(Path(tmp) / f"r{r}{variant}", variant, args.epochs)
                seconds[variant].append(took)
                print(f"round {r + 1} {variant:8s}: {took:7.1f} s, last loss {losses[variant]}", flush=True)
            if len(set(losses.values())) != 1:
                raise SystemExit(f"round {r + 1}: the losses differ ({losses}): the batches must not depend on "
                                 "where the clips are decoded")
            for variant in variants[1:]:
                ratios[variant].append(seconds[variants[0]][-1] / seconds[variant][-1])
    for variant in variants:
        print(f"{variant:8s}: median {statistics.median(seconds[variant]):7.1f} s over {args.rounds} rounds")
    for variant, each in ratios.items():
        print(f"{variants[0]} / {variant}: {statistics.median(each):.3f}x median ({min(each):.3f}-{max(each):.3f}) "
              f"over {len(each)} rounds")


if __name__ == "__main__":
    main()
