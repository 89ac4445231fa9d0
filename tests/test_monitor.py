"""The collapse monitor: centred statistics, a warning only when low readings persist, recovery, and real runs."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from jepa_torch.training import loop as train_module
from jepa_torch.config import DataConfig, ModelConfig, TrainConfig
from jepa_torch.data import build_dataset
from jepa_torch.evaluation.monitor import FixedBatchMonitor, collapse_stats, feature_std, rankme
from jepa_torch.training.loop import train

from .test_train import tiny_config


class _Pixels(nn.Module):
    """Informative tokens: the image's first channel as one token."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :1].flatten(2)  # (B, 1, H*W)


class _SharedDirection(nn.Module):
    """Informative tokens riding on one large vector that every input shares (mean cosine near 1), as the
    pooled features of a young ViT: uncentred, they look collapsed; centred, they are not."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pixels = x[:, :1].flatten(2)  # (B, 1, 64)
        return 50.0 + 0.05 * pixels


class _Constant(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0], 4, 64), 0.3)


@pytest.fixture(scope="module")
def monitor_data() -> tuple[Any, Any]:
    cfg = TrainConfig(model=ModelConfig(patch_size=1), data=DataConfig(img_size=8))
    return build_dataset(cfg, "train", augment=False), build_dataset(cfg, "holdout", augment=False)


def _monitor(data: tuple[Any, Any], **options: Any) -> FixedBatchMonitor:
    return FixedBatchMonitor(data[0], torch.device("cpu"), size=256, holdout=data[1], probe_size=128, **options)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_statistics_are_of_centred_features() -> None:
    torch.manual_seed(0)
    spread = torch.randn(256, 64, dtype=torch.float64)
    shifted = spread + 1e3 * torch.randn(1, 64, dtype=torch.float64)  # one direction shared by every row
    assert rankme(shifted) == pytest.approx(rankme(spread), rel=1e-6)
    assert feature_std(shifted) == pytest.approx(feature_std(spread), rel=1e-6)
    assert feature_std(spread) == pytest.approx(1 / 64**0.5, rel=0.05)  # well spread: 1 / sqrt(D)
    same = torch.full((256, 64), 0.1, dtype=torch.float64) + torch.randn(1, 64, dtype=torch.float64)
    assert (rankme(same), feature_std(same)) == (1.0, 0.0)  # equal rows, rounding noise and all
    assert collapse_stats(same).low == ["RankMe 1 < 2", "feature std 0 < 0.025 (0.2 / sqrt(64))"]


def test_a_shared_direction_is_no_false_alarm(monitor_data: tuple[Any, Any], caplog: pytest.LogCaptureFixture) -> None:
    monitor = _monitor(monitor_data, patience=1)
    with caplog.at_level(logging.WARNING, logger="jepa_torch.evaluation.monitor"):
        for step in range(1, 5):
            row = monitor.measure(_SharedDirection(), step)
    assert row["rankme"] > 10 and row["probe_linear"] > 0.8
    assert _warnings(caplog) == []


def test_a_collapsed_encoder_warns_once_after_patience_naming_the_criterion(
        monitor_data: tuple[Any, Any], caplog: pytest.LogCaptureFixture) -> None:
    monitor = _monitor(monitor_data, patience=3, warn_after=2)
    with caplog.at_level(logging.WARNING, logger="jepa_torch.evaluation.monitor"):
        said = []
        for step in range(1, 9):
            monitor.measure(_Constant(), step)
            said.append(len(_warnings(caplog)))
    assert said == [0, 0, 0, 0, 1, 1, 1, 1]  # steps 3, 4, 5 are the first three readings after warn_after
    (warning,) = _warnings(caplog)
    assert warning.startswith("step 5: representations are collapsing: RankMe 1 < 2 and feature std 0 < 0.025 "
                              "(0.2 / sqrt(64)) over the last 3 monitor readings; online linear probe ")


def test_a_passing_low_reading_does_not_warn_and_a_recovery_is_said(
        monitor_data: tuple[Any, Any], caplog: pytest.LogCaptureFixture) -> None:
    monitor = _monitor(monitor_data, patience=2)
    with caplog.at_level(logging.WARNING, logger="jepa_torch.evaluation.monitor"):
        for step, encoder in enumerate([_Constant(), _Pixels(), _Constant(), _Pixels()], start=1):
            monitor.measure(encoder, step)
        assert _warnings(caplog) == []  # never two low readings in a row
        for step, encoder in enumerate([_Constant(), _Constant(), _Constant(), _Pixels()], start=5):
            monitor.measure(encoder, step)
    warnings = _warnings(caplog)
    assert len(warnings) == 2 and warnings[0].startswith("step 6: representations are collapsing")
    assert warnings[1].startswith("step 8: representations recovered: RankMe ")
    assert "online linear probe" in warnings[1]


def test_a_quiet_monitor_measures_but_does_not_speak(monitor_data: tuple[Any, Any],
                                                     caplog: pytest.LogCaptureFixture) -> None:
    monitor = _monitor(monitor_data, patience=1, speak=False)
    with caplog.at_level(logging.WARNING, logger="jepa_torch.evaluation.monitor"):
        monitor.measure(_Constant(), 1)
    assert monitor.warned and _warnings(caplog) == []


def test_readings_do_not_depend_on_the_chunk_and_a_cpu_encodes_32_at_once(monitor_data: tuple[Any, Any]) -> None:
    class Counted(_Pixels):
        sizes: list[int] = []

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.sizes.append(x.shape[0])
            return super().forward(x)

    readings = {}
    for chunk in (None, 7, 256):
        encoder = Counted()
        encoder.sizes = []
        readings[chunk] = _monitor(monitor_data, chunk=chunk).measure(encoder, 1)
        expected = chunk or 32
        assert max(encoder.sizes) == expected and sum(encoder.sizes) == 256 + 128, (chunk, encoder.sizes)
    for chunk, got in readings.items():
        assert got.keys() == readings[None].keys()
        assert all(abs(got[k] - v) < 1e-9 for k, v in readings[None].items()), chunk
    with pytest.raises(ValueError, match="chunk=0 must be >= 1"):
        _monitor(monitor_data, chunk=0)


def _frozen_constant_target(real: Any) -> Any:
    def build(*args: Any, **kwargs: Any) -> Any:
        model, arch = real(*args, **kwargs)
        with torch.no_grad():  # the target's last LayerNorm outputs its bias, 0, for every input
            model.target_encoder.norm.weight.zero_()
            model.target_encoder.norm.bias.zero_()
        return model, arch
    return build


@pytest.mark.parametrize("collapsed", [True, False])
def test_a_collapsed_run_warns_and_a_healthy_one_does_not(
        collapsed: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """A run whose EMA target is a constant function (momentum 1 keeps it so) against the same run untouched."""
    if collapsed:
        monkeypatch.setattr(train_module, "build_model", _frozen_constant_target(train_module.build_model))
    cfg = tiny_config(tmp_path / "run", max_steps=6)
    cfg = replace(cfg, optimization=replace(cfg.optimization, ema=(1.0, 1.0), warmup_epochs=0.02),
                  data=replace(cfg.data, holdout_fraction=0.1),  # a smaller held-out split: a quicker online probe
                  run=replace(cfg.run, monitor_every=1))  # warm-up: 2 steps (101 a epoch)
    with caplog.at_level(logging.WARNING, logger="jepa_torch"):
        train(cfg, progress=False)
    warnings = [w for w in _warnings(caplog) if "collapsing" in w]
    if collapsed:
        assert len(warnings) == 1 and warnings[0].startswith("step 5: representations are collapsing: RankMe 1 < ")
    else:
        assert warnings == []
