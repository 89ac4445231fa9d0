"""V-JEPA as a method: its model config, loss, step, accumulation, exact resume, checkpoints and evaluation."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from jepa_core.model_config import JEPAConfig
from jepa_core.representation import elementwise_loss as spec_elementwise
from jepa_torch.config import MaskSection, OptimConfig, RunConfig, TrainConfig
from jepa_torch.data.datasets import build_dataset
from jepa_torch.data.moving_digits import write_moving_digits
from jepa_torch.evaluation import EvalConfig, EvaluationError, evaluate
from jepa_torch.evaluation.probes import HeadGrid
from jepa_torch.io.export import load_encoder
from jepa_torch.methods import get_method, load_model
from jepa_torch.methods.vjepa import video_loss, video_masks_for_step
from jepa_torch.models.video import VideoTransformer
from jepa_torch.models.vjepa import VJEPA, build_vjepa
from jepa_torch.training.loop import train

from .test_video_data import SMALL, video_config


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_moving_digits(tmp_path_factory.mktemp("vj") / "set", SMALL)


def tiny_video_config(root: Path, out: Path, **run: object) -> TrainConfig:
    """A 1-block video ViT on 4-frame clips of 16 px (a 2x4x4 tubelet grid): a step costs milliseconds."""
    cfg = video_config(root)
    options: dict[str, object] = {"device": "cpu", "log_every": 1, "checkpoint_every": 3, "keep_checkpoints": 2,
                                  "monitor_every": 0, "tensorboard": False, **run}
    return replace(cfg, mask=MaskSection(video_blocks=(2, 1), video_spatial_scale=(0.15, 0.5), min_keep=2),
                   optimization=OptimConfig(epochs=4, warmup_epochs=0.5, lr=1e-3, loss="l1"),
                   run=RunConfig(out_dir=str(out), **options))  # type: ignore[arg-type]


def _logged(out: Path) -> list[tuple[int, float]]:
    with (out / "log.csv").open() as f:
        return [(int(r["step"]), float(r["loss"])) for r in csv.DictReader(f)]


def test_a_video_model_config_round_trips_and_builds_the_video_networks() -> None:
    config = JEPAConfig.video("vit_tiny", img_size=32, patch_size=8, num_frames=4, depth=2, pred_depth=1,
                              pred_emb_dim=48, num_mask_tokens=3, positions="sincos")
    assert JEPAConfig.from_dict(config.to_dict()) == config and config.is_video
    model = build_vjepa(config)
    assert isinstance(model.encoder, VideoTransformer) and model.encoder.grid == (2, 4, 4)
    assert model.predictor.num_mask_tokens == 3 and model.encoder.positions == "sincos"
    assert not any(p.requires_grad for p in model.target_encoder.parameters())
    clips = torch.randn(2, 3, 4, 32, 32)
    ctx, tgt = torch.tensor([[0, 1, 2], [3, 4, 5]]), torch.tensor([[6, 7], [8, 9]])
    predictions, targets = model(clips, [ctx, ctx], [tgt, tgt])
    assert [tuple(p.shape) for p in predictions] == [(2, 2, 192)] * 2
    # the target tokens are the layer-normed target encoder's, gathered at the target indices
    h = torch.nn.functional.layer_norm(model.target_encoder(clips), (192,))
    torch.testing.assert_close(targets[0], torch.stack([h[0, [6, 7]], h[1, [8, 9]]]))


def test_each_mask_configuration_predicts_with_its_own_mask_token() -> None:
    model = build_vjepa(JEPAConfig.video("vit_tiny", img_size=16, patch_size=4, num_frames=2, depth=1, pred_depth=1,
                                         pred_emb_dim=48, num_mask_tokens=2))
    with torch.no_grad():
        model.predictor.mask_tokens[1].fill_(1.0)
    clips = torch.randn(1, 3, 2, 16, 16)
    ctx, tgt = torch.tensor([[0, 1, 2, 3]]), torch.tensor([[8, 9]])
    predictions, _ = model(clips, [ctx, ctx], [tgt, tgt])
    assert not torch.allclose(predictions[0], predictions[1])
    alone = model.predictor(model.encoder(clips, [ctx]), ctx, [tgt], mask_index=1)
    torch.testing.assert_close(predictions[1], alone)


def test_the_loss_is_the_spec_mean_over_real_target_tokens_averaged_over_configurations() -> None:
    g = torch.Generator().manual_seed(0)
    preds = [torch.randn(2, 5, 4, generator=g), torch.randn(2, 3, 4, generator=g)]
    targets = [torch.randn(2, 5, 4, generator=g), torch.randn(2, 3, 4, generator=g)]
    valid = [torch.tensor([[True] * 5, [True, True, False, False, False]]), None]
    expected = []
    for p, t, v in zip(preds, targets, valid):
        e = spec_elementwise(t.numpy().astype(np.float64), p.numpy().astype(np.float64), "l1")  # (B, K, D)
        rows = e if v is None else e[v.numpy()]
        expected.append(rows.mean())
    assert float(video_loss(preds, targets, valid, "l1")) == pytest.approx(np.mean(expected), rel=1e-6)
    assert float(video_loss(preds, targets, valid, "l2")) != pytest.approx(np.mean(expected), rel=1e-3)


def test_masks_are_a_function_of_seed_and_step_and_ranks_take_slices(videos: Path, tmp_path: Path) -> None:
    cfg = tiny_video_config(videos, tmp_path)
    clips = torch.zeros(8, 3, 4, 16, 16)
    a, b = video_masks_for_step(cfg, clips, 5, 8, 0), video_masks_for_step(cfg, clips, 5, 8, 0)
    assert all(torch.equal(x, y) for x, y in zip(a.contexts + a.targets, b.contexts + b.targets))
    other = video_masks_for_step(cfg, clips, 6, 8, 0)
    assert not all(torch.equal(x, y) for x, y in zip(a.targets, other.targets))
    half = replace(cfg, data=replace(cfg.data, batch_size=4))
    second = video_masks_for_step(half, clips[:4], 5, 8, 1)
    assert all(torch.equal(x[4:], y) for x, y in zip(a.contexts, second.contexts))
    n = 2 * 4 * 4
    for context, target in zip(a.contexts, a.targets):  # disjoint, in range
        for c, t in zip(context.tolist(), target.tolist()):
            assert not set(c) & set(t) and max(c + t) < n


def test_training_runs_writes_a_vjepa_checkpoint_and_resumes_bit_for_bit(videos: Path, tmp_path: Path) -> None:
    whole = train(tiny_video_config(videos, tmp_path / "whole", max_steps=8), progress=False)
    assert whole.steps == 8 and all(np.isfinite(v) for _, v in whole.losses)
    train(tiny_video_config(videos, tmp_path / "cut", max_steps=3), progress=False)
    resumed = train(tiny_video_config(videos, tmp_path / "cut", max_steps=8), progress=False)
    assert resumed.resumed_from == 3
    assert _logged(tmp_path / "cut") == _logged(tmp_path / "whole")  # exact floats
    assert whole.last_checkpoint is not None
    name, model = load_model(whole.last_checkpoint)
    assert name == "vjepa" and isinstance(model, VJEPA)
    encoder = load_encoder(whole.last_checkpoint)
    assert isinstance(encoder, VideoTransformer)
    torch.testing.assert_close(encoder.state_dict(), model.target_encoder.state_dict(), rtol=0, atol=0)
    assert (tmp_path / "whole" / "curves.png").is_file()


def test_a_run_from_decoded_videos_in_memory_logs_the_same_losses(videos: Path, tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    import logging

    plain = tiny_video_config(videos, tmp_path / "files", max_steps=4)
    cached = tiny_video_config(videos, tmp_path / "memory", max_steps=4)
    cached = replace(cached, data=replace(cached.data, cache_mb=8))
    train(plain, progress=False)
    with caplog.at_level(logging.INFO):
        train(cached, progress=False)
    assert any(r.getMessage().startswith("decoded 36 of 36 training videos into memory") for r in caplog.records)
    assert _logged(tmp_path / "memory") == _logged(tmp_path / "files")  # exact floats


def test_accumulation_equals_the_large_batch(videos: Path, tmp_path: Path) -> None:
    def params(cfg: TrainConfig) -> dict[str, torch.Tensor]:
        summary = train(cfg, progress=False)
        assert summary.last_checkpoint is not None
        return {k: v for k, v in load_model(summary.last_checkpoint)[1].state_dict().items()}

    big = tiny_video_config(videos, tmp_path / "big", max_steps=2)
    small = tiny_video_config(videos, tmp_path / "small", max_steps=2)
    small = replace(small, data=replace(small.data, batch_size=4),
                    optimization=replace(small.optimization, accumulate=2))
    a, b = params(big), params(small)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=2e-6, msg=k)


def test_a_video_checkpoint_evaluates_with_its_baselines_and_draws_its_masks(videos: Path, tmp_path: Path) -> None:
    summary = train(tiny_video_config(videos, tmp_path / "run", max_steps=2), progress=False)
    assert summary.last_checkpoint is not None
    fast = HeadGrid(epochs=2, batch_size=16, lrs=(1e-2,), weight_decays=(1e-4,), min_steps=4)
    report = evaluate(summary.last_checkpoint, config=EvalConfig(probes=("linear", "knn", "attentive"), linear=fast,
                                                                  attentive=fast, knn_k=3, progress=False))
    assert list(report.rows) == ["V-JEPA target encoder", "same ViT, random init", "raw pixels"]
    assert set(report.rows["V-JEPA target encoder"]) == {"linear", "knn", "attentive"}
    assert (report.train_size, report.val_size, report.classes) == (36, 12, [str(d) for d in range(10)])
    cfg = tiny_video_config(videos, tmp_path / "run")
    clips = torch.stack([build_dataset(cfg, "holdout")[(0, 0, i)] for i in range(2)])
    path = get_method("vjepa").draw_step(cfg, clips, tmp_path)
    assert path.name == "masks.png" and path.stat().st_size > 5000


def test_evaluation_averages_clips_and_probes_the_label_asked_for(videos: Path, tmp_path: Path) -> None:
    summary = train(tiny_video_config(videos, tmp_path / "run", max_steps=1), progress=False)
    assert summary.last_checkpoint is not None
    settings = EvalConfig(probes=("knn",), knn_k=3, progress=False, label="direction", clips=3)
    report = evaluate(summary.last_checkpoint, config=settings)
    assert report.classes == [str(d) for d in range(8)] and report.settings["clips"] == 3
    cfg = replace(tiny_video_config(videos, tmp_path / "run"), data=replace(tiny_video_config(videos, tmp_path).data,
                                                                            label="direction"))
    from jepa_torch.evaluation.features import EncoderFeatures, run_splits

    train_split, _, _ = run_splits(cfg, clips=3)
    clips, _ = train_split.dataset[0]
    assert clips.shape == (3, 3, 4, 16, 16)  # three evenly spaced clips of one video
    _, model = load_model(summary.last_checkpoint)
    features = EncoderFeatures("x", model.target_encoder, 1, True, torch.device("cpu"))
    averaged = features(clips[None])["tokens"].float()
    each = torch.stack([features(c[None])["tokens"].float() for c in clips]).mean(dim=0)
    torch.testing.assert_close(averaged, each, rtol=0, atol=2e-3)  # float16 storage
    with pytest.raises(Exception, match="data.label='speed'"):
        evaluate(summary.last_checkpoint, config=replace(settings, label="speed"))
    with pytest.raises(EvaluationError, match="--frame-encoder .*: not an image encoder"):
        evaluate(summary.last_checkpoint, config=settings, frame_encoders=[summary.last_checkpoint])


def test_the_video_demo_trains_the_frame_wise_baseline_and_probes_every_label(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from jepa_torch.demo import CONFIGS, run_demo

    fast = EvalConfig(probes=("linear", "knn"), linear=HeadGrid(1, 16, (1e-2,), (1e-4,)), knn_k=3)
    more = write_moving_digits(tmp_path / "set", replace(SMALL, videos=100))  # a batch of 64 frames: 80 to train on
    run_demo(CONFIGS["vjepa"], tmp_path / "demo", seed=0, progress=False, evaluation=fast, overrides=(
        "data.dataset=video_folder", f"data.path={more}", "data.img_size=16", "data.frames_per_clip=4",
        "data.batch_size=8", "model.patch_size=4", "model.depth=1", "model.pred_depth=1", "mask.min_keep=2",
        "run.max_steps=2", "run.monitor_every=0", "run.tensorboard=false"))
    printed = capsys.readouterr().out
    assert "labels: digit" in printed and "labels: direction" in printed
    out = tmp_path / "demo"
    report = json.loads((out / "eval.json").read_text())
    assert set(report) == {"digit", "direction"}
    rows = list(report["direction"]["rows"])
    assert rows == ["V-JEPA target encoder", "same ViT, random init", "frame-wise LeJEPA encoder", "raw pixels"]
    assert len(report["direction"]["classes"]) == 8 and len(report["digit"]["classes"]) == 10
    assert (out / "frames" / "checkpoints").is_dir() and (out / "masks.png").stat().st_size > 5000
