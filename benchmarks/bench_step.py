"""Throughput of one JEPA training step, read against the machine's own matmul ceiling.

    python benchmarks/bench_step.py                       # CPU: tiny and small, 2 threads, fp32
    python benchmarks/bench_step.py --config base224 --device cuda   # CUDA bf16, ViT-B/16, batch 128

For each configuration it prints the median time of the timed steps (after warm-up),
images/s, the step's FLOPs (forward + backward of all three networks, counted by
``torch.utils.flop_counter``), the achieved FLOP/s, and that as a fraction of a large
square matmul measured in the same run (fp32 on the CPU, bf16 on CUDA). On CUDA it
also reports model FLOP utilisation against the card's nominal dense bf16 peak.
Masks are drawn once, by seed, with the official-compatible sampler (the official
step's mask sizes), and reused for every step.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jepa_core.masks import MaskConfig, sample_masks  # noqa: E402
from jepa_torch.models import build_image_jepa  # noqa: E402
from jepa_torch.optim import make_optimizer  # noqa: E402
from jepa_torch.step import JEPA, StepConfig, train_step  # noqa: E402


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


def _time(fn: Callable[[], object], device: torch.device, warmup: int, steps: int) -> list[float]:
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return times


def bench(name: str, cfg: BenchConfig, device: torch.device, warmup: int, steps: int,
          compile_model: bool, seed: int) -> dict[str, object]:
    torch.manual_seed(seed)
    encoder, predictor = build_image_jepa(cfg.preset, img_size=cfg.img_size, patch_size=cfg.patch_size,
                                          pred_depth=cfg.pred_depth, pred_emb_dim=cfg.pred_width)
    model = JEPA(encoder, predictor).to(device)
    opt = make_optimizer([model.encoder, model.predictor], lr=1e-4)
    grid = (cfg.img_size // cfg.patch_size,) * 2
    masks = sample_masks(grid, MaskConfig.official_compatible(), seed, cfg.batch)
    menc = [torch.from_numpy(m).to(device) for m in masks.context]
    mpred = [torch.from_numpy(m).to(device) for m in masks.targets]
    images = torch.randn(cfg.batch, 3, cfg.img_size, cfg.img_size, device=device)
    step_cfg = StepConfig()
    if compile_model:
        model.encoder = torch.compile(model.encoder)  # type: ignore[assignment]
        model.target_encoder = torch.compile(model.target_encoder)  # type: ignore[assignment]
        model.predictor = torch.compile(model.predictor)  # type: ignore[assignment]

    def step() -> object:
        return train_step(model, opt, images, menc, mpred, momentum=0.996, config=step_cfg)

    counter = FlopCounterMode(display=False)
    with counter:
        step()
    flops = float(counter.get_total_flops())
    times = _time(step, device, warmup, steps)
    median = statistics.median(times)
    row: dict[str, object] = {
        "config": name, **asdict(cfg), "device": str(device), "compile": compile_model,
        "precision": "bf16" if device.type == "cuda" else "fp32",
        "context_tokens": int(menc[0].shape[1]), "target_tokens": int(mpred[0].shape[1]),
        "median_ms": 1e3 * median, "min_ms": 1e3 * min(times), "max_ms": 1e3 * max(times),
        "images_per_s": cfg.batch / median, "gflop_per_step": flops / 1e9,
        "achieved_gflops": flops / median / 1e9,
    }
    if cfg.official_ms is not None:
        row["official_ms"] = list(cfg.official_ms)
        row["speedup_vs_official"] = [cfg.official_ms[0] / (1e3 * median), cfg.official_ms[1] / (1e3 * median)]
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", choices=[*CONFIGS, "cpu"], default="cpu", help="cpu = tiny and small")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (the official figures used 2)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--compile", action="store_true", help="torch.compile the three networks")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    names = ["tiny", "small"] if args.config == "cpu" else [args.config]
    ceiling_dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    ceiling = matmul_ceiling(device, 8192 if device.type == "cuda" else 2048, ceiling_dtype)
    print(f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else f'{args.threads} threads'}), "
          f"torch {torch.__version__}")
    print(f"matmul ceiling ({str(ceiling_dtype).removeprefix('torch.')}): {ceiling / 1e9:.1f} GFLOP/s")
    rows = []
    for name in names:
        row = bench(name, CONFIGS[name], device, args.warmup, args.steps, args.compile, args.seed)
        row["ceiling_gflops"] = ceiling / 1e9
        row["fraction_of_ceiling"] = row["achieved_gflops"] / (ceiling / 1e9)  # type: ignore[operator]
        if device.type == "cuda":
            gpu = torch.cuda.get_device_name(device)
            peak = next((v for k, v in NOMINAL_BF16_TFLOPS.items() if k in gpu), None)
            if peak is not None:
                row["nominal_peak_tflops"] = peak
                row["mfu"] = row["achieved_gflops"] / (peak * 1e3)  # type: ignore[operator]
        rows.append(row)
        line = (f"{name:8s} {row['preset']} img {row['img_size']} patch {row['patch_size']} batch {row['batch']} "
                f"pred {row['pred_depth']}x{row['pred_width']}: {row['median_ms']:.1f} ms/step "
                f"({row['min_ms']:.1f}-{row['max_ms']:.1f}), {row['images_per_s']:.1f} img/s, "
                f"{row['gflop_per_step']:.1f} GFLOP/step, {row['achieved_gflops']:.1f} GFLOP/s = "
                f"{100 * row['fraction_of_ceiling']:.0f}% of ceiling")  # type: ignore[operator]
        if "speedup_vs_official" in row:
            lo, hi = row["speedup_vs_official"]  # type: ignore[misc]
            line += f"; official {row['official_ms'][0]:.0f}-{row['official_ms'][1]:.0f} ms -> {lo:.2f}-{hi:.2f}x"  # type: ignore[index]
        if "mfu" in row:
            line += f"; MFU {100 * row['mfu']:.1f}% of {row['nominal_peak_tflops']} TFLOP/s"  # type: ignore[operator]
        print(line, flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
