"""End-to-end training on digits: a run, its files, exact resume, NaN guard, refusals."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from jepa_torch.training import loop as train_module
from jepa_torch.methods import ijepa as ijepa_module
from jepa_torch.io.checkpoint import CheckpointError
from jepa_torch.config import DataConfig, MaskSection, ModelConfig, OptimConfig, RunConfig, TrainConfig
from jepa_torch.methods import get_method
from jepa_torch.training.resume import list_checkpoints, load_training_checkpoint
from jepa_torch.methods.step import StepResult
from jepa_torch.training.loop import TrainingDiverged, train


def tiny_config(out: Path, **run: object) -> TrainConfig:
    """A ViT of 2 blocks on 16 px digits (a 4x4 patch grid): a step costs milliseconds."""
    return TrainConfig(
        model=ModelConfig(preset="vit_tiny", depth=2, patch_size=4, pred_depth=1, pred_emb_dim=48),
        data=DataConfig(img_size=16, batch_size=16, holdout_fraction=0.5),
        mask=MaskSection(num_targets=2, target_scale=(0.1, 0.25), context_scale=(0.85, 1.0), min_keep=2),
        optimization=OptimConfig(epochs=2, warmup_epochs=0.5, lr=1e-3),
        run=RunConfig(out_dir=str(out), device="cpu", log_every=1, checkpoint_every=4, keep_checkpoints=2,
                      monitor_every=0, tensorboard=False, **run),  # type: ignore[arg-type]
    )


def _logged(out: Path) -> list[tuple[int, float]]:
    with (out / "log.csv").open() as f:
        return [(int(r["step"]), float(r["loss"])) for r in csv.DictReader(f)]


def test_run_writes_config_log_checkpoints_and_curves(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path / "run", max_steps=10)
    summary = train(cfg, progress=False)
    out = tmp_path / "run"
    assert summary.steps == 10 and len(summary.losses) == 10
    assert all(torch.isfinite(torch.tensor(v)) for _, v in summary.losses)
    assert (out / "config.yaml").is_file() and (out / "curves.png").stat().st_size > 1000
    assert [s for s, _ in list_checkpoints(out / "checkpoints")] == [8, 10]  # keep_checkpoints=2
    assert [s for s, _ in _logged(out)] == list(range(1, 11))


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_resume_reproduces_the_uninterrupted_losses_bit_for_bit(tmp_path: Path, precision: str) -> None:
    """In fp32 and under CPU bf16 autocast (fp32 master weights and AdamW state in the checkpoint)."""
    def config(out: Path, steps: int) -> TrainConfig:
        cfg = tiny_config(out, max_steps=steps)
        return replace(cfg, run=replace(cfg.run, precision=precision))  # type: ignore[arg-type]

    whole = train(config(tmp_path / "whole", 9), progress=False).losses
    if precision == "bf16":  # bf16 really ran: other losses than fp32's
        assert whole != train(tiny_config(tmp_path / "fp32", max_steps=9), progress=False).losses
    first = train(config(tmp_path / "split", 4), progress=False)
    assert first.steps == 4
    second = train(config(tmp_path / "split", 9), progress=False)
    assert second.resumed_from == 4
    assert first.losses + second.losses == whole  # exact float equality, step by step
    assert _logged(tmp_path / "split") == whole  # the CSV has no duplicated or missing rows


def test_resume_with_another_global_batch_is_refused(tmp_path: Path) -> None:
    train(tiny_config(tmp_path / "run", max_steps=4), progress=False)
    cfg = tiny_config(tmp_path / "run", max_steps=8)
    cfg = replace(cfg, data=replace(cfg.data, batch_size=8))
    with pytest.raises(CheckpointError, match="global batch of 16"):
        train(cfg, progress=False)


def test_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_step = ijepa_module.train_step
    calls = {"n": 0}

    def poisoned(*args: object, **kwargs: object) -> StepResult:
        calls["n"] += 1
        result = real_step(*args, **kwargs)  # type: ignore[arg-type]
        if calls["n"] == 6:
            return replace(result, loss=torch.tensor(float("nan")))
        return result

    monkeypatch.setattr(ijepa_module, "train_step", poisoned)
    out = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match=r"at step 6; the last good checkpoint is .*step_00000004\.pt"):
        train(tiny_config(out, max_steps=10), progress=False)
    assert [s for s, _ in list_checkpoints(out / "checkpoints")] == [4]
    cfg = tiny_config(out)
    from jepa_torch.training.loop import build_model  # the same architecture, to load into
    from jepa_torch.data import build_dataset, input_spec

    model, _ = build_model(cfg, input_spec(build_dataset(cfg)))
    state = load_training_checkpoint(out / "checkpoints" / "step_00000004.pt", networks=get_method("ijepa").networks(model),
                                     trained=("encoder", "predictor"), optimizer=None)
    assert state.step == 4


def test_non_finite_weights_are_never_checkpointed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Weights that turn infinite in the optimiser step of a checkpoint step are not saved."""
    real_step = ijepa_module.train_step
    calls: list[int] = []

    def corrupting(model, optimizer, *args, **kwargs):  # type: ignore[no-untyped-def]
        result = real_step(model, optimizer, *args, **kwargs)
        calls.append(1)
        if len(calls) == 8:  # after the update of step 8, whose loss was finite
            with torch.no_grad():
                next(model.predictor.parameters()).fill_(float("inf"))
        return result

    monkeypatch.setattr(ijepa_module, "train_step", corrupting)
    out = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match=r"weights are not finite at step 8 .*step_00000004\.pt"):
        train(tiny_config(out, max_steps=10), progress=False)
    assert [s for s, _ in list_checkpoints(out / "checkpoints")] == [4]


def test_the_trainer_applies_the_schedules_the_law_suite_checks(tmp_path: Path) -> None:
    """At optimiser step k the run uses lr(k), wd(k) and momentum(k) of the torch backend's schedules."""
    from jepa_torch.conformance.backend import backend
    from jepa_torch.data import build_dataset

    cfg = tiny_config(tmp_path / "run", max_steps=12)
    train(cfg, progress=False)
    plan = train_module.make_plan(cfg, len(build_dataset(cfg)), 1)
    opt = cfg.optimization
    lr = backend.lr_schedule(opt.start_lr, opt.lr, opt.final_lr, plan.warmup_steps, plan.schedule_steps)
    wd = backend.wd_schedule(opt.weight_decay, opt.final_weight_decay, plan.schedule_steps)
    momentum = backend.momentum_schedule(opt.ema[0], opt.ema[1], plan.schedule_steps)
    with (tmp_path / "run" / "log.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert plan.warmup_steps >= 2 and len(rows) == 12
    for row in rows:
        k = int(row["step"]) - 1  # the row is written after optimiser step k (0-based)
        assert float(row["lr"]) == pytest.approx(lr(k), rel=1e-12, abs=1e-15), f"lr at step {k}"
        assert float(row["weight_decay"]) == pytest.approx(wd(k), rel=1e-12, abs=1e-15), f"wd at step {k}"
        assert float(row["momentum"]) == pytest.approx(momentum(k), rel=1e-12, abs=1e-15), f"momentum at step {k}"


def test_the_target_scale_schedule_reaches_the_masks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """mask.final_target_scale: at step k the targets have the size of the scheduled scale, then hold at the end."""
    real_step = ijepa_module.train_step
    sizes: list[list[int]] = []

    def recording(model, optimizer, images, context, targets, *args, **kwargs):  # type: ignore[no-untyped-def]
        sizes.append([int(t.shape[1]) for t in targets])
        return real_step(model, optimizer, images, context, targets, *args, **kwargs)

    monkeypatch.setattr(ijepa_module, "train_step", recording)
    cfg = tiny_config(tmp_path / "run", max_steps=7)
    cfg = replace(cfg, data=replace(cfg.data, img_size=32),  # an 8x8 grid
                  mask=MaskSection(num_targets=2, target_scale=(0.05, 0.05), target_aspect=(1.0, 1.0), min_keep=4,
                                   final_target_scale=(0.25, 0.25)),
                  optimization=replace(cfg.optimization, ipe_scale=0.05, warmup_epochs=0.05))
    train(cfg, progress=False)
    # 898 training digits / 16 = 56 steps per epoch; the schedules last int(56 * 2 * 0.05) = 5 steps
    scale = [0.05 + 0.2 * min(1.0, k / 5) for k in range(7)]
    side = [round((64 * s) ** 0.5) for s in scale]  # a square target of area 64 s
    assert sizes == [[n * n] * 2 for n in side]
    assert side[0] == 2 and side[-1] == side[-2] == 4  # the start range, then the end range held
