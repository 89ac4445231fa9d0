"""Every benchmark in one run: a table on stdout and the rows as JSON.

    python benchmarks/run_all.py                  # CPU, eager, about a minute on 2 idle threads
    python benchmarks/run_all.py --official ~/src/ijepa   # the official step and collator timed beside ours
    python benchmarks/run_all.py --quick          # fewer steps and sweep points
    python benchmarks/run_all.py --device cuda    # adds ViT-B/16 224 px batch 128 in bf16, with MFU
    python benchmarks/run_all.py --modes eager,compiled   # also torch.compile (minutes of compiling)

What it measures, reusing ``bench_step.bench`` and ``bench_masks.us_per_image``:

- the training step (encoder + target encoder + predictor, forward, backward, AdamW, EMA) per
  preset: median ms/step, images/s, tokens/s (images/s x patches per image), GFLOP/s, and, with
  ``--official PATH``, the official step timed in the same process in alternating rounds and the
  ratio (its median and range over the rounds; see benchmarks/bench_step.py);
- how the step time grows with the batch (tiny, 64 px: batch 8, 16, 32) and with the image side
  (tiny, batch 32: 48, 64, 96 px; tokens grow with the square of the side, attention with its fourth power);
- the mask sampler's microseconds per image (paper setting, 16x16 grid, batch 128), and with
  ``--official`` the official collator's, timed alternately in the same process;
- peak memory of each configuration, each timed in a fresh process: on the CPU that process's peak
  resident set (``ru_maxrss``: torch, the data, the model, the optimiser and the step's activations);
  on CUDA ``torch.cuda.max_memory_allocated``.

Times are medians over the timed steps after warm-up; a shared machine raises them, the load
average is printed at both ends.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_masks import side_by_side  # noqa: E402
from bench_step import CONFIGS, BenchConfig, Ceiling, bench, cpu_name, import_official  # noqa: E402



def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _peak_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _plan(quick: bool, device: torch.device) -> list[tuple[str, str, BenchConfig]]:
    """(group, name, config) of every step measurement."""
    tiny, small = CONFIGS["tiny"], CONFIGS["small"]
    plan = [("preset", "tiny", tiny), ("preset", "small", small)]
    batches = (8, 32) if quick else (8, 16, 32)
    sides = (48, 64) if quick else (48, 64, 96)  # 32 px is a 4x4 grid: too few patches for min_keep=10
    plan += [("batch", f"tiny b{b}", replace(tiny, batch=b)) for b in batches if b != tiny.batch]
    plan += [("image", f"tiny {s}px", replace(tiny, img_size=s)) for s in sides if s != tiny.img_size]
    if device.type == "cuda":
        plan.append(("preset", "base224", CONFIGS["base224"]))
    return plan


def _worker(name: str, args: argparse.Namespace, warmup: int, rounds: int, modes: list[str]) -> int:
    """Time one configuration in this (fresh) process and print its rows as JSON."""
    device = torch.device(args.device)
    group, _, cfg = next(p for p in _plan(args.quick, device) if p[1] == name)
    official = import_official(args.official) if args.official is not None and group == "preset" else None
    ceiling = Ceiling(device)
    ceiling.sample(repeats=2)
    rows = bench(name, cfg, device, ceiling, modes=modes, official=official, warmup=warmup, rounds=rounds)
    for row in rows:
        tokens = (cfg.img_size // cfg.patch_size) ** 2
        row.update(tokens_per_image=tokens, tokens_per_s=row["images_per_s"] * tokens, peak_mib=_peak_mib(device),
                   ceiling_gflops=ceiling.best / 1e9)
    print(json.dumps(rows))
    return 0


def _measure(name: str, argv: list[str]) -> list[dict[str, Any]]:
    done = subprocess.run([sys.executable, __file__, *argv, "--worker", name], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{name}: the benchmark process failed:\n{done.stderr[-3000:]}")
    rows: list[dict[str, Any]] = json.loads(done.stdout.strip().splitlines()[-1])
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer steps and sweep points")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2, help="CPU intra-op threads, for both sides")
    parser.add_argument("--modes", default="eager", help="comma-separated: eager, compiled, whole")
    parser.add_argument("--official", type=Path, help="a checkout of facebookresearch/ijepa, timed beside ours")
    parser.add_argument("--json", type=Path, default=Path("runs/benchmarks.json"), help="where the rows go")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: time one configuration, print JSON
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    warmup, rounds = (1, 2) if args.quick else (2, 4)
    if args.worker:
        return _worker(args.worker, args, warmup, rounds, modes)
    machine = {
        "nproc": os.cpu_count(), "cpu_model": cpu_name(), "threads": torch.get_num_threads(),
        "torch": torch.__version__, "python": platform.python_version(), "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None, "load_start": _load(),
    }
    print(f"{machine['cpu_model']}, {machine['nproc']} CPUs, {machine['threads']} threads, torch {machine['torch']}, "
          f"device {device}{' (' + str(machine['gpu']) + ')' if machine['gpu'] else ''}; load average {_load()}",
          flush=True)
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    passed = ["--device", args.device, "--threads", str(args.threads), "--modes", args.modes]
    passed += ["--quick"] if args.quick else []
    passed += ["--official", str(args.official)] if args.official else []
    for group, name, _ in _plan(args.quick, device):
        for row in _measure(name, passed):
            row["group"] = group
            rows.append(row)
            print(f"  {name}: {row['mode']} {row['median_ms']:.1f} ms/step, peak {row['peak_mib']:.0f} MiB", flush=True)

    official = import_official(args.official) if args.official is not None else None
    masks = side_by_side(official, batches=10 if args.quick else 40, batch_size=128, rounds=3 if args.quick else 6,
                         official_path=args.official)
    best_ceiling = max(float(r["ceiling_gflops"]) for r in rows)
    machine.update(load_end=_load(), matmul_ceiling_gflops=best_ceiling, wall_s=time.perf_counter() - started)

    print()
    header = (f"| {'what':<12} | {'mode':<8} | {'model, img, batch':<22} | {'ms/step':>8} | {'img/s':>7} | "
              f"{'tokens/s':>8} | {'GFLOP/s':>7} | {'peak MiB':>8} | {'x official (rounds)':<18} |")
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for row in rows:
        speedup = row.get("speedup_vs_official")
        vs = f"{speedup['median']:.2f} ({speedup['min']:.2f}-{speedup['max']:.2f})" if speedup else ""
        shape = f"{row['preset']}, {row['img_size']}px, b{row['batch']}"
        print(f"| {row['config']:<12} | {row['mode']:<8} | {shape:<22} | {row['median_ms']:>8.1f} | "
              f"{row['images_per_s']:>7.1f} | {row['tokens_per_s']:>8.0f} | {row['achieved_gflops']:>7.1f} | "
              f"{row['peak_mib']:>8.0f} | {vs:<18} |")
    print()
    print(f"| {'mask sampler (16x16, b128)':<28} | {'us/image':>8} | {'official us / ours':>18} |")
    print(f"|{'-' * 30}|{'-' * 10}|{'-' * 20}|")
    for m in masks:
        vs = f"{m['speedup_vs_official']:.1f}x" if "speedup_vs_official" in m else ""
        print(f"| {m['mode']:<28} | {m['us_per_image']:>8.2f} | {vs:>18} |")
    print(f"\nmatmul ceiling {best_ceiling:.1f} GFLOP/s (best sample); load average {machine['load_end']} at end; "
          f"{machine['wall_s']:.0f} s in all")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"machine": machine, "steps": rows, "masks": masks}, indent=2))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
