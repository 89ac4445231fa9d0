"""Whole training runs of the video recipe with the clips decoded in the training process or in a worker.

    python benchmarks/bench_video_run.py                       # 2 epochs (88 steps), 2 rounds
    python benchmarks/bench_video_run.py --epochs 2 --rounds 3

Each run is ``jepa-torch train --config configs/moving_digits_vjepa.yaml`` with the collapse monitor off (it
encodes the same clips either way) and ``data.num_workers`` 0, then 1, alternating round by round, in a fresh
process each (so each pays its own start-up, as a user's run does). Printed per run: wall seconds and the last
logged loss, which must be the same for both (the batches do not depend on the workers); per round the ratio
``workers 0 / workers 1``. On a 2-core CPU a worker competes with the step's two threads for the cores, so
the gain is what decoding ahead of the step buys net of that.
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


def run(out: Path, workers: int, epochs: int) -> tuple[float, str]:
    """One training run in a fresh process: its wall seconds and its last logged loss."""
    cmd = [sys.executable, "-m", "jepa_torch.cli", "train", "--config", str(ROOT / "configs/moving_digits_vjepa.yaml"),
           "--out", str(out), "--no-progress", "--set", f"optimization.epochs={epochs}",
           "--set", "run.monitor_every=0", "--set", "run.checkpoint_every=100000",
           "--set", f"data.num_workers={workers}"]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=os.environ.copy())
    seconds = time.perf_counter() - start
    with (out / "log.csv").open() as f:
        last = list(csv.DictReader(f))[-1]
    return seconds, last["loss"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=2, help="epochs of each run (44 steps each; at least 2)")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    if args.epochs < 2 or args.rounds < 1:
        parser.error(f"--epochs {args.epochs} --rounds {args.rounds}: need epochs >= 2 (one is warm-up) and rounds >= 1")
    import torch

    print(f"{cpu_name()}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"configs/moving_digits_vjepa.yaml, {args.epochs} epochs, monitor off")
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            times = {}
            for workers in (0, 1):
                seconds, loss = run(Path(tmp) / f"r{r}w{workers}", workers, args.epochs)
                times[workers] = (seconds, loss)
                print(f"round {r + 1} workers {workers}: {seconds:7.1f} s, last loss {loss}", flush=True)
            if times[0][1] != times[1][1]:
                raise SystemExit(f"round {r + 1}: the losses differ ({times[0][1]} vs {times[1][1]}): "
                                 "the batches must not depend on the workers")
            ratios.append(times[0][0] / times[1][0])
    print(f"workers 0 / workers 1: {statistics.median(ratios):.3f}x median "
          f"({min(ratios):.3f}-{max(ratios):.3f}) over {len(ratios)} rounds")


if __name__ == "__main__":
    main()
