"""A third method, defined and registered in this file alone, trains, resumes bit for bit, evaluates and
exports through the unchanged loop: a method is one object (``jepa_torch.methods.Method``).

"Pooled EMA" is I-JEPA without a predictor, in the spirit of data2vec's averaged targets: the context
encoder sees I-JEPA's context tokens, a linear head maps their mean to the mean of the EMA target
encoder's layer-normed tokens of the whole image (smooth-L1), then the EMA. Nothing outside this
file knows it.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from jepa_torch.config import ConfigError, MethodConfig, RunConfig, TrainConfig
from jepa_torch.models.ema import update_target_encoder_
from jepa_torch.evaluation import EvalConfig, evaluate
from jepa_torch.io.export import load_encoder
from jepa_torch.methods import RunInfo, Supports, register
from jepa_torch.methods.inputs import masks_for_step
from jepa_torch.config.model import model_config
from jepa_torch.models import JEPAConfig, ProjectorConfig, make_encoder, make_projector, make_target_encoder
from jepa_torch.objectives.representation import layer_norm_targets
from jepa_torch.methods.step import StepResult
from jepa_torch.training.loop import train
from jepa_core.schedules import MomentumSchedule
from tests.test_train import tiny_config


class PooledTarget(nn.Module):
    def __init__(self, encoder: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.encoder, self.head, self.target_encoder = encoder, head, make_target_encoder(encoder)

    def forward(self, images: Tensor, context_masks: list[Tensor]) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            target = layer_norm_targets(self.target_encoder(images)).mean(dim=1)  # (B, D)
        pooled = self.encoder(images, context_masks).mean(dim=1)  # (Mx*B, D)
        return self.head(pooled), target.repeat(len(context_masks), 1)  # (Mx*B, D) each


class PooledEMA:
    name = "pooled_ema"
    title = "Pooled EMA"
    supports = Supports()  # one process or DDP; no FSDP, accumulation or compile
    augment = True
    trained = ("encoder", "head")
    encoders: Mapping[str, str] = {"target": "target_encoder", "context": "encoder"}
    legacy_entries: Mapping[str, str] = {}

    def check(self, cfg: TrainConfig) -> None:
        pass

    def model_config(self, cfg: TrainConfig, spec: Any) -> JEPAConfig:
        enc = model_config(cfg, spec).encoder
        return JEPAConfig(enc, None, projector=ProjectorConfig(enc.embed_dim, 0, enc.embed_dim))

    def build(self, config: JEPAConfig) -> nn.Module:
        assert config.projector is not None
        return PooledTarget(make_encoder(config.encoder, config.init_std), make_projector(config.projector))

    def networks(self, model: nn.Module) -> dict[str, nn.Module]:
        m = cast(PooledTarget, model)
        return {"encoder": m.encoder, "head": m.head, "target_encoder": m.target_encoder}

    def shard(self, model: nn.Module, mesh: Any) -> None:
        raise NotImplementedError

    def prepare_ddp(self, model: nn.Module, device: torch.device) -> None:
        pass

    def compile(self, model: nn.Module) -> None:
        raise NotImplementedError

    def stepper(self, model: nn.Module, run: RunInfo) -> PooledSteps:
        return PooledSteps(cast(PooledTarget, model), run)

    def draw_step(self, cfg: TrainConfig, images: Tensor, folder: Path) -> Path:
        raise NotImplementedError


class PooledSteps:
    def __init__(self, model: PooledTarget, run: RunInfo) -> None:
        self.model, self.run = model, run
        self.masks = run.cfg.mask.to_mask_config()
        self.scale_at = run.cfg.mask.target_scale_schedule(run.plan.iterations_per_epoch, run.plan.schedule_steps)
        self.momentum_at = MomentumSchedule(*run.cfg.optimization.ema, run.plan.schedule_steps)

    def inputs(self, images: Tensor, step: int) -> tuple[Tensor, list[Tensor]]:
        r = self.run
        context, _, _ = masks_for_step(r.cfg, self.masks, self.scale_at, r.cfg.grid(), step, r.plan.global_batch,
                                       r.rank, r.device)
        return images, context

    def step(self, forward: nn.Module, optimizer: torch.optim.Optimizer, inputs: tuple[Tensor, list[Tensor]],
             step: int) -> StepResult:
        optimizer.zero_grad(set_to_none=True)
        prediction, target = forward(*inputs)
        loss = F.smooth_l1_loss(prediction, target)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        update_target_encoder_(self.model.target_encoder, self.model.encoder, self.momentum_at(step))
        return StepResult(loss.detach(), loss.detach(), loss.new_zeros(()).detach(), None)

    def logged(self, step: int) -> dict[str, float]:
        return {"momentum": self.momentum_at(step)}


register(PooledEMA())


def _config(out: Path, steps: int) -> TrainConfig:
    cfg = tiny_config(out, max_steps=steps)
    return replace(cfg, method=MethodConfig(name="pooled_ema"), run=replace(cfg.run, checkpoint_every=2))


def test_a_method_registered_in_a_test_trains_resumes_bit_for_bit_evaluates_and_exports(tmp_path: Path) -> None:
    whole = train(_config(tmp_path / "whole", 4), progress=False)
    first = train(_config(tmp_path / "split", 2), progress=False)
    second = train(_config(tmp_path / "split", 4), progress=False)
    assert second.resumed_from == 2 and first.losses + second.losses == whole.losses
    assert whole.losses[-1][1] < whole.losses[0][1]
    a, b = (torch.load(s.last_checkpoint, weights_only=True) for s in (whole, second))  # type: ignore[arg-type]
    assert a["method"] == "pooled_ema" and set(a["encoders"].values()) <= set(a)
    for entry in ("encoder", "head", "target_encoder"):
        assert all(torch.equal(a[entry][k], b[entry][k]) for k in a[entry]), entry
    with (tmp_path / "whole" / "log.csv").open() as f:
        assert float(next(csv.DictReader(f))["momentum"]) == pytest.approx(0.996, abs=1e-3)

    assert whole.last_checkpoint is not None
    report = evaluate(whole.last_checkpoint, baselines=False, config=EvalConfig(probes=("knn",), progress=False))
    assert list(report.rows) == ["Pooled EMA target encoder"]
    encoder = load_encoder(whole.last_checkpoint)  # built from the stored model config, the target entry
    state = {k.removeprefix("module."): v for k, v in a["target_encoder"].items()}
    assert all(torch.equal(v, state[k]) for k, v in encoder.state_dict().items())


def test_the_config_refuses_what_the_method_does_not_support_in_one_line(tmp_path: Path) -> None:
    cfg = _config(tmp_path, 2)
    with pytest.raises(ConfigError, match=r"^run.compile=True: method pooled_ema does not support torch.compile; ") as e:
        replace(cfg, run=RunConfig(out_dir=str(tmp_path), compile=True))
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match=r"^method.name='nothing': use one of ijepa, lejepa, pooled_ema, vjepa$"):
        MethodConfig(name="nothing")
