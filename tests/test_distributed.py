"""torchrun with two CPU processes (gloo) computes what one process computes at the same global batch."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from jepa_torch.config_io import save_config

from .test_train import tiny_config

ROOT = Path(__file__).resolve().parent.parent


def _losses(out: Path) -> list[float]:
    with (out / "log.csv").open() as f:
        return [float(r["loss"]) for r in csv.DictReader(f)]


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
@pytest.mark.parametrize("accumulate", [1, 2])
def test_two_gloo_processes_match_one_process(tmp_path: Path, accumulate: int) -> None:
    """With ``accumulate=2`` each process also splits its share into two micro-batches (DDP syncs on the last)."""
    single = tiny_config(tmp_path / "single", max_steps=6)
    double = tiny_config(tmp_path / "double", max_steps=6)
    double = replace(double, data=replace(double.data, batch_size=single.data.batch_size // (2 * accumulate)),
                     optimization=replace(double.optimization, accumulate=accumulate))
    save_config(single, tmp_path / "single.yaml")
    save_config(double, tmp_path / "double.yaml")

    one = _run(["-m", "jepa_torch.cli", "train", "--config", str(tmp_path / "single.yaml"), "--no-progress"])
    assert one.returncode == 0, one.stderr[-3000:]
    two = _run(["-m", "torch.distributed.run", "--standalone", "--nnodes", "1", "--nproc_per_node", "2",
                "-m", "jepa_torch.cli", "train", "--config", str(tmp_path / "double.yaml"), "--no-progress"])
    assert two.returncode == 0, two.stderr[-3000:]

    a, b = _losses(tmp_path / "single"), _losses(tmp_path / "double")
    assert len(a) == len(b) == 6
    for step, (x, y) in enumerate(zip(a, b, strict=True), start=1):
        assert y == pytest.approx(x, rel=1e-5, abs=1e-7), f"step {step}: one process {x}, two processes {y}"
    assert not (tmp_path / "double" / "checkpoints" / "step_00000006.pt.tmp").exists()
