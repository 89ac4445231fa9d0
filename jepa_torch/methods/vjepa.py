"""V-JEPA as a method: masked prediction of video in embedding space against an EMA target encoder.

Networks (checkpoint entries): ``encoder`` (the video context encoder), ``predictor`` (one learned mask
token per mask configuration), ``target_encoder`` (its EMA, evaluated and exported by default). A step's
inputs are the 3-D masks of every configuration of ``mask.video_*`` (``jepa_core.video_masks``), drawn for
the global batch from (seed, step) and sliced by rank; the step predicts each configuration's target
(the union of its boxes) from its context with that configuration's mask token, compares it with the
layer-normed target encoder's tokens under ``optimization.loss`` (V-JEPA's is ``l1``), averages over the
configurations, and updates the EMA with the step's momentum.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import torch
from torch import Tensor, nn
from torch.distributed.device_mesh import DeviceMesh

from jepa_core.model_config import JEPAConfig
from jepa_core.representation import LossKind
from jepa_core.schedules import MomentumSchedule
from jepa_core.video_masks import sample_video_masks

from jepa_torch.config.schema import ConfigError, TrainConfig
from jepa_torch.data.datasets import InputSpec
from jepa_torch.io.plots import render_video_masks, unit_range
from jepa_torch.methods.base import RunInfo, Supports
from jepa_torch.methods.step import StepResult, autocast_for, clip_and_step
from jepa_torch.models.ema import update_target_encoder_
from jepa_torch.models.sharding import shard
from jepa_torch.models.vjepa import VJEPA, build_vjepa
from jepa_torch.objectives.representation import elementwise_loss

__all__ = ["VJEPAMethod", "VideoMasks", "video_loss", "video_masks_for_step"]

_MASKS = 0x766D736B  # stream tag of the video masks ("vmsk")


@dataclass(frozen=True)
class VideoMasks:
    """One V-JEPA step's inputs: the clips and, per mask configuration, its masks and which entries are real."""

    clips: Tensor
    contexts: list[Tensor]
    targets: list[Tensor]
    context_valid: list[Tensor | None]
    target_valid: list[Tensor | None]

    def rows(self, part: slice) -> VideoMasks:
        """The micro-batch ``part`` of every tensor."""
        def cut(xs: Sequence[Tensor | None]) -> list[Tensor | None]:
            return [None if x is None else x[part] for x in xs]

        return VideoMasks(self.clips[part], [m[part] for m in self.contexts], [m[part] for m in self.targets],
                          cut(self.context_valid), cut(self.target_valid))


def _valid(lengths: list[np.ndarray] | None, size: int, rows: slice, device: torch.device) -> Tensor | None:
    if lengths is None:
        return None
    n = torch.from_numpy(np.ascontiguousarray(lengths[0][rows])).to(device)
    return torch.arange(size, device=device) < n[:, None]  # (b, K)


def video_masks_for_step(cfg: TrainConfig, clips: Tensor, step: int, global_batch: int, rank: int) -> VideoMasks:
    """This rank's slice of the global batch's 3-D masks, a pure function of (seed, step)."""
    rng = np.random.default_rng([cfg.run.seed, step, _MASKS])
    batches = sample_video_masks(cfg.video_grid(), cfg.mask.to_video_configs(), rng, global_batch)
    share = cfg.data.batch_size * cfg.optimization.accumulate
    rows = slice(rank * share, (rank + 1) * share)
    device = clips.device

    def take(a: np.ndarray) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(a[rows])).to(device, non_blocking=True)

    return VideoMasks(clips, [take(b.context[0]) for b in batches], [take(b.targets[0]) for b in batches],
                      [_valid(b.context_lengths, b.context[0].shape[1], rows, device) for b in batches],
                      [_valid(b.target_lengths, b.targets[0].shape[1], rows, device) for b in batches])


def video_loss(predictions: Sequence[Tensor], targets: Sequence[Tensor], target_valid: Sequence[Tensor | None],
               kind: LossKind = "l1") -> Tensor:
    """The mean over mask configurations of each one's mean element loss over its real target tokens (fp32)."""
    per_config = []
    for pred, target, valid in zip(predictions, targets, target_valid, strict=True):
        losses = elementwise_loss(target.float(), pred.float(), kind)  # (B, Kt, D)
        if valid is None:
            per_config.append(losses.mean())
        else:
            w = valid.unsqueeze(-1).to(losses.dtype)  # (B, Kt, 1)
            per_config.append((losses * w).sum() / (w.sum() * losses.size(-1)))
    return torch.stack(per_config).mean()


class VJEPAMethod:
    """The V-JEPA method (Bardes et al., 2024; V-JEPA 2, Assran et al., 2025)."""

    name = "vjepa"
    title = "V-JEPA"
    supports = Supports(ddp=True, fsdp=True, accumulate=True, compile=True, activation_checkpointing=True,
                        sequences=False, images=False, videos=True)
    augment = True
    trained = ("encoder", "predictor")
    encoders: Mapping[str, str] = {"target": "target_encoder", "context": "encoder"}
    legacy_entries: Mapping[str, str] = {}

    def check(self, cfg: TrainConfig) -> None:
        """No regularisers; the mask configurations of ``mask.video_*`` on the tubelet grid."""
        if cfg.optimization.sigreg_weight or cfg.optimization.var_weight or cfg.optimization.cov_weight:
            raise ConfigError("optimization.var_weight, cov_weight and sigreg_weight: method vjepa has no "
                              "regularisers; set them to 0")
        cfg.mask.check_video_grid(cfg.video_grid())

    def model_config(self, cfg: TrainConfig, spec: InputSpec) -> JEPAConfig:
        kind, shape = spec
        if kind != "video":
            raise ConfigError(f"data.dataset={cfg.data.dataset!r}: method vjepa trains on videos; use "
                              "data.dataset=video_folder or moving_digits")
        m = cfg.model
        return JEPAConfig.video(m.preset, img_size=cfg.data.img_size, patch_size=m.patch_size,
                                num_frames=cfg.data.frames_per_clip, tubelet_size=m.tubelet_size, in_chans=shape[0],
                                depth=m.depth, positions=m.positions, pred_depth=m.pred_depth,
                                pred_emb_dim=m.pred_emb_dim, num_mask_tokens=len(cfg.mask.video_blocks),
                                depth_rescale=m.depth_rescale)

    def build(self, config: JEPAConfig) -> nn.Module:
        return build_vjepa(config)

    def networks(self, model: nn.Module) -> dict[str, nn.Module]:
        m = cast(VJEPA, model)
        return {"encoder": m.encoder, "predictor": m.predictor, "target_encoder": m.target_encoder}

    def shard(self, model: nn.Module, mesh: DeviceMesh) -> None:
        shard(cast(VJEPA, model), mesh)

    def prepare_ddp(self, model: nn.Module, device: torch.device) -> None:
        """Nothing: the networks hold no batch statistics."""

    def compile(self, model: nn.Module) -> None:
        m = cast(VJEPA, model)
        for module in (m.encoder, m.target_encoder, m.predictor):
            module.compile()

    def stepper(self, model: nn.Module, run: RunInfo) -> VJEPASteps:
        return VJEPASteps(cast(VJEPA, model), run)

    def draw_step(self, cfg: TrainConfig, images: Tensor, folder: Path) -> Path:
        """Every mask configuration of one step over the first clip, one panel per tubelet (``masks.png``)."""
        batches = sample_video_masks(cfg.video_grid(), cfg.mask.to_video_configs(), cfg.run.seed, 4)
        clip = unit_range(images[0].mean(dim=0)[::cfg.model.tubelet_size])  # (T / tubelet, H, W)
        names = [f"{b} blocks of {s:g}" for b, s in zip(cfg.mask.video_blocks, cfg.mask.video_spatial_scale)]
        return render_video_masks(batches, folder / "masks.png", clip=clip, names=names,
                                  title="context (blue) and target (orange) of each mask configuration, "
                                        "over a held-out clip")


class VJEPASteps:
    """The steps of one V-JEPA run: its masks, momentum schedule and loss."""

    def __init__(self, model: VJEPA, run: RunInfo) -> None:
        opt = run.cfg.optimization
        self.model, self.run = model, run
        self.momentum_at = MomentumSchedule(opt.ema[0], opt.ema[1], run.plan.schedule_steps)

    def inputs(self, images: Tensor, step: int) -> VideoMasks:
        run = self.run
        return video_masks_for_step(run.cfg, images, step, run.plan.global_batch, run.rank)

    def step(self, forward: nn.Module, optimizer: torch.optim.Optimizer, inputs: VideoMasks, step: int) -> StepResult:
        cfg = self.run.cfg
        accumulate = cfg.optimization.accumulate
        batch = inputs.clips.shape[0]
        if batch % accumulate:
            raise ValueError(f"accumulate={accumulate}: must divide the batch of {batch}")
        optimizer.zero_grad(set_to_none=True)
        size = batch // accumulate
        parts = []
        for i in range(accumulate):
            part = inputs.rows(slice(i * size, (i + 1) * size))
            no_sync = getattr(forward, "no_sync", None)
            with contextlib.nullcontext() if i == accumulate - 1 or no_sync is None else no_sync():
                with autocast_for(part.clips.device, cfg.run.precision):
                    predictions, targets = forward(part.clips, part.contexts, part.targets, part.context_valid,
                                                   part.target_valid)
                loss = video_loss(predictions, targets, part.target_valid, cfg.optimization.loss)
                (loss / accumulate).backward()  # type: ignore[no-untyped-call]
            parts.append(loss.detach())
        grad_norm = clip_and_step(optimizer, cfg.optimization.grad_clip)
        update_target_encoder_(self.model.target_encoder, self.model.encoder, self.momentum_at(step))
        total = torch.stack(parts).mean()
        return StepResult(total, total, total.new_zeros(()), grad_norm)

    def logged(self, step: int) -> dict[str, float]:
        return {"momentum": self.momentum_at(step)}
