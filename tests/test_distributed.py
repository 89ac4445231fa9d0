"""torchrun with two CPU processes (gloo) computes what one process computes at the same global batch,
under DDP and under FSDP2 (``run.parallel: fsdp``), and their checkpoints are one process's files."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from jepa_torch.io.checkpoint import load_official, read_official
from jepa_torch.config import TrainConfig
from jepa_torch.config.yaml_io import save_config
from jepa_torch.models import JEPAConfig, build
from jepa_torch.training.optim import make_optimizer
from jepa_torch.training.resume import load_training_checkpoint

from .test_train import tiny_config

ROOT = Path(__file__).resolve().parent.parent


def _losses(out: Path) -> list[float]:
    with (out / "log.csv").open() as f:
        return [float(r["loss"]) for r in csv.DictReader(f)]


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def _train(config: Path, processes: int) -> None:
    launch = [] if processes == 1 else ["-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
                                        "--nproc_per_node", str(processes)]
    done = _run([*launch, "-m", "jepa_torch.cli", "train", "--config", str(config), "--no-progress"])
    assert done.returncode == 0, done.stderr[-3000:]


def _split(cfg: TrainConfig, processes: int, accumulate: int, parallel: str) -> TrainConfig:
    """``cfg`` on ``processes`` processes with the same global batch."""
    batch = cfg.data.batch_size // (processes * accumulate)
    return replace(cfg, data=replace(cfg.data, batch_size=batch),
                   optimization=replace(cfg.optimization, accumulate=accumulate),
                   run=replace(cfg.run, parallel=parallel))  # type: ignore[arg-type]


def _assert_close_states(a: object, b: object, where: str, tol: float = 1e-5) -> None:
    """Every tensor of two nested checkpoints entries equal within ``tol`` (relative to 1)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.shape == b.shape, where
        diff = float((a.double() - b.double()).abs().max()) if a.numel() else 0.0
        assert diff <= tol, f"{where}: max difference {diff}"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), where
        for k in a:
            _assert_close_states(a[k], b[k], f"{where}.{k}", tol)
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_close_states(x, y, f"{where}[{i}]", tol)


@pytest.mark.slow
@pytest.mark.parametrize(("parallel", "accumulate", "recompute", "data"),
                         [("ddp", 1, False, "digits"), ("ddp", 2, False, "digits"), ("fsdp", 1, False, "digits"),
                          ("fsdp", 2, False, "digits"), ("fsdp", 1, True, "digits"), ("ddp", 2, False, "videos"),
                          ("fsdp", 1, True, "videos")])
def test_two_gloo_processes_match_one_process(tmp_path: Path, parallel: str, accumulate: int, recompute: bool,
                                              data: str) -> None:
    """Losses, then the last checkpoint (the three networks, AdamW's state) within 1e-5 of one process's.

    With ``accumulate=2`` each process also splits its share into two micro-batches; with ``recompute``
    the two processes checkpoint activations per block (each block gathered again for its backward,
    under FSDP), the one process does not. Under FSDP the
    networks, their AdamW state and the EMA target are sharded (the EMA runs shard by shard), the collapse
    monitor runs on both processes (a sharded forward is a collective), and the checkpoint is gathered whole.
    ``videos``: V-JEPA on small moving digits, its 3-D masks drawn for the global batch and sliced.
    """
    if data == "videos":
        from jepa_torch.data.moving_digits import write_moving_digits

        from .test_video_data import SMALL
        from .test_vjepa import tiny_video_config

        single = tiny_video_config(write_moving_digits(tmp_path / "set", SMALL), tmp_path / "single", max_steps=6)
    else:
        single = tiny_config(tmp_path / "single", max_steps=6)
    single = replace(single, run=replace(single.run, monitor_every=3))
    double = _split(replace(single, run=replace(single.run, out_dir=str(tmp_path / "double"),
                                                activation_checkpointing=recompute)), 2, accumulate, parallel)
    save_config(single, tmp_path / "single.yaml")
    save_config(double, tmp_path / "double.yaml")
    _train(tmp_path / "single.yaml", 1)
    _train(tmp_path / "double.yaml", 2)

    a, b = _losses(tmp_path / "single"), _losses(tmp_path / "double")
    assert len(a) == len(b) == 6
    for step, (x, y) in enumerate(zip(a, b, strict=True), start=1):
        assert y == pytest.approx(x, rel=1e-5, abs=1e-7), f"step {step}: one process {x}, two processes {y}"
    assert not list((tmp_path / "double" / "checkpoints").glob("*.tmp"))

    one, two = (read_official(tmp_path / run / "checkpoints" / "step_00000006.pt") for run in ("single", "double"))
    for entry in ("encoder", "predictor", "target_encoder", "opt"):
        _assert_close_states(one[entry], two[entry], entry)
    assert (two["epoch"], two["world_size"], two["global_batch"]) == (one["epoch"], 2, one["global_batch"])


@pytest.mark.slow
def test_fsdp_checkpoints_are_one_process_files_both_ways(tmp_path: Path) -> None:
    """One process trains 10 steps. Two FSDP processes take over from its step-4 file and run to step 8;
    one process takes over from the FSDP step-8 file and runs to 10. Every loss and the last weights
    equal the uninterrupted run's within 1e-5, and the FSDP file reads in one process strictly."""
    single = tiny_config(tmp_path / "single", max_steps=10)  # checkpoints at 4, 8 and 10
    single = replace(single, run=replace(single.run, keep_checkpoints=3))
    save_config(single, tmp_path / "single.yaml")
    _train(tmp_path / "single.yaml", 1)
    whole = _losses(tmp_path / "single")
    first = tmp_path / "single" / "checkpoints" / "step_00000004.pt"

    sharded = _split(replace(single, run=replace(single.run, out_dir=str(tmp_path / "sharded"), resume=str(first),
                                                 max_steps=8)), 2, 1, "fsdp")
    save_config(sharded, tmp_path / "sharded.yaml")
    _train(tmp_path / "sharded.yaml", 2)
    fsdp_file = tmp_path / "sharded" / "checkpoints" / "step_00000008.pt"

    back = replace(single, run=replace(single.run, out_dir=str(tmp_path / "back"), resume=str(fsdp_file)))
    save_config(back, tmp_path / "back.yaml")
    _train(tmp_path / "back.yaml", 1)

    resumed = _losses(tmp_path / "sharded") + _losses(tmp_path / "back")
    assert len(resumed) == 6
    for step, (x, y) in enumerate(zip(whole[4:], resumed, strict=True), start=5):
        assert y == pytest.approx(x, rel=1e-5, abs=1e-7), f"step {step}: uninterrupted {x}, across FSDP {y}"
    for at in ("step_00000008.pt", "step_00000010.pt"):
        mine = read_official(tmp_path / "single" / "checkpoints" / at)
        other = read_official((fsdp_file if at == "step_00000008.pt" else tmp_path / "back" / "checkpoints" / at))
        for entry in ("encoder", "predictor", "target_encoder", "opt"):
            _assert_close_states(mine[entry], other[entry], f"{at}: {entry}")

    # the gathered file in one process: our strict training resume, and the official-layout loader
    model = build(JEPAConfig.from_dict(read_official(fsdp_file)["model"]))
    optimizer = make_optimizer([model.encoder, model.predictor])
    state = load_training_checkpoint(fsdp_file, networks={"encoder": model.encoder, "predictor": model.predictor,
                                                          "target_encoder": model.target_encoder},
                                     trained=("encoder", "predictor"), optimizer=optimizer)
    assert (state.step, state.world_size) == (8, 2)
    trained = [p for p in [*model.encoder.parameters(), *model.predictor.parameters()] if p.requires_grad]
    assert len(optimizer.state_dict()["state"]) == len(trained)  # every trained parameter has its AdamW state
    _, _, target = load_official(fsdp_file, num_heads=3, predictor_num_heads=3)
    for (name, p), q in zip(model.target_encoder.state_dict().items(), target.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
