"""A run's own training step in fp32 and in bf16 autocast, side by side on the CPU, for the shipped recipes.

    python benchmarks/bench_precision.py                                   # the digits recipes and the video demo's
    python benchmarks/bench_precision.py --configs configs/digits_lejepa.yaml --rounds 12
    python benchmarks/bench_precision.py --device cuda --configs configs/digits_lejepa.yaml \
        --set model.preset=vit_base --set model.patch_size=16 --set data.img_size=224   # a LeJEPA ViT-B/16 step

Each recipe is built as ``jepa-torch train`` builds it (its method, networks, optimiser, schedules and
the stepper that draws masks or views from ``(seed, step)``), twice from the same initial weights: one
with ``run.precision: fp32``, one with ``bf16`` (autocast on the forward; fp32 master weights, AdamW
state, losses and regularisers). Both step the same real batches of the recipe's data (the first
``--batches`` of epoch 0, cycled). Rounds alternate (fp32 then bf16, the order reversed every other
round); the per-round ratio fp32 / bf16 is printed as its median and range, beside the matmul
ceilings of both dtypes sampled between rounds (``n x n @ n x n``, best sample) and each step's
achieved GFLOP/s as a share of its own dtype's ceiling. One step of each from the same state on the
same batch is compared first (loss and weights after it), to show what bf16 changes.

The CPU's bf16 units (``jepa_torch.methods.step.cpu_bf16_units``: AMX, AVX512-BF16 or none) are printed
with the machine; without them bf16 is emulated and slower. ``--device cuda`` times the same two
precisions on a GPU (bf16 is what ``auto`` runs there), with each one's peak memory; ``--set`` overrides
apply to every recipe.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_step import alternate, cpu_name  # noqa: E402
from jepa_torch.config.plan import make_plan  # noqa: E402
from jepa_torch.config.schema import TrainConfig  # noqa: E402
from jepa_torch.config.yaml_io import load_config  # noqa: E402
from jepa_torch.data.datasets import EpochBatches, build_dataset, input_spec, make_loader  # noqa: E402
from jepa_torch.methods import RunInfo, get_method  # noqa: E402
from jepa_torch.methods.step import cpu_bf16_units  # noqa: E402
from jepa_torch.training.loop import build_model  # noqa: E402
from jepa_torch.training.optim import apply_schedules, make_optimizer  # noqa: E402

DEFAULT_CONFIGS = ("configs/digits_ijepa.yaml", "configs/digits_lejepa.yaml", "configs/moving_digits_vjepa.yaml")


class RecipeStep:
    """One recipe's training step at one precision, on a fixed list of batches."""

    def __init__(self, cfg: TrainConfig, batches: list[torch.Tensor], model: torch.nn.Module, steps_total: int,
                 device: torch.device = torch.device("cpu")) -> None:
        method = get_method(cfg.method.name)
        self.model = model.to(device)
        networks = method.networks(model)
        self.optimizer = make_optimizer([networks[name] for name in method.trained], lr=cfg.optimization.lr,
                                        weight_decay=cfg.optimization.weight_decay)
        plan = make_plan(cfg, steps_total, 1)
        self.stepper = method.stepper(model, RunInfo(cfg, plan, device, 0, 1))
        self.lr, self.wd = cfg.optimization.lr, cfg.optimization.weight_decay
        self.batches, self.index, self.step_no = [b.to(device) for b in batches], 0, 0

    def __call__(self) -> float:
        apply_schedules(self.optimizer, self.lr, self.wd)
        images = self.batches[self.index % len(self.batches)]
        result = self.stepper.step(self.model, self.optimizer, self.stepper.inputs(images, self.step_no), self.step_no)
        self.step_no += 1
        return float(result.loss)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _ceiling(dtype: torch.dtype, device: torch.device) -> float:
    n = 8192 if device.type == "cuda" else 2048
    a, b = torch.randn(n, n, dtype=dtype, device=device), torch.randn(n, n, dtype=dtype, device=device)
    torch.mm(a, b)
    _sync(device)
    best = float("inf")
    for _ in range(2):
        t0 = time.perf_counter()
        torch.mm(a, b)
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best


def _flops(step: RecipeStep) -> float:
    counter = FlopCounterMode(display=False)
    twin = copy.deepcopy(step)
    with counter:
        twin()
    return float(counter.get_total_flops())


def recipe(path: str, overrides: Sequence[str] = (), n_batches: int = 4
           ) -> tuple[TrainConfig, list[torch.Tensor], torch.nn.Module, int]:
    """A recipe as ``jepa-torch train`` builds it: its config (with ``overrides``), its first ``n_batches``
    real batches of epoch 0, its networks at initialisation, and the size of its training split."""
    cfg = load_config(path, list(overrides))
    method = get_method(cfg.method.name)
    dataset = build_dataset(cfg, augment=method.augment)
    order = EpochBatches(len(dataset), cfg.data.batch_size, cfg.run.seed).indices(0, 0, 0, 1)[:n_batches]
    batches = list(make_loader(dataset, order, 0, cfg.run.seed, 0))
    torch.manual_seed(cfg.run.seed)
    model, _ = build_model(cfg, input_spec(dataset))
    return cfg, batches, model, len(dataset)


def bench(path: str, rounds: int, per_round: int, warmup: int, n_batches: int,
          ceilings: dict[str, list[float]], device: torch.device = torch.device("cpu"),
          overrides: tuple[str, ...] = ()) -> dict[str, Any]:
    base, batches, model, n = recipe(path, [f"run.device={device.type}", "run.compile=false", *overrides], n_batches)
    dataset_size = n
    steps = {p: RecipeStep(replace(base, run=replace(base.run, precision=p)), batches, copy.deepcopy(model),
                           dataset_size, device) for p in ("fp32", "bf16")}
    first = {p: copy.deepcopy(s) for p, s in steps.items()}
    losses = {p: s() for p, s in first.items()}
    with torch.no_grad():
        drift = max(float((a.float() - b.float()).abs().max()) for a, b in
                    zip(first["fp32"].model.parameters(), first["bf16"].model.parameters()))
    flops = {p: _flops(s) for p, s in steps.items()}
    for s in steps.values():
        for _ in range(warmup):
            s()

    def sample_ceilings(r: int) -> None:
        ceilings["fp32"].append(_ceiling(torch.float32, device))
        ceilings["bf16"].append(_ceiling(torch.bfloat16, device))

    per_round_times, peaks = alternate(dict(steps), device, rounds, per_round, after_round=sample_ceilings)
    times = {p: [t for ts in per_round_times[p] for t in ts] for p in steps}
    ratios = [statistics.median(a) / statistics.median(b) for a, b in zip(per_round_times["fp32"],
                                                                          per_round_times["bf16"])]
    row: dict[str, Any] = {"config": path, "method": base.method.name, "batch": base.data.batch_size,
                           "first_loss": losses, "weights_max_diff_after_one_step": drift}
    for p, ts in times.items():
        median = statistics.median(ts)
        row[p] = {"median_ms": 1e3 * median, "min_ms": 1e3 * min(ts), "max_ms": 1e3 * max(ts),
                  "gflop_per_step": flops[p] / 1e9, "achieved_gflops": flops[p] / median / 1e9}
        if p in peaks:
            row[p]["peak_memory_gib"] = peaks[p]
    row["speedup_bf16"] = {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=list(DEFAULT_CONFIGS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a config value of every recipe (repeatable)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--per-round", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batches", type=int, default=4, help="real batches of the recipe, cycled")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    for name in ("threads", "rounds", "per_round", "batches"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} {getattr(args, name)}: must be >= 1")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is visible; use --device cpu")
    torch.set_num_threads(args.threads)
    units = cpu_bf16_units()
    if device.type == "cuda":
        print(f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}")
    else:
        print(f"{cpu_name()}, torch {torch.__version__}, {args.threads} threads, bf16 units: {units or 'none'}")
    ceilings: dict[str, list[float]] = {"fp32": [], "bf16": []}
    rows = [bench(c, args.rounds, args.per_round, args.warmup, args.batches, ceilings, device, tuple(args.overrides))
            for c in args.configs]
    best = {p: max(v) / 1e9 for p, v in ceilings.items()}
    side = 8192 if device.type == "cuda" else 2048
    print(f"matmul ceiling ({side}^3, best sample): fp32 {best['fp32']:.0f} GFLOP/s, bf16 {best['bf16']:.0f} GFLOP/s")
    for row in rows:
        s = row["speedup_bf16"]
        parts = [f"{p} {row[p]['median_ms']:.1f} ms ({row[p]['min_ms']:.1f}-{row[p]['max_ms']:.1f}), "
                 f"{row[p]['achieved_gflops']:.0f} GFLOP/s = {100 * row[p]['achieved_gflops'] / best[p]:.0f}% of "
                 f"the {p} ceiling" + (f", peak {row[p]['peak_memory_gib']:.1f} GiB" if "peak_memory_gib" in row[p]
                                       else "") for p in ("fp32", "bf16")]
        print(f"{row['config']} ({row['method']}, batch {row['batch']}, {row['fp32']['gflop_per_step']:.1f} GFLOP): "
              f"{'; '.join(parts)}; bf16 speed-up {s['median']:.2f}x (rounds {s['min']:.2f}-{s['max']:.2f}); "
              f"first step loss fp32 {row['first_loss']['fp32']:.5f} bf16 {row['first_loss']['bf16']:.5f}, "
              f"weights differ by {row['weights_max_diff_after_one_step']:.1e}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"device": str(device), "bf16_units": units, "ceilings_gflops": best,
                                         "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
