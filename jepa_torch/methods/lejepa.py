"""LeJEPA as a method: multi-view prediction plus SIGReg, one encoder, no EMA, no predictor.

Networks (checkpoint entries): ``encoder`` (evaluated and exported; LeJEPA has no target copy) and
``projector`` (the head whose output SIGReg shapes). A step's inputs are ``method.*``'s multi-crop
views of the un-augmented batch, their crops drawn from (seed, step) for the global batch and sliced
by rank; the step is ``jepa_torch.lejepa.lejepa_step`` with the step's SIGReg directions.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import cast

import torch
from torch import Tensor, nn
from torch.distributed.device_mesh import DeviceMesh

from ..config import ConfigError, TrainConfig
from ..data import InputSpec
from ..lejepa import LeJEPA, LeJEPAStepConfig, lejepa_step
from ..models import JEPAConfig, ProjectorConfig, make_encoder, make_projector, model_config
from ..plots import render_views, unit_range
from ..step import StepResult
from ..views import MultiCrop, view_generator
from .base import RunInfo, Supports
from .inputs import directions_for_step

__all__ = ["LeJEPAMethod", "multicrop"]


def multicrop(cfg: TrainConfig) -> MultiCrop:
    """LeJEPA's views of ``method.*``: global ones at ``data.img_size``, local ones at ``method.local_size``."""
    m = cfg.method
    return MultiCrop(m.global_views, m.local_views, cfg.data.img_size, m.local_size, m.global_scale, m.local_scale,
                     rotation=m.rotation, flip=m.flip)


class LeJEPAMethod:
    """The LeJEPA method (Balestriero & LeCun, 2025)."""

    name = "lejepa"
    title = "LeJEPA"
    supports = Supports(ddp=True, fsdp=False, accumulate=False, compile=True, activation_checkpointing=True,
                        sequences=False)
    augment = False  # the views are crops of the un-augmented image
    trained = ("encoder", "projector")
    encoders: Mapping[str, str] = {"target": "encoder", "context": "encoder"}
    legacy_entries: Mapping[str, str] = {"projector": "predictor"}  # formats 1-2 stored the head as `predictor`

    def check(self, cfg: TrainConfig) -> None:
        m = cfg.method
        if cfg.data.dataset != "sequence" and m.local_views and m.local_size % cfg.model.patch_size:
            raise ConfigError(f"method.local_size={m.local_size!r}: must be a multiple of "
                              f"model.patch_size={cfg.model.patch_size}")

    def model_config(self, cfg: TrainConfig, spec: InputSpec) -> JEPAConfig:
        encoder = model_config(cfg, spec).encoder
        return JEPAConfig(encoder, None, depth_rescale=cfg.model.depth_rescale,
                          projector=ProjectorConfig(encoder.embed_dim, cfg.method.projector_hidden,
                                                    cfg.method.projector_dim))

    def build(self, config: JEPAConfig) -> nn.Module:
        if config.projector is None:
            raise ConfigError("a LeJEPA model config needs a projector")
        encoder = make_encoder(config.encoder, config.init_std, config.depth_rescale)  # drawn first
        return LeJEPA(encoder, projector=make_projector(config.projector))

    def networks(self, model: nn.Module) -> dict[str, nn.Module]:
        m = cast(LeJEPA, model)
        return {"encoder": m.encoder, "projector": m.projector}

    def shard(self, model: nn.Module, mesh: DeviceMesh) -> None:
        raise ConfigError("run.parallel='fsdp': method lejepa does not support sharded networks; use run.parallel=ddp")

    def prepare_ddp(self, model: nn.Module, device: torch.device) -> None:
        if device.type == "cuda":  # the projector's batch statistics over the global batch
            nn.SyncBatchNorm.convert_sync_batchnorm(cast(LeJEPA, model).projector)  # type: ignore[no-untyped-call]

    def compile(self, model: nn.Module) -> None:
        cast(LeJEPA, model).encoder.compile()

    def stepper(self, model: nn.Module, run: RunInfo) -> LeJEPASteps:
        return LeJEPASteps(cast(LeJEPA, model), run)

    def draw_step(self, cfg: TrainConfig, images: Tensor, folder: Path) -> Path:
        """The views of step 0 of the first four images, one row each (``views.png``)."""
        views = multicrop(cfg)(images[:4], view_generator(cfg.run.seed, 0))
        pictures = [unit_range(v.mean(dim=1)) for v in views]  # each (4, h, w), channels averaged
        return render_views(pictures, folder / "views.png", cfg.method.global_views,
                            title="LeJEPA's views of four\nheld-out digits (one step)")


class LeJEPASteps:
    """The steps of one LeJEPA run: its views, SIGReg's knots and the loss's trade-off."""

    def __init__(self, model: LeJEPA, run: RunInfo) -> None:
        cfg, opt = run.cfg, run.cfg.optimization
        self.run = run
        self.views_of = multicrop(cfg)
        self.config = LeJEPAStepConfig(num_global=cfg.method.global_views, lam=cfg.method.sigreg_lambda,
                                       grad_clip=opt.grad_clip, precision=cfg.run.precision)
        self.dim = model.projector_dim
        self.knots = torch.linspace(-5.0, 5.0, opt.sigreg_knots, device=run.device)  # (T,)

    def inputs(self, images: Tensor, step: int) -> list[Tensor]:
        run = self.run
        return self.views_of(images, view_generator(run.cfg.run.seed, step),
                             rows=(run.rank * run.cfg.data.batch_size, run.plan.global_batch))

    def step(self, forward: nn.Module, optimizer: torch.optim.Optimizer, inputs: list[Tensor], step: int) -> StepResult:
        directions = directions_for_step(self.run.cfg, step, self.dim, self.run.device)
        return lejepa_step(forward, optimizer, inputs, directions, self.knots, self.config)

    def logged(self, step: int) -> dict[str, float]:
        return {}
