"""Throughput of one JEPA training step, read against the machine's own matmul ceiling.

    python benchmarks/bench_step.py                       # CPU: tiny and small, eager and compiled, 2 threads, fp32
    python benchmarks/bench_step.py --modes eager         # skip torch.compile (about 1-3 min of compiling per config)
    python benchmarks/bench_step.py --config base224 --device cuda   # CUDA bf16, ViT-B/16, batch 128

For each configuration and mode it prints the median time of the timed steps (after warm-up),
images/s, the step's FLOPs (forward + backward of all three networks, counted by
``torch.utils.flop_counter`` on the eager step), the achieved FLOP/s, and that as a fraction of a
large square matmul measured in the same run (fp32 on the CPU, bf16 on CUDA). On CUDA it also
reports model FLOP utilisation against the card's nominal dense bf16 peak. Masks are drawn once,
by seed, with the official-compatible sampler (the official step's mask sizes), and reused for
every step.

The machine may be shared, so the modes of one configuration are timed in alternating rounds
(eager, compiled, eager, ...) and the ceiling is sampled between rounds; the ceiling reported is
the best sample (load only lowers it), the step time the median (load raises it), so a busy
machine makes the fraction look worse, never better. The load average is printed at both ends.

``compiled`` is ``jepa_torch.step.compile_model`` (inductor). Before timing it, the compiled
encoder, target encoder and predictor are checked against the eager ones on the benchmark's own
inputs (max |difference| <= 1e-5, fp32); its FLOPs are those counted on the eager step, which
performs the same matmuls.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import cast
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jepa_core.masks import MaskConfig, sample_masks  # noqa: E402
from jepa_torch.models import build_image_jepa  # noqa: E402
from jepa_torch.optim import make_optimizer  # noqa: E402
from jepa_torch.models import JEPA  # noqa: E402
from jepa_torch.step import StepConfig, compile_model, train_step  # noqa: E402


@dataclass(frozen=True)
class BenchConfig:
    preset: str
    img_size: int
    patch_size: int
    batch: int
    pred_depth: int
    pred_width: int
    official_gflop: float | None = None  # the official step's FLOPs on this machine
    official_ms: tuple[float, float] | None = None  # the official step's time range on this machine


CONFIGS = {
    "tiny": BenchConfig("vit_tiny", 64, 8, 32, 6, 96, 44.0, (520.0, 690.0)),
    "small": BenchConfig("vit_small", 96, 8, 16, 6, 192, 265.0, (2100.0, 2200.0)),
    "base224": BenchConfig("vit_base", 224, 16, 128, 6, 384),
}

# Nominal dense bf16 tensor-core peaks (TFLOP/s) by device-name fragment.
NOMINAL_BF16_TFLOPS = {"H200": 989.4, "H100 80GB HBM3": 989.4, "H100 NVL": 835.0, "H100 PCIe": 756.0,
                       "H100": 989.4, "A100": 312.0}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_ceiling(device: torch.device, n: int, dtype: torch.dtype, repeats: int = 5) -> float:
    """Best FLOP/s of ``n x n @ n x n`` matmuls (2 n^3 FLOPs each)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    torch.mm(a, b)
    _sync(device)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best


class Ceiling:
    """The matmul ceiling, sampled repeatedly through the run; ``best`` is the highest sample."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
        self.n = 8192 if device.type == "cuda" else 2048
        self.samples: list[float] = []

    def sample(self, repeats: int = 3) -> None:
        self.samples.append(matmul_ceiling(self.device, self.n, self.dtype, repeats))

    @property
    def best(self) -> float:
        return max(self.samples)


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _time_rounds(fns: dict[str, Callable[[], object]], device: torch.device, warmup: int, steps: int,
                 ceiling: Ceiling, per_round: int = 2) -> dict[str, list[float]]:
    """Time each function ``steps`` times, in alternating rounds of ``per_round``, sampling the ceiling."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    _sync(device)
    times: dict[str, list[float]] = {k: [] for k in fns}
    while any(len(v) < steps for v in times.values()):
        for name, fn in fns.items():
            for _ in range(min(per_round, steps - len(times[name]))):
                t0 = time.perf_counter()
                fn()
                _sync(device)
                times[name].append(time.perf_counter() - t0)
        ceiling.sample(repeats=1)
    return times


def _max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).abs().max())


@torch.no_grad()
def _check_compiled(eager: JEPA, compiled: JEPA, images: torch.Tensor, context_masks: list[torch.Tensor],
                    target_masks: list[torch.Tensor], tol: float) -> float:
    """Max |compiled - eager| over the three networks' outputs on these inputs; raises above ``tol``."""
    z_e = eager.encoder(images, context_masks)
    z_c = compiled.encoder(images, context_masks)
    diffs = {
        "encoder": _max_abs_diff(z_e, z_c),
        "target_encoder": _max_abs_diff(eager.target_encoder(images), compiled.target_encoder(images)),
        "predictor": _max_abs_diff(eager.predictor(z_e, context_masks, target_masks), compiled.predictor(z_e, context_masks, target_masks)),
    }
    worst = max(diffs.values())
    if not worst <= tol:
        raise SystemExit(f"compiled forward differs from eager by {diffs} (> {tol}); not timing it")
    return worst


def bench(name: str, cfg: BenchConfig, device: torch.device, warmup: int, steps: int,
          modes: list[str], seed: int, ceiling: Ceiling) -> list[dict[str, object]]:
    """Time the step of ``cfg`` in each mode (``eager``, ``compiled``), in alternating rounds."""
    torch.manual_seed(seed)
    encoder, predictor = build_image_jepa(cfg.preset, img_size=cfg.img_size, patch_size=cfg.patch_size,
                                          pred_depth=cfg.pred_depth, pred_emb_dim=cfg.pred_width)
    base = JEPA(encoder, predictor).to(device)
    grid = (cfg.img_size // cfg.patch_size,) * 2
    masks = sample_masks(grid, MaskConfig.official_compatible(), seed, cfg.batch)
    context_masks = [torch.from_numpy(m).to(device) for m in masks.context]
    target_masks = [torch.from_numpy(m).to(device) for m in masks.targets]
    images = torch.randn(cfg.batch, 3, cfg.img_size, cfg.img_size, device=device)
    step_cfg = StepConfig()

    def make_step(model: JEPA) -> Callable[[], object]:
        opt = make_optimizer([model.encoder, model.predictor], lr=1e-4)
        return lambda: train_step(model, opt, images, context_masks, target_masks, momentum=0.996, config=step_cfg)

    fns: dict[str, Callable[[], object]] = {}
    extra: dict[str, dict[str, object]] = {}
    flops = 0.0
    for mode in modes:
        model = copy.deepcopy(base)  # every mode starts from the same weights
        if mode == "eager":
            fns[mode] = make_step(model)
            counter = FlopCounterMode(display=False)
            with counter:
                fns[mode]()
            flops = float(counter.get_total_flops())
        else:
            compile_model(model)
            t0 = time.perf_counter()
            diff = _check_compiled(base, model, images, context_masks, target_masks, tol=1e-5)
            fns[mode] = make_step(model)
            fns[mode]()  # compiles the training graphs (forward + backward)
            extra[mode] = {"compile_s": time.perf_counter() - t0, "max_abs_diff_vs_eager": diff}
    if not flops:  # FLOPs always come from the eager step (the compiled one runs the same matmuls)
        counter = FlopCounterMode(display=False)
        with counter:
            make_step(copy.deepcopy(base))()
        flops = float(counter.get_total_flops())
    times = _time_rounds(fns, device, warmup, steps, ceiling)
    rows = []
    for mode, ts in times.items():
        median = statistics.median(ts)
        row: dict[str, object] = {
            "config": name, **asdict(cfg), "device": str(device), "mode": mode, "compile": mode != "eager",
            "precision": "bf16" if device.type == "cuda" else "fp32",
            "context_tokens": int(context_masks[0].shape[1]), "target_tokens": int(target_masks[0].shape[1]),
            "median_ms": 1e3 * median, "min_ms": 1e3 * min(ts), "max_ms": 1e3 * max(ts),
            "images_per_s": cfg.batch / median, "gflop_per_step": flops / 1e9,
            "achieved_gflops": flops / median / 1e9, **extra.get(mode, {}),
        }
        if cfg.official_ms is not None:
            row["official_ms"] = list(cfg.official_ms)
            row["speedup_vs_official"] = [cfg.official_ms[0] / (1e3 * median), cfg.official_ms[1] / (1e3 * median)]
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", choices=[*CONFIGS, "cpu"], default="cpu", help="cpu = tiny and small")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (the official figures used 2)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per mode")
    parser.add_argument("--modes", default="eager,compiled",
                        help="comma-separated: eager, compiled (jepa_torch.step.compile_model)")
    parser.add_argument("--compile", action="store_true", help="same as --modes compiled")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)

    modes = ["compiled"] if args.compile else [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or any(m not in ("eager", "compiled") for m in modes):
        parser.error(f"--modes {args.modes!r}: use eager, compiled or both, comma-separated")
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    names = ["tiny", "small"] if args.config == "cpu" else [args.config]
    ceiling = Ceiling(device)
    ceiling.sample(repeats=5)
    print(f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else f'{args.threads} threads'}), "
          f"torch {torch.__version__}, load average {_load()} at start")
    rows: list[dict[str, object]] = []
    for name in names:
        rows.extend(bench(name, CONFIGS[name], device, args.warmup, args.steps, modes, args.seed, ceiling))
    ceiling.sample(repeats=5)
    best = ceiling.best
    print(f"matmul ceiling ({str(ceiling.dtype).removeprefix('torch.')}, {ceiling.n}^3): {best / 1e9:.1f} GFLOP/s "
          f"(best of {len(ceiling.samples)} samples through the run; worst {min(ceiling.samples) / 1e9:.1f})")
    for row in rows:
        row["ceiling_gflops"] = best / 1e9
        row["fraction_of_ceiling"] = row["achieved_gflops"] / (best / 1e9)  # type: ignore[operator]
        if device.type == "cuda":
            gpu = torch.cuda.get_device_name(device)
            peak = next((v for k, v in NOMINAL_BF16_TFLOPS.items() if k in gpu), None)
            if peak is not None:
                row["nominal_peak_tflops"] = peak
                row["mfu"] = row["achieved_gflops"] / (peak * 1e3)  # type: ignore[operator]
        line = (f"{row['config']:6s} {row['mode']:8s} {row['preset']} img {row['img_size']} patch {row['patch_size']} "
                f"batch {row['batch']} pred {row['pred_depth']}x{row['pred_width']}: {row['median_ms']:.1f} ms/step "
                f"({row['min_ms']:.1f}-{row['max_ms']:.1f}), {row['images_per_s']:.1f} img/s, "
                f"{row['gflop_per_step']:.1f} GFLOP/step, {row['achieved_gflops']:.1f} GFLOP/s = "
                f"{100 * row['fraction_of_ceiling']:.0f}% of ceiling")  # type: ignore[operator]
        speedup = row.get("speedup_vs_official")
        if isinstance(speedup, list):
            official = cast(list[float], row["official_ms"])
            line += f"; official {official[0]:.0f}-{official[1]:.0f} ms -> {speedup[0]:.2f}-{speedup[1]:.2f}x"
        if "compile_s" in row:
            line += f"; compile {row['compile_s']:.0f} s, max |diff| vs eager {row['max_abs_diff_vs_eager']:.1e}"
        if "mfu" in row:
            line += f"; MFU {100 * row['mfu']:.1f}% of {row['nominal_peak_tflops']} TFLOP/s"  # type: ignore[operator]
        print(line, flush=True)
    print(f"load average {_load()} at end")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
