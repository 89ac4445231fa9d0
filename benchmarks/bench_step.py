"""One JEPA training step, ours against the official I-JEPA step, timed side by side in one process.

    python benchmarks/bench_step.py --official ~/src/ijepa              # CPU: tiny and small, official vs ours eager
    python benchmarks/bench_step.py --official ~/src/ijepa --modes eager,compiled
    python benchmarks/bench_step.py --official ~/src/ijepa --config base224 --device cuda   # ViT-B/16, batch 128, bf16
    python benchmarks/bench_step.py --config huge14 --device cuda --modes eager  # ViT-H/14 batch 32: time and memory
    python benchmarks/bench_step.py                                     # ours alone, against the matmul ceiling
    python benchmarks/bench_step.py --official ~/src/ijepa --modes eager,bf16   # CPU: ours fp32 and bf16 autocast
    python benchmarks/bench_step.py --config huge14 --device cuda --modes eager,recompute  # activation checkpointing

``--official PATH`` names a checkout of facebookresearch/ijepa. Nothing of it is copied here: its
modules are imported from PATH (``src.helper.init_model`` and ``init_opt``, ``src.models``, ``src.masks.utils.apply_masks``,
``src.utils.tensors.repeat_interleave_batch``, ``src.utils.distributed.AllReduce``,
``src.utils.logging.grad_logger``), and :class:`OfficialStep` calls them in the order of the
``train_step`` closure of its ``src/train.py`` (a closure cannot be imported): both schedulers' ``step``,
the target branch under ``no_grad`` (layer norm, ``apply_masks``, ``repeat_interleave_batch``), the
context encoder and predictor, smooth-L1 through ``AllReduce``, backward (through its ``GradScaler``
on CUDA, as the official bf16 path does), ``optimizer.step``, ``grad_logger``, ``zero_grad``, the
parameter-by-parameter EMA, ``float(loss)``.

Same work on both sides:

- **model**: the official ``init_model`` builds the encoder and predictor; ours loads their state
  dicts strictly, so both start from the same weights;
- **masks**: the official collator's law (4 targets of scale 0.15-0.2, aspect 0.75-1.5, one context
  of scale 0.85-1, ``min_keep`` 10, its defects included) drawn by our
  ``MaskConfig.official_compatible`` sampler, ``--mask-draws`` batches; round ``r`` feeds draw
  ``r mod draws`` to both steps. Not the official ``MaskCollator`` itself: at these small grids it
  loops without end on some draws (seed 3 of the tiny grid, 8 x 8, logged "Valid mask not found"
  over 50,000 times before it was stopped), which would stall the benchmark;
- **optimiser**: AdamW at a constant learning rate and weight decay, EMA momentum 0.996; the
  official ``init_opt`` on its side (torch's default AdamW), ``jepa_torch.training.optim.make_optimizer`` on ours;
- **threads, torch build, precision**: one process, ``--threads`` intra-op threads (CPU, fp32) or
  bf16 autocast (CUDA) for both.

Before timing, one step of each from the same state on the same batch must give the same loss
(within 1e-5 relative) and the same context-encoder weights afterwards (the check prints both
differences); otherwise nothing is timed.

Rounds alternate (official, ours, ...; the order reversed every other round) so that both see the
same machine; the ratio is computed per round (the official round's median over ours), and its
median and range over the rounds are printed. The fp32 (CPU) or bf16 (CUDA) matmul ceiling is sampled
between rounds; the best sample is the reference (with a ``bf16`` mode on the CPU the bf16 ceiling too,
each mode's share taken against its own dtype's). ``bf16`` is our eager step under CPU bf16 autocast
(``run.precision: bf16``: fp32 master weights, AdamW state, losses); ``recompute`` our eager step with
activation checkpointing on every transformer block (``run.activation_checkpointing``). ``compiled`` is ``jepa_torch.methods.step.compile_model``
(inductor), checked against eager (max |difference| <= 1e-5) before it is timed. On CUDA the peak
memory of each mode (the highest over its timed steps, each measured from a reset) and the model FLOP
utilisation against the card's nominal dense bf16 peak are printed too.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import json
import logging
import os
import platform
import warnings
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jepa_core.masks import ContextTrim, MaskConfig, sample_masks  # noqa: E402
from jepa_torch.io.checkpoint import load_strict  # noqa: E402
from jepa_torch.models import JEPA, build_image_jepa  # noqa: E402
from jepa_torch.training.optim import apply_schedules, make_optimizer  # noqa: E402
from jepa_torch.methods.step import StepConfig, compile_model, train_step  # noqa: E402

LR, WD, MOMENTUM = 1e-4, 0.04, 0.996


@dataclass(frozen=True)
class BenchConfig:
    preset: str
    img_size: int
    patch_size: int
    batch: int
    pred_depth: int
    pred_width: int


CONFIGS = {
    "tiny": BenchConfig("vit_tiny", 64, 8, 32, 6, 96),
    "small": BenchConfig("vit_small", 96, 8, 16, 6, 192),
    "base224": BenchConfig("vit_base", 224, 16, 128, 6, 384),
    "huge14": BenchConfig("vit_huge", 224, 14, 32, 12, 384),
}

# Nominal dense bf16 tensor-core peaks (TFLOP/s) by device-name fragment.
NOMINAL_BF16_TFLOPS = {"H200": 989.4, "H100 80GB HBM3": 989.4, "H100 NVL": 835.0, "H100 PCIe": 756.0,
                       "H100": 989.4, "A100": 312.0}

Masks = tuple[list[Tensor], ...]  # (context masks, target masks[, context lengths])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def cpu_name() -> str:
    """The CPU's model name (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def alternate(steps: dict[str, Callable[[], object]], device: torch.device, rounds: int, per_round: int,
              before: Callable[[str, int], None] | None = None,
              after_round: Callable[[int], None] | None = None) -> tuple[dict[str, list[list[float]]], dict[str, float]]:
    """Time ``steps`` in alternating rounds (their order reversed every other round): seconds per step,
    ``times[name][round]``, and on CUDA each one's highest peak memory in GiB (each step measured from a
    reset). ``before(name, round)`` runs untimed before a step's round (e.g. to pick its batch),
    ``after_round(round)`` after every round (e.g. to sample the ceiling)."""
    names = list(steps)
    times: dict[str, list[list[float]]] = {k: [] for k in names}
    peaks: dict[str, float] = {}
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            if before is not None:
                before(name, r)
            ts = []
            for _ in range(per_round):
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                t0 = time.perf_counter()
                steps[name]()
                _sync(device)
                ts.append(time.perf_counter() - t0)
                if device.type == "cuda":
                    peaks[name] = max(peaks.get(name, 0.0), torch.cuda.max_memory_allocated(device) / 2**30)
            times[name].append(ts)
        if after_round is not None:
            after_round(r)
    return times, peaks


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
    """The matmul ceiling, sampled repeatedly through the run; ``best`` is the highest sample. With
    ``cpu_bf16`` the CPU's bf16 ceiling is sampled beside fp32's (``best_bf16``)."""

    def __init__(self, device: torch.device, cpu_bf16: bool = False) -> None:
        self.device = device
        self.dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
        self.n = 8192 if device.type == "cuda" else 2048
        self.samples: list[float] = []
        self.cpu_bf16 = cpu_bf16 and device.type == "cpu"
        self.bf16_samples: list[float] = []

    def sample(self, repeats: int = 3) -> None:
        self.samples.append(matmul_ceiling(self.device, self.n, self.dtype, repeats))
        if self.cpu_bf16:
            self.bf16_samples.append(matmul_ceiling(self.device, self.n, torch.bfloat16, repeats))

    @property
    def best(self) -> float:
        return max(self.samples)

    @property
    def best_bf16(self) -> float:
        return max(self.bf16_samples) if self.bf16_samples else self.best


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# --------------------------------------------------------------------------- the official side


def import_official(path: Path) -> dict[str, Any]:
    """The official modules the step needs, imported from the checkout at ``path`` (one-line exit if not one)."""
    if not (path / "src" / "helper.py").is_file() or not (path / "src" / "models" / "vision_transformer.py").is_file():
        raise SystemExit(f"--official {path}: not a checkout of facebookresearch/ijepa (no src/helper.py); "
                         "give the folder that holds its src/")
    if "src" in sys.modules:
        raise SystemExit("--official: a package named 'src' is already imported; run the benchmark on its own")
    sys.path.insert(0, str(path.resolve()))
    try:
        mods: dict[str, ModuleType] = {name: importlib.import_module(f"src.{name}") for name in
                                       ("helper", "masks.utils", "utils.tensors",
                                        "utils.distributed", "utils.logging")}
    except ImportError as exc:
        raise SystemExit(f"--official {path}: its modules do not import ({exc}); check the checkout") from None
    finally:
        sys.path.pop(0)
    logging.getLogger().setLevel(logging.WARNING)  # its init_model logs each module's repr at INFO
    return {
        "init_model": mods["helper"].init_model,
        "init_opt": mods["helper"].init_opt,
        "apply_masks": mods["masks.utils"].apply_masks,
        "repeat_interleave_batch": mods["utils.tensors"].repeat_interleave_batch,
        "AllReduce": mods["utils.distributed"].AllReduce,
        "grad_logger": mods["utils.logging"].grad_logger,
    }


class OfficialStep:
    """The official ``train_step`` closure's sequence of calls, on the official modules and helpers."""

    def __init__(self, official: dict[str, Any], encoder: nn.Module, predictor: nn.Module, device: torch.device,
                 images: Tensor, draws: list[Masks]) -> None:
        self.o = official
        self.encoder, self.predictor = encoder, predictor
        self.target_encoder = copy.deepcopy(encoder)
        for p in self.target_encoder.parameters():
            p.requires_grad = False
        self.bf16 = device.type == "cuda"
        self.optimizer, self.scaler, self.scheduler, self.wd_scheduler = official["init_opt"](
            encoder, predictor, iterations_per_epoch=10**6, start_lr=LR, ref_lr=LR, warmup=0, num_epochs=1,
            wd=WD, final_wd=WD, final_lr=LR, use_bfloat16=self.bf16, ipe_scale=1.0)
        self.images, self.draws, self.draw = images, draws, 0

    def __call__(self) -> float:
        imgs, (masks_enc, masks_pred) = self.images, self.draws[self.draw]
        o = self.o
        self.scheduler.step()
        self.wd_scheduler.step()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.bf16):
            with torch.no_grad():
                h = self.target_encoder(imgs)
                h = F.layer_norm(h, (h.size(-1),))
                batch = len(h)
                h = o["apply_masks"](h, masks_pred)
                h = o["repeat_interleave_batch"](h, batch, repeat=len(masks_enc))
            z = self.encoder(imgs, masks_enc)
            z = self.predictor(z, masks_enc, masks_pred)
            loss = o["AllReduce"].apply(F.smooth_l1_loss(z, h))
        if self.bf16:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        o["grad_logger"](self.encoder.named_parameters())
        self.optimizer.zero_grad()
        with torch.no_grad():
            m = MOMENTUM
            for param_q, param_k in zip(self.encoder.parameters(), self.target_encoder.parameters()):
                param_k.data.mul_(m).add_((1.0 - m) * param_q.detach().data)
        with warnings.catch_warnings():  # float() of a tensor that requires grad, as the official code does
            warnings.simplefilter("ignore", UserWarning)
            return float(loss)


def draw_masks(cfg: BenchConfig, batch: int, draws: int, seed: int, device: torch.device,
               trim: ContextTrim = "batch_min") -> list[Masks]:
    """``draws`` batches of masks from the official collator's law, drawn by ``MaskConfig.official_compatible``.

    ``trim="none"`` draws the same blocks (same seeds) and keeps whole contexts: ``(context, targets, lengths)``.
    """
    grid = (cfg.img_size // cfg.patch_size,) * 2
    law = MaskConfig.official_compatible(context_trim=trim)
    out: list[Masks] = []
    for d in range(draws):
        mb = sample_masks(grid, law, np.random.default_rng([seed, d]), batch)
        ctx = [torch.from_numpy(m).to(device) for m in mb.context]
        tgt = [torch.from_numpy(m).to(device) for m in mb.targets]
        out.append((ctx, tgt) if mb.context_lengths is None else
                   (ctx, tgt, [torch.from_numpy(n).to(device) for n in mb.context_lengths]))
    return out


# --------------------------------------------------------------------------- our side


class OurStep:
    """``jepa_torch``'s step as the training loop runs it: schedules, ``train_step``, the loss read back."""

    def __init__(self, model: JEPA, images: Tensor, draws: list[Masks], precision: str = "auto") -> None:
        self.model = model
        self.optimizer = make_optimizer([model.encoder, model.predictor], lr=LR, weight_decay=WD)
        self.config = StepConfig(precision=precision)  # type: ignore[arg-type]
        self.images, self.draws, self.draw = images, draws, 0

    def __call__(self) -> float:
        apply_schedules(self.optimizer, LR, WD)
        masks = self.draws[self.draw]
        lengths = masks[2] if len(masks) > 2 else None
        result = train_step(self.model, self.optimizer, self.images, masks[0], masks[1], MOMENTUM,
                            self.config, context_lengths=lengths)
        return float(result.loss)


Step = OfficialStep | OurStep


def _max_abs_diff(a: Tensor, b: Tensor) -> float:
    return float((a.float() - b.float()).abs().max())


def check_same_step(official: OfficialStep, ours: OurStep) -> dict[str, float]:
    """One step of each, from copies of their current state, on their first batch: loss and weights must agree."""
    a, b = copy.deepcopy(official), copy.deepcopy(ours)
    a.draw = b.draw = 0
    loss_a, loss_b = a(), b()
    images = a.images
    weights = max(_max_abs_diff(p, q) for p, q in zip(a.encoder.parameters(), b.model.encoder.parameters()))
    out = {"official_loss": loss_a, "our_loss": loss_b, "loss_rel_diff": abs(loss_a - loss_b) / abs(loss_a),
           "encoder_weights_max_diff": weights}
    # bf16 on CUDA rounds differently in the two implementations; fp32 must agree tightly.
    tol = 1e-5 if images.device.type == "cpu" else 2e-2
    if not (out["loss_rel_diff"] <= tol and weights <= 10 * LR):
        raise SystemExit(f"the two steps disagree on the same batch ({out}); not timing them")
    return out


@torch.no_grad()
def check_compiled(eager: JEPA, compiled: JEPA, images: Tensor, masks: Masks, tol: float = 1e-5) -> float:
    """Max |compiled - eager| over the three networks' outputs on these inputs; exits above ``tol``."""
    ctx, tgt = masks
    z_e = eager.encoder(images, ctx)
    diffs = {
        "encoder": _max_abs_diff(z_e, compiled.encoder(images, ctx)),
        "target_encoder": _max_abs_diff(eager.target_encoder(images), compiled.target_encoder(images)),
        "predictor": _max_abs_diff(eager.predictor(z_e, ctx, tgt), compiled.predictor(z_e, ctx, tgt)),
    }
    worst = max(diffs.values())
    if not worst <= tol and images.device.type == "cpu":
        raise SystemExit(f"compiled forward differs from eager by {diffs} (> {tol}); not timing it")
    return worst


# --------------------------------------------------------------------------- timing


def count_flops(step: Step) -> float:
    """FLOPs of one step on the first batch (forward and backward of the three networks), counted on a copy."""
    s = copy.deepcopy(step)
    s.draw = 0
    counter = FlopCounterMode(display=False)
    with counter:
        s()
    return float(counter.get_total_flops())


def time_rounds(steps: dict[str, Step], device: torch.device, warmup: int, rounds: int, per_round: int,
                ceiling: Ceiling, peaks: dict[str, float] | None = None) -> dict[str, list[list[float]]]:
    """Seconds per step, ``times[mode][round]``; the order of the modes is reversed every other round, and
    round ``r`` runs every mode on its batch ``r mod draws``. On CUDA ``peaks[mode]`` gets the highest
    peak memory (GiB) of its timed steps, each measured from a reset."""
    for step in steps.values():
        step.draw = 0
        for _ in range(warmup):
            step()
    _sync(device)

    def pick(name: str, r: int) -> None:
        steps[name].draw = r % len(steps[name].draws)

    times, found = alternate(dict(steps), device, rounds, per_round, pick, lambda r: ceiling.sample(repeats=1))
    if peaks is not None:
        peaks.update(found)
    return times


def bench(name: str, cfg: BenchConfig, device: torch.device, ceiling: Ceiling, *, modes: Sequence[str] = ("eager",),
          official: dict[str, Any] | None = None, warmup: int = 2, rounds: int = 8, per_round: int = 2,
          mask_draws: int = 4, seed: int = 0, batch: int | None = None) -> list[dict[str, Any]]:
    """Time the official step (when its modules are given) and ours in each mode, in alternating rounds.

    Returns:
        One row per mode (``official`` first), with the ratio to the official step per round when timed.
    """
    torch.manual_seed(seed)
    batch = batch or cfg.batch
    steps: dict[str, Step] = {}
    extra: dict[str, dict[str, Any]] = {}
    images = torch.randn(batch, 3, cfg.img_size, cfg.img_size, device=device)
    masks = draw_masks(cfg, batch, mask_draws, seed, device)
    if official is not None:
        enc, pred = official["init_model"](device, cfg.patch_size, cfg.preset, cfg.img_size, cfg.pred_depth,
                                           cfg.pred_width)
        steps["official"] = OfficialStep(official, enc, pred, device, images, masks)
    encoder, predictor = build_image_jepa(cfg.preset, img_size=cfg.img_size, patch_size=cfg.patch_size,
                                          pred_depth=cfg.pred_depth, pred_emb_dim=cfg.pred_width)
    if official is not None:
        load_strict(encoder, enc.state_dict(), "official encoder")
        load_strict(predictor, pred.state_dict(), "official predictor")
    base = JEPA(encoder, predictor).to(device)
    for mode in modes:
        model = copy.deepcopy(base)  # every mode starts from the same weights
        if mode == "whole":  # the same draws' blocks, every context kept whole
            steps[mode] = OurStep(model, images, draw_masks(cfg, batch, mask_draws, seed, device, "none"))
            continue
        steps[mode] = OurStep(model, images, masks, "bf16" if mode == "bf16" else "auto")
        if mode == "recompute":  # activation checkpointing, as run.activation_checkpointing sets it
            for module in (*model.encoder.modules(), *model.predictor.modules()):
                if hasattr(module, "recompute"):
                    setattr(module, "recompute", True)
        if mode == "compiled":
            t0 = time.perf_counter()
            compile_model(model)
            extra[mode] = {"max_abs_diff_vs_eager": check_compiled(base, model, images, masks[0])}
            for d in range(len(masks)):  # compile every mask length before the clock starts (guards hold the
                steps[mode].draw = d       # module itself, so a copy would compile again)
                steps[mode]()
            extra[mode]["compile_s"] = time.perf_counter() - t0
    if official is not None and "eager" in steps:
        extra["agreement"] = check_same_step(steps["official"], steps["eager"])  # type: ignore[arg-type]
    flops = {k: count_flops(s) for k, s in steps.items() if k != "compiled"}
    if "compiled" in steps:  # the compiled step runs the eager step's matmuls
        flops["compiled"] = flops["eager"] if "eager" in flops else count_flops(OurStep(base, images, masks))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    peaks: dict[str, float] = {}
    times = time_rounds(steps, device, warmup, rounds, per_round, ceiling, peaks)
    rows = []
    for mode, per_round in times.items():
        flat = [t for ts in per_round for t in ts]
        median = statistics.median(flat)
        row: dict[str, Any] = {
            "config": name, **asdict(cfg), "batch": batch, "device": str(device), "mode": mode,
            "precision": "bf16" if device.type == "cuda" or mode == "bf16" else "fp32",
            "threads": torch.get_num_threads(),
            "context_tokens": [int(m[0][0].shape[1]) if len(m) == 2 else float(m[2][0].float().mean())
                               for m in steps[mode].draws],
            "target_tokens": [int(m[1][0].shape[1]) for m in masks],
            "median_ms": 1e3 * median, "min_ms": 1e3 * min(flat), "max_ms": 1e3 * max(flat),
            "round_medians_ms": [1e3 * statistics.median(ts) for ts in per_round],
            "images_per_s": batch / median, "gflop_per_step": flops[mode] / 1e9,
            "achieved_gflops": flops[mode] / median / 1e9, **extra.get(mode, {}),
        }
        if mode in peaks:
            row["peak_memory_gib"] = peaks[mode]
        if "official" in times and mode != "official":
            ratios = [statistics.median(o) / statistics.median(t) for o, t in zip(times["official"], per_round)]
            row["speedup_vs_official"] = {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios),
                                          "rounds": ratios}
        rows.append(row)
    if "agreement" in extra:
        rows[0]["agreement"] = extra["agreement"]
    if device.type == "cuda":
        rows[0]["peak_memory_all_modes_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    return rows


def _print(rows: Sequence[dict[str, Any]], device: torch.device, best: float, best_bf16: float | None = None) -> None:
    for row in rows:
        own = best_bf16 if device.type == "cpu" and row["precision"] == "bf16" and best_bf16 else best
        row["ceiling_gflops"] = own / 1e9
        row["fraction_of_ceiling"] = row["achieved_gflops"] / (own / 1e9)
        if device.type == "cuda":
            gpu = torch.cuda.get_device_name(device)
            peak = next((v for k, v in NOMINAL_BF16_TFLOPS.items() if k in gpu), None)
            if peak is not None:
                row["nominal_peak_tflops"] = peak
                row["mfu"] = row["achieved_gflops"] / (peak * 1e3)
        if "agreement" in row:
            a = row["agreement"]
            print(f"{row['config']}: same batch, one step each: loss {a['official_loss']:.6f} (official) vs "
                  f"{a['our_loss']:.6f} (ours), relative difference {a['loss_rel_diff']:.1e}; encoder weights "
                  f"after the step differ by at most {a['encoder_weights_max_diff']:.1e}")
        line = (f"{row['config']:7s} {row['mode']:8s} {row['preset']} img {row['img_size']} patch {row['patch_size']} "
                f"batch {row['batch']} pred {row['pred_depth']}x{row['pred_width']}: {row['median_ms']:.1f} ms/step "
                f"({row['min_ms']:.1f}-{row['max_ms']:.1f}), {row['images_per_s']:.1f} img/s, "
                f"{row['gflop_per_step']:.1f} GFLOP/step, {row['achieved_gflops']:.1f} GFLOP/s = "
                f"{100 * row['fraction_of_ceiling']:.0f}% of the {row['precision']} ceiling")
        if "speedup_vs_official" in row:
            s = row["speedup_vs_official"]
            line += f"; vs official {s['median']:.2f}x (rounds {s['min']:.2f}-{s['max']:.2f})"
        if "compile_s" in row:
            line += f"; compile {row['compile_s']:.0f} s, max |diff| vs eager {row['max_abs_diff_vs_eager']:.1e}"
        if "peak_memory_gib" in row:
            line += f"; peak memory {row['peak_memory_gib']:.1f} GiB"
        if "mfu" in row:
            line += f"; MFU {100 * row['mfu']:.1f}% of {row['nominal_peak_tflops']} TFLOP/s"
        print(line, flush=True)
        if "peak_memory_all_modes_gib" in row:
            print(f"{row['config']}: peak CUDA memory over all modes {row['peak_memory_all_modes_gib']:.1f} GiB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official", type=Path, help="a checkout of facebookresearch/ijepa to time beside ours")
    parser.add_argument("--config", choices=[*CONFIGS, "cpu"], default="cpu", help="cpu = tiny and small")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2, help="CPU intra-op threads, for both steps")
    parser.add_argument("--batch", type=int, help="override the configuration's batch")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps of each mode")
    parser.add_argument("--rounds", type=int, default=8, help="alternating rounds")
    parser.add_argument("--per-round", type=int, default=2, help="timed steps of each mode per round")
    parser.add_argument("--mask-draws", type=int, default=4, help="mask batches cycled through the rounds")
    parser.add_argument("--modes", default="eager",
                        help="ours, comma-separated: eager, compiled, whole (eager on whole contexts, context_trim "
                             "none), bf16 (CPU: eager under bf16 autocast), recompute (eager, activation checkpointing)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)

    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not args.modes or any(m not in ("eager", "compiled", "whole", "bf16", "recompute") for m in args.modes):
        parser.error(f"--modes {','.join(args.modes)!r}: use eager, compiled, whole, bf16 and/or recompute, "
                     "comma-separated")
    if "bf16" in args.modes and args.device.startswith("cuda"):
        parser.error("--modes bf16: on CUDA every mode already runs under bf16 autocast; leave bf16 out")
    for name in ("rounds", "per_round", "mask_draws", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} {getattr(args, name)}: must be >= 1")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is visible; use --device cpu")
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    official = import_official(args.official) if args.official is not None else None
    names = ["tiny", "small"] if args.config == "cpu" else [args.config]
    ceiling = Ceiling(device, cpu_bf16="bf16" in args.modes)
    ceiling.sample(repeats=5)
    what = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{args.threads} threads"
    print(f"device {device} ({what}), torch {torch.__version__}, load average {_load()} at start"
          + (f", official code from {args.official}" if args.official else ""))
    rows: list[dict[str, Any]] = []
    for name in names:
        rows.extend(bench(name, CONFIGS[name], device, ceiling, modes=args.modes, official=official,
                          warmup=args.warmup, rounds=args.rounds, per_round=args.per_round,
                          mask_draws=args.mask_draws, seed=args.seed, batch=args.batch))
    ceiling.sample(repeats=5)
    best = ceiling.best
    print(f"matmul ceiling ({str(ceiling.dtype).removeprefix('torch.')}, {ceiling.n}^3): {best / 1e9:.1f} GFLOP/s "
          f"(best of {len(ceiling.samples)} samples through the run; worst {min(ceiling.samples) / 1e9:.1f})")
    if ceiling.bf16_samples:
        print(f"matmul ceiling (bfloat16, {ceiling.n}^3): {ceiling.best_bf16 / 1e9:.1f} GFLOP/s (best of "
              f"{len(ceiling.bf16_samples)} samples; worst {min(ceiling.bf16_samples) / 1e9:.1f})")
    _print(rows, device, best, ceiling.best_bf16 if ceiling.bf16_samples else None)
    print(f"load average {_load()} at end")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
