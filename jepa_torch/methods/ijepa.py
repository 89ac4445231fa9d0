"""I-JEPA as a method: masked prediction in embedding space against an EMA target encoder.

Networks (checkpoint entries): ``encoder`` (the context encoder), ``predictor``, ``target_encoder``
(its EMA, evaluated and exported by default). A step's inputs are the masks of ``mask.*``, drawn for the
global batch from (seed, step) and sliced by rank (:func:`~jepa_torch.methods.inputs.masks_for_step`);
the step is ``jepa_torch.methods.step.train_step`` (with the optional VICReg and SIGReg terms of
``optimization.*``), then the EMA with the step's momentum.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple, cast

import torch
from torch import Tensor, nn
from torch.distributed.device_mesh import DeviceMesh

from jepa_core.masks import sample_masks
from jepa_core.schedules import MomentumSchedule

from jepa_torch.config.schema import TrainConfig
from jepa_torch.data.datasets import InputSpec
from jepa_torch.models.sharding import shard
from jepa_torch.config.model import model_config
from jepa_torch.models.jepa import JEPA, JEPAConfig, build
from jepa_torch.io.plots import render_masks, unit_range
from jepa_torch.methods.step import StepConfig, StepResult, compile_model, train_step
from jepa_torch.methods.base import RunInfo, Supports
from jepa_torch.methods.inputs import directions_for_step, masks_for_step

__all__ = ["IJEPA", "MaskedBatch"]


class MaskedBatch(NamedTuple):
    """One I-JEPA step's inputs: the batch and its masks (``context_lengths`` for whole, padded contexts)."""

    images: Tensor
    context_masks: list[Tensor]
    target_masks: list[Tensor]
    context_lengths: list[Tensor] | None


class IJEPA:
    """The I-JEPA method (Assran et al., 2023), with this project's VICReg and SIGReg options."""

    name = "ijepa"
    title = "I-JEPA"
    supports = Supports(ddp=True, fsdp=True, accumulate=True, compile=True, activation_checkpointing=True,
                        sequences=True)
    augment = True
    trained = ("encoder", "predictor")
    encoders: Mapping[str, str] = {"target": "target_encoder", "context": "encoder"}
    legacy_entries: Mapping[str, str] = {}

    def check(self, cfg: TrainConfig) -> None:
        """The masks of ``mask.*`` on an image run's patch grid (a sequence's grid is known once its data is)."""
        if cfg.data.dataset != "sequence":
            cfg.mask.check_grid(cfg.grid())

    def model_config(self, cfg: TrainConfig, spec: InputSpec) -> JEPAConfig:
        return model_config(cfg, spec)

    def build(self, config: JEPAConfig) -> nn.Module:
        return build(config)

    def networks(self, model: nn.Module) -> dict[str, nn.Module]:
        m = cast(JEPA, model)
        return {"encoder": m.encoder, "predictor": m.predictor, "target_encoder": m.target_encoder}

    def shard(self, model: nn.Module, mesh: DeviceMesh) -> None:
        shard(cast(JEPA, model), mesh)

    def prepare_ddp(self, model: nn.Module, device: torch.device) -> None:
        """Nothing: the three networks hold no batch statistics."""

    def compile(self, model: nn.Module) -> None:
        compile_model(cast(JEPA, model))  # in place: state-dict names and the optimiser's parameters unchanged

    def stepper(self, model: nn.Module, run: RunInfo) -> IJEPASteps:
        return IJEPASteps(cast(JEPA, model), run)

    def draw_step(self, cfg: TrainConfig, images: Tensor, folder: Path) -> Path:
        """The context and target blocks of a batch of four over the first image (``masks.png``)."""
        batch_masks = sample_masks(cfg.grid(), cfg.mask.to_mask_config(), cfg.run.seed, 4)
        return render_masks(batch_masks, cfg.grid(), folder / "masks.png", image=unit_range(images[0]), samples=4,
                            title="context (blue) and target blocks of one batch, over a held-out digit")


class IJEPASteps:
    """The steps of one I-JEPA run: its masks, schedules of momentum and target scale, and loss options."""

    def __init__(self, model: JEPA, run: RunInfo) -> None:
        cfg, plan, opt = run.cfg, run.plan, run.cfg.optimization
        self.model, self.run = model, run
        grid = tuple(int(g) for g in model.encoder.grid)
        self.grid = (1, grid[0]) if len(grid) == 1 else (grid[0], grid[1])
        cfg.mask.check_grid(self.grid)  # a sequence's grid is known only now
        self.mask_cfg = cfg.mask.to_mask_config()
        self.scale_at = cfg.mask.target_scale_schedule(plan.iterations_per_epoch, plan.schedule_steps)
        self.momentum_at = MomentumSchedule(opt.ema[0], opt.ema[1], plan.schedule_steps)
        self.config = StepConfig(loss=opt.loss, var_weight=opt.var_weight, cov_weight=opt.cov_weight,
                                 sigreg_weight=opt.sigreg_weight, sigreg_embedding=opt.sigreg_embedding,
                                 grad_clip=opt.grad_clip, precision=cfg.run.precision)
        self.knots = torch.linspace(-5.0, 5.0, opt.sigreg_knots, device=run.device)  # (T,)

    def inputs(self, images: Tensor, step: int) -> MaskedBatch:
        run = self.run
        context, targets, lengths = masks_for_step(run.cfg, self.mask_cfg, self.scale_at, self.grid, step,
                                                   run.plan.global_batch, run.rank, run.device)
        return MaskedBatch(images, context, targets, lengths)

    def step(self, forward: nn.Module, optimizer: torch.optim.Optimizer, inputs: MaskedBatch, step: int) -> StepResult:
        run = self.run
        directions = (directions_for_step(run.cfg, step, self.model.encoder.embed_dim, run.device)
                      if self.config.sigreg_weight > 0 else None)
        return train_step(self.model, optimizer, inputs.images, inputs.context_masks, inputs.target_masks,
                          self.momentum_at(step), self.config, directions, self.knots, forward=forward,
                          context_lengths=inputs.context_lengths, accumulate=run.cfg.optimization.accumulate)

    def logged(self, step: int) -> dict[str, float]:
        return {"momentum": self.momentum_at(step)}
