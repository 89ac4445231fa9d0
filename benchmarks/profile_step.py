"""Where a recipe's fp32 CPU training step spends its time: by phase and by kind of operation.

    python benchmarks/profile_step.py                                  # the digits recipes and the video demo's
    python benchmarks/profile_step.py --configs configs/digits_ijepa.yaml --steps 8

Each recipe is built as ``jepa-torch train`` builds it (``bench_precision.RecipeStep``: its method, networks,
optimiser and stepper, on real batches of its data), warmed up, then ``--steps`` steps run under
``torch.profiler``. Every operator's own (self) CPU time is assigned

- to a **phase** by the frames it runs under: ``backward`` (inside autograd's engine), ``optimiser``
  (inside ``Optimizer.step``), else ``forward, loss, EMA, masks`` (the rest of the step);
- to a **kind**: ``matmul`` (mm, addmm, bmm, linear's kernels, the patch embedding's convolution),
  ``attention`` (the fused scaled-dot-product kernels, forward and backward), ``layer norm``,
  ``GELU``, ``optimiser arithmetic`` (AdamW's ``_foreach`` and elementwise updates), ``copies and
  indexing`` (copy, cat, gather/scatter, index, masked ops, views made contiguous) and ``other
  elementwise``.

It prints the step's wall time, each phase's and kind's share, the top operators, and the matmuls'
achieved GFLOP/s (their FLOPs counted by ``FlopCounterMode`` over their time) against the fp32 matmul
ceiling (``n x n`` matmuls, ``n`` = 2048): how far below the ceiling the step's own matmuls run (small
shapes), and how much of the step is not matmul at all (memory-bound kernels). Profiling adds a few
per cent of overhead per operator; the shares, not the absolute times, are the result.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_precision import DEFAULT_CONFIGS, RecipeStep, recipe  # noqa: E402
from benchmarks.bench_step import cpu_name, matmul_ceiling  # noqa: E402

KINDS = (
    ("attention", ("scaled_dot_product", "_flash_attention", "_efficient_attention")),
    ("matmul", ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "mkldnn_convolution", "aten::_convolution",
                "aten::convolution_backward", "mkldnn_linear", "aten::linear_backward")),
    ("layer norm", ("layer_norm",)),
    ("GELU", ("gelu",)),
    ("optimiser arithmetic", ("_foreach_", "aten::addcdiv", "aten::addcmul", "aten::lerp", "aten::sqrt")),
    ("copies and indexing", ("aten::copy_", "aten::cat", "aten::gather", "aten::scatter", "aten::index",
                             "aten::masked", "aten::clone", "aten::contiguous", "aten::stack", "aten::fill_",
                             "aten::zero_", "aten::repeat", "aten::expand", "aten::narrow", "aten::slice")),
)
MATMUL_FLOP_OPS = ("aten.mm", "aten.addmm", "aten.bmm", "aten.baddbmm", "aten.convolution",
                   "aten.convolution_backward")


def kind_of(name: str) -> str:
    for kind, keys in KINDS:
        if any(key in name for key in keys):
            return kind
    return "other elementwise"


def phase_of(event: Any) -> str:
    node = event
    while node is not None:
        name = node.name
        if name.startswith("autograd::engine::evaluate_function") or "Backward" in name:
            return "backward"
        if name.startswith("Optimizer.step"):
            return "optimiser"
        node = node.cpu_parent
    return "forward, loss, EMA, masks"


def profile_recipe(path: str, steps: int, warmup: int) -> dict[str, Any]:
    cfg, batches, model, size = recipe(path, ["run.device=cpu", "run.compile=false", "run.precision=fp32"])
    step = RecipeStep(cfg, batches, model, size)
    counter = FlopCounterMode(display=False)
    with counter:
        copy.deepcopy(step)()
    per_op = counter.get_flop_counts().get("Global", {})
    matmul_flops = sum(v for k, v in per_op.items() if any(str(k).startswith(op) for op in MATMUL_FLOP_OPS))
    total_flops = counter.get_total_flops()
    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    wall = (time.perf_counter() - t0) / steps
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    by_phase: dict[str, float] = defaultdict(float)
    by_kind: dict[str, float] = defaultdict(float)
    by_op: dict[str, float] = defaultdict(float)
    for event in prof.events():
        if event.device_type.name != "CPU" or not event.name.startswith(("aten::", "mkldnn", "_")):
            continue
        us = event.self_cpu_time_total
        by_phase[phase_of(event)] += us
        by_kind[kind_of(event.name)] += us
        by_op[event.name] += us
    total = sum(by_kind.values()) or 1.0
    matmul_s = (by_kind["matmul"] / 1e6) / steps
    return {"config": path, "method": cfg.method.name, "batch": cfg.data.batch_size, "wall_ms": 1e3 * wall,
            "gflop_per_step": total_flops / 1e9, "matmul_gflop_per_step": matmul_flops / 1e9,
            "matmul_gflops": (matmul_flops / 1e9) / matmul_s if matmul_s else 0.0,
            "step_gflops": (total_flops / 1e9) / wall,
            "phases": {k: v / total for k, v in sorted(by_phase.items(), key=lambda kv: -kv[1])},
            "kinds": {k: v / total for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1])},
            "top_ops": [(k, v / total) for k, v in sorted(by_op.items(), key=lambda kv: -kv[1])[:8]]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=list(DEFAULT_CONFIGS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.steps < 1 or args.threads < 1:
        parser.error("--steps and --threads must be >= 1")
    torch.set_num_threads(args.threads)
    ceiling = max(matmul_ceiling(torch.device("cpu"), 2048, torch.float32, 3) for _ in range(2)) / 1e9
    print(f"{cpu_name()}, torch {torch.__version__}, {args.threads} threads, fp32; matmul ceiling {ceiling:.0f} GFLOP/s")
    rows = []
    for path in args.configs:
        row = profile_recipe(path, args.steps, args.warmup)
        row["ceiling_gflops"] = ceiling
        rows.append(row)
        print(f"\n{path} ({row['method']}, batch {row['batch']}): {row['wall_ms']:.0f} ms/step, "
              f"{row['gflop_per_step']:.1f} GFLOP ({row['matmul_gflop_per_step']:.1f} in matmuls and convolutions), "
              f"{row['step_gflops']:.0f} GFLOP/s = {100 * row['step_gflops'] / ceiling:.0f}% of the ceiling; "
              f"the matmuls alone run at {row['matmul_gflops']:.0f} GFLOP/s = "
              f"{100 * row['matmul_gflops'] / ceiling:.0f}% of it")
        print("  phases: " + ", ".join(f"{k} {100 * v:.0f}%" for k, v in row["phases"].items()))
        print("  kinds:  " + ", ".join(f"{k} {100 * v:.0f}%" for k, v in row["kinds"].items()))
        print("  top operators: " + ", ".join(f"{k} {100 * v:.0f}%" for k, v in row["top_ops"]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
