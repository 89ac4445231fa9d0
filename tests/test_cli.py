"""The jepa-torch command: one-line errors with exit status 2, training and export end to end."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from jepa_torch.io.checkpoint import load_official
from jepa_torch.cli import main
from jepa_torch.config.yaml_io import save_config
from jepa_torch.io.export import load_encoder

from .test_train import tiny_config


@pytest.mark.parametrize(("argv", "message"), [
    (["train", "--config", "missing.yaml"], "missing.yaml"),
    (["train", "--set", "optimization.lr=abc"], "optimization.lr"),
    (["train", "--set", "optimisation.lr=1"], "did you mean optimization"),
    (["train", "--set", "model.preset=vit_enormous"], "model.preset"),
    (["train", "--set", "mask.min_keep=1000"], "mask.min_keep"),
    (["export", "--checkpoint", "nope.pt", "--out", "x.safetensors"], "nope.pt"),
])
def test_user_errors_are_one_line_and_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str],
                                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and "Traceback" not in err


def test_train_then_export_both_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tiny_config(tmp_path / "run", max_steps=4)
    save_config(cfg, tmp_path / "run.yaml")
    assert main(["train", "--config", str(tmp_path / "run.yaml"), "--no-progress"]) == 0
    ckpt = tmp_path / "run" / "checkpoints" / "step_00000004.pt"
    assert main(["export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "enc.safetensors")]) == 0
    assert main(["export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "off.pth.tar"),
                 "--format", "official"]) == 0
    exported = load_encoder(tmp_path / "enc.safetensors")
    _, _, target = load_official(tmp_path / "off.pth.tar")
    direct = load_encoder(ckpt, which="target")
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(exported(x), direct(x), rtol=0, atol=0)
        torch.testing.assert_close(target(x), direct(x), rtol=0, atol=0)
    out = capsys.readouterr().out
    assert "wrote the target encoder" in out
