"""LeJEPA as a method: multi-view prediction plus SIGReg, one encoder, no EMA, no predictor.

Networks (checkpoint entries): ``encoder`` (evaluated and exported; LeJEPA has no target copy) and
``projector`` (the head whose output SIGReg shapes). A step's inputs are ``method.*``'s multi-crop
views of the un-augmented batch, their crops drawn from (seed, step) for the global batch and sliced
by rank; the step is :func:`lejepa_step` with the step's SIGReg directions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import torch
from torch import Tensor, nn
from torch.distributed.device_mesh import DeviceMesh

from jepa_torch.config.schema import ConfigError, TrainConfig
from jepa_torch.data.datasets import InputSpec
from jepa_torch.config.schema import Precision
from jepa_torch.models.lejepa import LeJEPA
from jepa_torch.objectives.lejepa import lejepa_loss
from jepa_torch.config.model import model_config
from jepa_torch.models.jepa import JEPAConfig, ProjectorConfig, make_image_encoder, make_projector
from jepa_torch.io.plots import render_views, unit_range
from jepa_torch.methods.step import StepResult, autocast_for, backward_and_step
from jepa_torch.data.views import MultiCrop, view_generator
from jepa_torch.methods.base import RunInfo, Supports
from jepa_torch.methods.inputs import directions_for_step

__all__ = ["LeJEPAMethod", "LeJEPAStepConfig", "lejepa_step", "multicrop"]


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
        encoder = make_image_encoder(config.encoder, config.init_std, config.depth_rescale)  # drawn first
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


@dataclass(frozen=True)
class LeJEPAStepConfig:
    """What one LeJEPA step computes.

    Attributes:
        num_global: how many of the views are global (the centre's).
        lam: SIGReg's trade-off ``lambda``: ``loss = (1 - lambda) * prediction + lambda * SIGReg``.
        grad_clip: clip the global gradient norm to this value (None: off).
        precision: ``"auto"`` (bf16 on CUDA, fp32 elsewhere), ``"fp32"`` or ``"bf16"``.
    """

    num_global: int = 2
    lam: float = 0.05
    grad_clip: float | None = None
    precision: Precision = "auto"

    def __post_init__(self) -> None:
        if self.num_global < 1:
            raise ValueError(f"num_global={self.num_global}: need at least one global view")
        if not 0.0 <= self.lam <= 1.0:
            raise ValueError(f"lam={self.lam}: must be in [0, 1]")


def lejepa_step(model: nn.Module, optimizer: torch.optim.Optimizer, views: list[Tensor], directions: Tensor,
                knots: Tensor, config: LeJEPAStepConfig = LeJEPAStepConfig()) -> StepResult:
    """One optimisation step of the encoder and projector on one batch's views (global first).

    ``model`` is a :class:`LeJEPA` or its DistributedDataParallel wrapper.
    """
    optimizer.zero_grad(set_to_none=True)
    with autocast_for(views[0].device, config.precision):
        z = model(views)  # (V, B, K)
    loss, prediction, regulariser = lejepa_loss(z, config.num_global, directions, knots, config.lam)
    grad_norm = backward_and_step(loss, optimizer, config.grad_clip)
    return StepResult(loss.detach(), prediction.detach(), regulariser.detach(), grad_norm)
