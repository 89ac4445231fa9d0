"""One collapse-monitor pass (``FixedBatchMonitor.measure``) by how many inputs are encoded at once.

    python benchmarks/bench_monitor.py                               # the video demo's and the digits recipe's
    python benchmarks/bench_monitor.py --configs configs/moving_digits_vjepa.yaml --chunks 256 64 32 16

Each recipe's target encoder is built as ``jepa-torch train`` builds it (initial weights: the time does not
depend on them), and its monitor on the run's own inputs (512 un-augmented training inputs and the held-out
ones: encoding both, RankMe, the online linear probe and kNN). The chunk sizes are timed in alternating
rounds (the order reversed every other round); printed per recipe: each chunk's median seconds per pass, its
ratio to the first chunk's (median and range over rounds), and whether every reading equals the first chunk's
to 1e-4 (the chunking only regroups the same forward passes).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_step import cpu_name  # noqa: E402
from jepa_torch.config import load_config  # noqa: E402
from jepa_torch.data.datasets import build_dataset, input_spec  # noqa: E402
from jepa_torch.evaluation.monitor import FixedBatchMonitor  # noqa: E402
from jepa_torch.methods import encoder_of, get_method  # noqa: E402
from jepa_torch.training.loop import build_model  # noqa: E402

DEFAULT_CONFIGS = ("configs/moving_digits_vjepa.yaml", "configs/digits_lejepa.yaml")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", default=list(DEFAULT_CONFIGS))
    parser.add_argument("--chunks", type=int, nargs="+", default=[256, 32], help="inputs encoded at once")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args(argv)
    if min(args.chunks) < 1 or len(set(args.chunks)) < 2 or args.rounds < 1:
        parser.error(f"--chunks {args.chunks} --rounds {args.rounds}: need two or more different chunks >= 1 "
                     "and rounds >= 1")
    device = torch.device("cpu")
    print(f"{cpu_name()}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    for path in args.configs:
        cfg = load_config(ROOT / path if not Path(path).is_absolute() else path)
        train = build_dataset(cfg, "train", augment=False)
        holdout = build_dataset(cfg, "holdout", augment=False)
        torch.manual_seed(0)
        model, _ = build_model(cfg, input_spec(train))
        encoder = encoder_of(get_method(cfg.method.name), model, "target")
        monitors = {c: FixedBatchMonitor(train, device, holdout=holdout if len(holdout) else None, chunk=c)
                    for c in args.chunks}
        first = monitors[args.chunks[0]].measure(encoder, 0)  # warm-up, and the readings to compare
        same = {c: all(abs(m.measure(encoder, 0)[k] - v) <= 1e-4 for k, v in first.items())
                for c, m in monitors.items()}
        times: dict[int, list[float]] = {c: [] for c in args.chunks}
        for r in range(args.rounds):
            for c in (args.chunks if r % 2 == 0 else args.chunks[::-1]):
                start = time.perf_counter()
                monitors[c].measure(encoder, 0)
                times[c].append(time.perf_counter() - start)
        n = len(monitors[args.chunks[0]].inputs) + (0 if first.get("probe_linear") is None else len(holdout))
        print(f"{path}: {n} inputs a pass")
        base = times[args.chunks[0]]
        for c in args.chunks:
            ratios = [b / t for b, t in zip(base, times[c])]
            print(f"  chunk {c:4d}: {statistics.median(times[c]):6.2f} s a pass, {statistics.median(ratios):.2f}x "
                  f"chunk {args.chunks[0]} ({min(ratios):.2f}-{max(ratios):.2f}), readings equal: {same[c]}")


if __name__ == "__main__":
    main()
