"""One V-JEPA training step, ours against the official V-JEPA 2 step, timed side by side in one process (CPU).

    python benchmarks/bench_video_step.py --official ~/src/vjepa2                 # the demo's size and a small one
    python benchmarks/bench_video_step.py --official ~/src/vjepa2 --configs small --rounds 12
    python benchmarks/bench_video_step.py                                        # ours alone
    python benchmarks/bench_video_step.py --official ~/src/vjepa2 --configs base --device cuda   # bf16, as trained

``--official PATH`` names a checkout of facebookresearch/vjepa2; nothing of it is copied here. Its
``src.models`` classes build the encoder and predictor as its ``app.vjepa.utils.init_video_model`` does
(each in its multi-sequence wrapper of ``src.utils.wrappers``; built from the classes so that the
depth can be the recipe's, which the official presets fix at 12), and its ``init_opt`` the optimiser
and schedules; :class:`OfficialVideoStep`
then calls, in the order of the ``train_step`` closure of its ``app/vjepa/train.py`` (a closure cannot
be imported): both schedulers' ``step``, the target encoder under ``no_grad`` with ``F.layer_norm``, the
context encoder and the predictor over every mask configuration, the loss of ``loss_fn`` (``apply_masks``
of ``src.masks.utils``, ``mean |z - h|^p / p`` per configuration, averaged), backward,
``optimizer.step``, ``zero_grad``, and the ``_foreach`` EMA; ``float(loss)``.

Same work on both sides:

- **model**: the official modules' state dicts load strictly into ours (``jepa_torch.models.vjepa``),
  so both start from the same weights; RoPE, SDPA attention, two zero-initialised mask tokens;
- **clips and masks**: the same random clips, and V-JEPA 2's two mask configurations (8 boxes of 0.15
  and 2 of 0.7 through the clip) drawn by our ``jepa_core.video_masks`` sampler, ``--mask-draws``
  batches of them; round ``r`` feeds draw ``r mod draws`` to both steps;
- **optimiser**: AdamW at a constant learning rate and weight decay (the official ``init_opt``'s groups
  on its side, ``make_optimizer`` on ours), EMA momentum 0.998; on the CPU fp32 at ``--threads`` intra-op
  threads, on CUDA bf16 autocast on both sides (the official one with its ``GradScaler``, as its trainer
  runs ``mixed_precision``; ours without, bf16 needs none).

Before timing, one step of each from the same state on the same batch must give the same loss (within
1e-5 relative in fp32, 2e-2 in bf16) and encoder weights within 10 x the learning rate afterwards; otherwise nothing is timed.
The official predictor picks its mask token by clip-length index (one token for every configuration
here), ours by configuration: with zero-initialised tokens the first step is the same computation.

Rounds alternate (official, ours; reversed every other round); the per-round ratio official / ours is
printed as its median and range, beside the matmul ceiling sampled between rounds (fp32 on the CPU,
bf16 on CUDA) and each step's achieved GFLOP/s; on CUDA also each side's peak memory.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import json
import logging
import statistics
import sys
import time
import warnings
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_step import alternate, count_flops, cpu_name, matmul_ceiling  # noqa: E402
from jepa_torch.config.schema import (DataConfig, MaskSection, MethodConfig, ModelConfig, OptimConfig,  # noqa: E402
                                      RunConfig, TrainConfig)
from jepa_torch.io.checkpoint import load_strict  # noqa: E402
from jepa_torch.methods.vjepa import VideoMasks, video_loss, video_masks_for_step  # noqa: E402
from jepa_torch.models.ema import update_target_encoder_  # noqa: E402
from jepa_torch.models.vjepa import VJEPA, build_vjepa  # noqa: E402
from jepa_torch.methods.step import autocast_for, clip_and_step  # noqa: E402
from jepa_torch.training.optim import apply_schedules, make_optimizer  # noqa: E402
from jepa_core.model_config import JEPAConfig  # noqa: E402

LR, WD, MOMENTUM = 1e-4, 0.04, 0.998


@dataclass(frozen=True)
class VideoBench:
    preset: str
    img_size: int
    patch_size: int
    frames: int
    tubelet: int
    batch: int
    depth: int
    pred_depth: int
    pred_width: int


CONFIGS = {
    "demo": VideoBench("vit_tiny", 48, 6, 8, 2, 32, 6, 4, 96),  # configs/moving_digits_vjepa.yaml
    "small": VideoBench("vit_small", 64, 8, 16, 2, 8, 12, 6, 192),
    "base": VideoBench("vit_base", 224, 16, 16, 2, 16, 12, 12, 384),  # CUDA: V-JEPA 2's predictor, 16 x 224 px
}


def _train_config(cfg: VideoBench) -> TrainConfig:
    return TrainConfig(
        method=MethodConfig(name="vjepa"),
        model=ModelConfig(preset=cfg.preset, depth=cfg.depth, patch_size=cfg.patch_size, tubelet_size=cfg.tubelet,
                          positions="rope", pred_depth=cfg.pred_depth, pred_emb_dim=cfg.pred_width),
        data=DataConfig(dataset="moving_digits", img_size=cfg.img_size, frames_per_clip=cfg.frames,
                        batch_size=cfg.batch),
        mask=MaskSection(video_blocks=(8, 2), video_spatial_scale=(0.15, 0.7)),
        optimization=OptimConfig(loss="l1"), run=RunConfig(device="cpu"))


def import_official(path: Path) -> dict[str, Any]:
    """``init_video_model``, ``init_opt`` and ``apply_masks`` of the checkout at ``path`` (one-line exit if not one)."""
    if not (path / "app" / "vjepa" / "utils.py").is_file() or not (path / "src" / "masks" / "utils.py").is_file():
        raise SystemExit(f"--official {path}: not a checkout of facebookresearch/vjepa2 (no app/vjepa/utils.py); "
                         "give the folder that holds its app/ and src/")
    if "src" in sys.modules or "app" in sys.modules:
        raise SystemExit("--official: a package named 'src' or 'app' is already imported; run the benchmark on its own")
    sys.path.insert(0, str(path.resolve()))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mods: dict[str, ModuleType] = {name: importlib.import_module(name) for name in
                                           ("app.vjepa.utils", "src.masks.utils", "src.models.vision_transformer",
                                            "src.models.predictor", "src.utils.wrappers")}
    except ImportError as exc:
        raise SystemExit(f"--official {path}: its modules do not import ({exc}); check the checkout "
                         "(it needs timm and einops)") from None
    finally:
        sys.path.pop(0)
    logging.getLogger().setLevel(logging.WARNING)  # init_video_model logs each module's repr at INFO
    return {"VisionTransformer": mods["src.models.vision_transformer"].VisionTransformer,
            "VisionTransformerPredictor": mods["src.models.predictor"].VisionTransformerPredictor,
            "MultiSeqWrapper": mods["src.utils.wrappers"].MultiSeqWrapper,
            "PredictorMultiSeqWrapper": mods["src.utils.wrappers"].PredictorMultiSeqWrapper,
            "init_opt": mods["app.vjepa.utils"].init_opt, "apply_masks": mods["src.masks.utils"].apply_masks}


def official_modules(official: dict[str, Any], cfg: VideoBench, config: JEPAConfig) -> tuple[nn.Module, nn.Module]:
    """The official encoder and predictor of ``cfg``, wrapped as ``init_video_model`` wraps them."""
    enc, pred = config.encoder, config.predictor
    assert pred is not None
    common = dict(img_size=cfg.img_size, patch_size=cfg.patch_size, num_frames=cfg.frames, tubelet_size=cfg.tubelet,
                  uniform_power=False, use_sdpa=True, use_rope=True)
    encoder = official["VisionTransformer"](embed_dim=enc.embed_dim, depth=enc.depth, num_heads=enc.num_heads,
                                            mlp_ratio=4, qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6),
                                            use_silu=False, wide_silu=False, **common)
    predictor = official["VisionTransformerPredictor"](
        embed_dim=enc.embed_dim, predictor_embed_dim=pred.pred_emb_dim, depth=pred.depth, num_heads=pred.num_heads,
        mlp_ratio=4, qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6), use_mask_tokens=True,
        num_mask_tokens=2, zero_init_mask_tokens=True, use_silu=False, wide_silu=False, **common)
    return official["MultiSeqWrapper"](encoder), official["PredictorMultiSeqWrapper"](predictor)


Draw = VideoMasks


class OfficialVideoStep:
    """The official ``train_step`` closure's sequence of calls, on the official modules and helpers."""

    def __init__(self, official: dict[str, Any], encoder: nn.Module, predictor: nn.Module, draws: list[Draw],
                 device: torch.device = torch.device("cpu")) -> None:
        self.apply_masks = official["apply_masks"]
        self.bf16 = device.type == "cuda"
        self.encoder, self.predictor = encoder, predictor
        self.target_encoder = copy.deepcopy(encoder)
        for p in self.target_encoder.parameters():
            p.requires_grad = False
        self.optimizer, self.scaler, self.scheduler, self.wd_scheduler = official["init_opt"](
            False, encoder, predictor, iterations_per_epoch=10**6, start_lr=LR, ref_lr=LR, warmup=0, num_epochs=1,
            wd=WD, final_wd=WD, final_lr=LR, mixed_precision=self.bf16, ipe_scale=1.0)
        self.draws, self.draw = draws, 0

    def __call__(self) -> float:
        with warnings.catch_warnings():  # its attention's sdp_kernel context warns of its deprecation
            warnings.simplefilter("ignore", FutureWarning)
            return self._step()

    def _step(self) -> float:
        d = self.draws[self.draw]
        clips, masks_enc, masks_pred = [d.clips], [list(d.contexts)], [list(d.targets)]
        self.scheduler.step()
        self.wd_scheduler.step()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.bf16):
            with torch.no_grad():
                h = self.target_encoder(clips)
                h = [F.layer_norm(hi, (hi.size(-1),)) for hi in h]
            z = self.predictor(self.encoder(clips, masks_enc), masks_enc, masks_pred)
            h = [self.apply_masks(hi, mi, concat=False) for hi, mi in zip(h, masks_pred)]
            loss, n = 0.0, 0
            for zi, hi in zip(z, h):
                for zij, hij in zip(zi, hi):
                    loss += torch.mean(torch.abs(zij - hij) ** 1.0) / 1.0
                    n += 1
            loss /= n
        if self.bf16:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()  # type: ignore[union-attr]
            self.optimizer.step()
        self.optimizer.zero_grad()
        with torch.no_grad():
            params_k = list(self.target_encoder.parameters())
            params_q = list(self.encoder.parameters())
            torch._foreach_mul_(params_k, MOMENTUM)
            torch._foreach_add_(params_k, params_q, alpha=1 - MOMENTUM)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return float(loss)


class OurVideoStep:
    """``jepa_torch``'s V-JEPA step as its stepper runs it: forward of the three networks, ``video_loss``,
    backward, ``clip_and_step``, the EMA; the loss read back."""

    def __init__(self, model: VJEPA, draws: list[Draw]) -> None:
        self.model = model
        self.optimizer = make_optimizer([model.encoder, model.predictor], lr=LR, weight_decay=WD)
        self.draws, self.draw = draws, 0

    def __call__(self) -> float:
        apply_schedules(self.optimizer, LR, WD)
        d = self.draws[self.draw]
        self.optimizer.zero_grad(set_to_none=True)
        with autocast_for(d.clips.device, "auto"):  # bf16 on CUDA, fp32 on the CPU
            predictions, targets = self.model(d.clips, d.contexts, d.targets, d.context_valid, d.target_valid)
        loss = video_loss(predictions, targets, d.target_valid, "l1")
        loss.backward()  # type: ignore[no-untyped-call]
        clip_and_step(self.optimizer, None)
        update_target_encoder_(self.model.target_encoder, self.model.encoder, MOMENTUM)
        return float(loss.detach())


def check_same_step(official: OfficialVideoStep, ours: OurVideoStep) -> dict[str, float]:
    a, b = copy.deepcopy(official), copy.deepcopy(ours)
    a.draw = b.draw = 0
    loss_a, loss_b = a(), b()
    with torch.no_grad():
        weights = max(float((p - q).abs().max()) for p, q in
                      zip(a.encoder.backbone.parameters(), b.model.encoder.parameters()))
    out = {"official_loss": loss_a, "our_loss": loss_b, "loss_rel_diff": abs(loss_a - loss_b) / abs(loss_a),
           "encoder_weights_max_diff": weights}
    tol = 2e-2 if official.bf16 else 1e-5  # bf16 rounds differently in the two implementations
    if not (out["loss_rel_diff"] <= tol and weights <= 10 * LR):
        raise SystemExit(f"the two steps disagree on the same batch ({out}); not timing them")
    return out


def bench(name: str, cfg: VideoBench, official: dict[str, Any] | None, rounds: int, per_round: int, warmup: int,
          mask_draws: int, ceiling: list[float], seed: int = 0,
          device: torch.device = torch.device("cpu")) -> list[dict[str, Any]]:
    torch.manual_seed(seed)
    run = _train_config(cfg)
    clips = torch.randn(cfg.batch, 3, cfg.frames, cfg.img_size, cfg.img_size, device=device)
    draws = [video_masks_for_step(run, clips, d, cfg.batch, 0) for d in range(mask_draws)]
    if any(v is not None for d in draws for v in (*d.context_valid, *d.target_valid)):
        raise SystemExit("the masks were drawn padded; the official step takes trimmed masks only")
    config = JEPAConfig.video(cfg.preset, img_size=cfg.img_size, patch_size=cfg.patch_size, num_frames=cfg.frames,
                              tubelet_size=cfg.tubelet, depth=cfg.depth, positions="rope", pred_depth=cfg.pred_depth,
                              pred_emb_dim=cfg.pred_width, num_mask_tokens=2)
    model = build_vjepa(config).to(device)
    steps: dict[str, OfficialVideoStep | OurVideoStep] = {}
    if official is not None:
        encoder, predictor = (m.to(device) for m in official_modules(official, cfg, config))
        load_strict(model.encoder, encoder.backbone.state_dict(), "official encoder")
        load_strict(model.predictor, predictor.backbone.state_dict(), "official predictor")
        model.target_encoder.load_state_dict(model.encoder.state_dict())
        steps["official"] = OfficialVideoStep(official, encoder, predictor, draws, device)
    steps["ours"] = OurVideoStep(model, draws)
    extra = {"agreement": check_same_step(steps["official"], steps["ours"])} if official is not None else {}  # type: ignore[arg-type]
    flops = {k: count_flops(s) for k, s in steps.items()}  # type: ignore[arg-type]
    for s in steps.values():
        for _ in range(warmup):
            s()
    def pick(name: str, r: int) -> None:
        steps[name].draw = r % mask_draws

    def sample_ceiling(r: int) -> None:
        ceiling.append(matmul_ceiling(device, 8192, torch.bfloat16, 1) if device.type == "cuda"
                       else matmul_ceiling(device, 2048, torch.float32, 1))

    times, peaks = alternate(dict(steps), device, rounds, per_round, pick, sample_ceiling)
    names = list(steps)
    rows = []
    for k, per in times.items():
        flat = [t for ts in per for t in ts]
        median = statistics.median(flat)
        row: dict[str, Any] = {"config": name, **cfg.__dict__, "mode": k, "median_ms": 1e3 * median,
                               "min_ms": 1e3 * min(flat), "max_ms": 1e3 * max(flat), "clips_per_s": cfg.batch / median,
                               "gflop_per_step": flops[k] / 1e9, "achieved_gflops": flops[k] / median / 1e9,
                               "threads": torch.get_num_threads(), "device": str(device),
                               "precision": "bf16" if device.type == "cuda" else "fp32",
                               "context_tokens": [[int(m.shape[1]) for m in d.contexts] for d in draws]}
        if k in peaks:
            row["peak_memory_gib"] = peaks[k]
        if "official" in times and k != "official":
            ratios = [statistics.median(o) / statistics.median(t) for o, t in zip(times["official"], per)]
            row["speedup_vs_official"] = {"median": statistics.median(ratios), "min": min(ratios),
                                          "max": max(ratios)}
        rows.append(row | (extra if k == names[0] else {}))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official", type=Path, help="a checkout of facebookresearch/vjepa2 to time beside ours")
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=["demo", "small"],
                        help="default: demo and small (base is for a GPU: about 20 GiB of host memory on the CPU)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--per-round", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--mask-draws", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    for name in ("threads", "rounds", "per_round", "mask_draws"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} {getattr(args, name)}: must be >= 1")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is visible; use --device cpu")
    torch.set_num_threads(args.threads)
    official = import_official(args.official) if args.official else None
    what = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{cpu_name()}, {args.threads} threads"
    print(f"{what}, torch {torch.__version__}, {'bf16 autocast' if device.type == 'cuda' else 'fp32'}")
    ceiling: list[float] = []
    rows = [r for name in args.configs for r in bench(name, CONFIGS[name], official, args.rounds, args.per_round,
                                                      args.warmup, args.mask_draws, ceiling, device=device)]
    best = max(ceiling) / 1e9
    kind = "bf16 8192^3" if device.type == "cuda" else "fp32 2048^3"
    print(f"matmul ceiling ({kind}, best sample): {best:.0f} GFLOP/s")
    for row in rows:
        if "agreement" in row:
            a = row["agreement"]
            print(f"{row['config']}: same batch, one step each: loss {a['official_loss']:.6f} (official) vs "
                  f"{a['our_loss']:.6f} (ours), relative difference {a['loss_rel_diff']:.1e}; encoder weights after "
                  f"the step differ by at most {a['encoder_weights_max_diff']:.1e}")
        row["fraction_of_ceiling"] = row["achieved_gflops"] / best
        line = (f"{row['config']:6s} {row['mode']:8s} {row['preset']} {row['frames']}x{row['img_size']}px tubelet "
                f"{row['tubelet']}x{row['patch_size']}x{row['patch_size']} depth {row['depth']} batch {row['batch']} "
                f"pred {row['pred_depth']}x{row['pred_width']}: {row['median_ms']:.0f} ms/step "
                f"({row['min_ms']:.0f}-{row['max_ms']:.0f}), {row['clips_per_s']:.1f} clips/s, "
                f"{row['gflop_per_step']:.1f} GFLOP/step, {row['achieved_gflops']:.0f} GFLOP/s = "
                f"{100 * row['fraction_of_ceiling']:.0f}% of ceiling")
        if "peak_memory_gib" in row:
            line += f"; peak memory {row['peak_memory_gib']:.1f} GiB"
        if "speedup_vs_official" in row:
            s = row["speedup_vs_official"]
            line += f"; vs official {s['median']:.2f}x (rounds {s['min']:.2f}-{s['max']:.2f})"
        print(line, flush=True)
    if args.json:
        args.json.write_text(json.dumps({"ceiling_gflops": best, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
