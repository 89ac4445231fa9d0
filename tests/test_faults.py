"""Faults a user meets, injected on purpose: each ends in one clear line or a documented handling.

kill -9 mid-run, truncated / corrupt / foreign / non-checkpoint files, a bad image folder,
NaN in the loss or the weights, and a disk that fills up while a checkpoint is written.
docs/benchmarks.md lists every fault tried and what happened.
"""

from __future__ import annotations

import csv
import logging
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from jepa_torch.methods import ijepa as ijepa_module
from jepa_torch.io.checkpoint import read_official
from jepa_torch.cli import main
from jepa_torch.config import TrainConfig
from jepa_torch.config.yaml_io import save_config
from jepa_torch.methods import get_method
from jepa_torch.training.resume import list_checkpoints, load_training_checkpoint
from jepa_torch.models import JEPA
from jepa_torch.methods.step import StepResult
from jepa_torch.training.loop import build_model, train

from .test_train import tiny_config

ROOT = Path(__file__).resolve().parent.parent


def _config(out: Path, **run: Any) -> TrainConfig:
    cfg = tiny_config(out)
    return replace(cfg, run=replace(cfg.run, **run))


def _logged(out: Path) -> list[tuple[int, float]]:
    with (out / "log.csv").open() as f:
        return [(int(r["step"]), float(r["loss"])) for r in csv.DictReader(f)]


def _one_line_error(capsys: pytest.CaptureFixture[str], *names: str) -> str:
    """The one line of an error; the notes a run prints before it (its header line) are not part of it."""
    lines = capsys.readouterr().err.strip().splitlines()
    err = "\n".join(line for line in lines if not _NOTE.match(line))
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    for name in names:
        assert name in err, err
    return err


_NOTE = re.compile(r"^jepa-torch: (\w+ on .*; writing to .*|note: .*)$")  # a run's header and notes


def _cli(args: list[str]) -> subprocess.Popen[str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "jepa_torch.cli", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _last_logged_step(out: Path) -> int:
    try:
        rows = (out / "log.csv").read_text().splitlines()[1:]
    except FileNotFoundError:
        return 0
    complete = [r for r in rows if r.count(",") >= 8]  # a row being written is skipped
    return int(complete[-1].split(",", 1)[0]) if complete else 0


# --- kill -9 -------------------------------------------------------------------------------------------------------

KILL_STEPS = 40  # room for ten kills that each let the run go on a step or two


def _video_config(out: Path, root: Path, **run: Any) -> TrainConfig:
    from .test_vjepa import tiny_video_config

    cfg = tiny_video_config(root, out, **run)
    return replace(cfg, optimization=replace(cfg.optimization, epochs=12))  # 48 steps: room for KILL_STEPS


@pytest.mark.slow
@pytest.mark.parametrize("data", ["digits", "videos"])
def test_kill_9_at_random_moments_never_leaves_an_unreadable_checkpoint_and_resume_repeats_the_losses(
        tmp_path: Path, data: str) -> None:
    """Ten SIGKILLs, each a seeded 0-60 ms after a new log row (mid-step, mid-checkpoint-write, mid-prune); for
    I-JEPA on digits and V-JEPA on (small) moving digits, decoded from mp4 files."""
    if data == "videos":
        from jepa_torch.data.moving_digits import write_moving_digits

        from .test_video_data import SMALL

        root = write_moving_digits(tmp_path / "set", SMALL)
        ref_cfg = _video_config(tmp_path / "whole", root, max_steps=KILL_STEPS, checkpoint_every=1)
        cut_cfg = _video_config(tmp_path / "cut", root, max_steps=KILL_STEPS, checkpoint_every=1)
    else:
        ref_cfg = _config(tmp_path / "whole", max_steps=KILL_STEPS, checkpoint_every=1)
        cut_cfg = _config(tmp_path / "cut", max_steps=KILL_STEPS, checkpoint_every=1)
    save_config(ref_cfg, tmp_path / "whole.yaml")
    save_config(cut_cfg, tmp_path / "cut.yaml")
    reference = _cli(["train", "--config", str(tmp_path / "whole.yaml"), "--no-progress"])  # runs alongside
    cut = tmp_path / "cut"
    rng = random.Random(20261122)
    for trial in range(10):
        target = _last_logged_step(cut) + 1  # a row this process writes (older rows are rewritten first)
        assert target < KILL_STEPS - 2, f"trial {trial}: the run got too close to its end to be killed"
        proc = _cli(["train", "--config", str(tmp_path / "cut.yaml"), "--no-progress"])
        deadline = time.monotonic() + 120
        while _last_logged_step(cut) < target:
            assert proc.poll() is None, f"trial {trial}: the run ended early: {proc.communicate()[1][-2000:]}"
            assert time.monotonic() < deadline, f"trial {trial}: no log row {target} after 120 s"
            time.sleep(0.002)
        time.sleep(rng.uniform(0.0, 0.06))
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        assert proc.returncode == -signal.SIGKILL
        for step, path in list_checkpoints(cut / "checkpoints"):
            ckpt = read_official(path)  # never unreadable
            assert int(ckpt["step"]) == step, f"trial {trial}: {path.name} holds step {ckpt['step']}"
    resumed = _cli(["train", "--config", str(tmp_path / "cut.yaml"), "--no-progress"])
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err[-3000:]
    _, err = reference.communicate(timeout=300)
    assert reference.returncode == 0, err[-3000:]
    whole = _logged(tmp_path / "whole")
    assert [s for s, _ in whole] == list(range(1, KILL_STEPS + 1))
    assert _logged(cut) == whole  # exact float equality (repr in the CSV), no missing or duplicated row
    # the temporary files of interrupted writes are removed when the next run starts
    assert sorted(p.name for p in (cut / "checkpoints").iterdir()) == [
        f"step_{KILL_STEPS - 1:08d}.pt", f"step_{KILL_STEPS:08d}.pt"]


# --- bad checkpoint files ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def good_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[int, float]]]:
    """A 3-step run with a checkpoint after every step (all kept) and its losses."""
    out = tmp_path_factory.mktemp("good") / "run"
    summary = train(_config(out, max_steps=3, checkpoint_every=1, keep_checkpoints=3), progress=False)
    return out, summary.losses


def _bad_file(kind: str, folder: Path, good: Path) -> Path:
    path = folder / f"{kind}.pt"
    data = good.read_bytes()
    if kind == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif kind == "corrupt":
        path.write_bytes(random.Random(0).randbytes(len(data) // 8))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("step: 3\nthis is a note, not a checkpoint\n")
    else:
        raise AssertionError(kind)
    return path


BAD_KINDS = ["truncated", "corrupt", "empty", "text"]


@pytest.mark.parametrize("command", ["train", "export", "eval"])
@pytest.mark.parametrize("kind", BAD_KINDS)
def test_an_unreadable_checkpoint_is_one_line_naming_the_file(
        kind: str, command: str, good_run: tuple[Path, list[tuple[int, float]]], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    bad = _bad_file(kind, tmp_path, good_run[0] / "checkpoints" / "step_00000003.pt")
    if command == "train":
        save_config(_config(tmp_path / "run", max_steps=4), tmp_path / "run.yaml")
        argv = ["train", "--config", str(tmp_path / "run.yaml"), "--no-progress", "--resume", str(bad)]
    elif command == "export":
        argv = ["export", "--checkpoint", str(bad), "--out", str(tmp_path / "enc.safetensors")]
    else:
        argv = ["eval", "--checkpoint", str(bad), "--no-baselines"]
    assert main(argv) == 2
    _one_line_error(capsys, str(bad))
    assert not (tmp_path / "enc.safetensors").exists()
    assert not list_checkpoints(tmp_path / "run" / "checkpoints")  # nothing trained from it


@pytest.mark.parametrize("change", ["depth", "preset"])
def test_a_checkpoint_of_another_architecture_is_refused_naming_the_key(
        change: str, good_run: tuple[Path, list[tuple[int, float]]], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path / "run", max_steps=4)
    model = replace(cfg.model, depth=3) if change == "depth" else replace(cfg.model, preset="vit_small")
    save_config(replace(cfg, model=model), tmp_path / "run.yaml")
    ckpt = good_run[0] / "checkpoints" / "step_00000003.pt"
    assert main(["train", "--config", str(tmp_path / "run.yaml"), "--no-progress", "--resume", str(ckpt)]) == 2
    err = _one_line_error(capsys, ckpt.name)
    differs = ("model.encoder.depth: 2 in the file, 3 here" if change == "depth"
               else "model.encoder.embed_dim: 192 in the file, 384 here")
    assert f"was trained with another model ({differs}); resume with the config that made it" in err


def test_resume_auto_skips_an_unreadable_newest_checkpoint_with_a_warning(
        good_run: tuple[Path, list[tuple[int, float]]], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Documented handling: the newest readable checkpoint is used, one warning line names the bad file."""
    out = tmp_path / "run"
    shutil.copytree(good_run[0], out)
    newest = out / "checkpoints" / "step_00000003.pt"
    newest.write_bytes(newest.read_bytes()[:1000])  # as a crash of a copy or a disk would leave it
    stale = out / "checkpoints" / ".step_00000004.pt.k9zepwe_.tmp"  # as a kill during a write leaves it
    stale.write_bytes(b"PK\x03\x04 half")
    notes = out / "checkpoints" / "notes.tmp"
    notes.write_text("not ours")
    with caplog.at_level(logging.WARNING, logger="jepa_torch.training.loop"):
        summary = train(_config(out, max_steps=3, checkpoint_every=1, keep_checkpoints=3), progress=False)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(newest) in warnings[0] and "\n" not in warnings[0]
    assert summary.resumed_from == 2
    assert summary.losses == good_run[1][2:]  # step 3 recomputed exactly
    assert int(read_official(newest)["step"]) == 3  # the bad file was replaced by a good one
    assert not stale.exists() and notes.exists()  # only the trainer's own temporary files are removed


def test_resume_auto_with_no_readable_checkpoint_stops(good_run: tuple[Path, list[tuple[int, float]]],
                                                       tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Starting over would bury the run under its own pruning: the user decides."""
    out = tmp_path / "run"
    shutil.copytree(good_run[0], out)
    for _, path in list_checkpoints(out / "checkpoints"):
        path.write_text("gone")
    save_config(_config(out, max_steps=4), tmp_path / "run.yaml")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(logging.getLogger("jepa_torch.training.loop"), "disabled", True)  # the three skip warnings
        assert main(["train", "--config", str(tmp_path / "run.yaml"), "--no-progress"]) == 2
    _one_line_error(capsys, "no checkpoint", "step_00000003.pt", "run.resume")


# --- image folders -------------------------------------------------------------------------------------------------


def _image_folder(root: Path, extra: dict[str, bytes | Image.Image]) -> int:
    """Two classes of three 16 px PNGs, plus ``extra`` files in class ``a``; returns the image count."""
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(root / cls / f"{i}.png")
    count = 6
    for name, content in extra.items():
        if isinstance(content, Image.Image):
            content.save(root / "a" / name)
        else:
            (root / "a" / name).write_bytes(content)
        count += name.endswith(".png")
    return count


def _folder_config(tmp_path: Path, root: Path, batch: int) -> Path:
    cfg = _config(tmp_path / "run", checkpoint_every=100)
    data = replace(cfg.data, dataset="image_folder", path=str(root), img_size=16, batch_size=batch,
                   holdout_fraction=0.0)  # one batch of every image: each file is read in the first step
    cfg = replace(cfg, data=data, optimization=replace(cfg.optimization, epochs=1))
    save_config(cfg, tmp_path / "run.yaml")
    return tmp_path / "run.yaml"


def test_non_image_files_are_ignored_and_a_huge_image_is_resized(tmp_path: Path) -> None:
    huge = Image.new("RGB", (4000, 4000), (200, 30, 90))
    count = _image_folder(tmp_path / "data", {"notes.txt": b"not an image", "huge.png": huge})
    assert count == 7
    assert main(["train", "--config", str(_folder_config(tmp_path, tmp_path / "data", 7)), "--no-progress"]) == 0
    assert [s for s, _ in _logged(tmp_path / "run")] == [1]


@pytest.mark.parametrize(("name", "content"), [
    ("corrupt.png", random.Random(1).randbytes(300)),
    ("empty.png", b""),
    ("truncated.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00"),
])
def test_an_unreadable_image_is_one_line_naming_it(name: str, content: bytes, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    count = _image_folder(tmp_path / "data", {name: content})
    assert main(["train", "--config", str(_folder_config(tmp_path, tmp_path / "data", count)), "--no-progress"]) == 2
    _one_line_error(capsys, name, "remove or replace")
    assert not list_checkpoints(tmp_path / "run" / "checkpoints")


@pytest.mark.parametrize("layout", ["empty folder", "empty class folders", "missing folder"])
def test_an_empty_dataset_is_one_line(layout: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "data"
    if layout != "missing folder":
        root.mkdir()
    if layout == "empty class folders":
        (root / "a").mkdir()
        (root / "a" / "notes.txt").write_text("no images here")
    assert main(["train", "--config", str(_folder_config(tmp_path, root, 4)), "--no-progress"]) == 2
    _one_line_error(capsys, "data.path", str(root))
    assert not (tmp_path / "run").exists()  # nothing is created before the data is checked


# --- NaN -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["loss", "weights"])
def test_nan_stops_with_exit_3_and_the_last_checkpoint_is_good(
        where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    real_step = ijepa_module.train_step
    calls = {"n": 0}

    def poisoned(model: JEPA, *args: Any, **kwargs: Any) -> StepResult:
        calls["n"] += 1
        result = real_step(model, *args, **kwargs)
        if calls["n"] == 3:
            if where == "loss":
                return replace(result, loss=torch.tensor(float("nan")))
            with torch.no_grad():
                next(model.predictor.parameters()).view(-1)[0] = float("nan")
        return result

    monkeypatch.setattr(ijepa_module, "train_step", poisoned)
    save_config(_config(tmp_path / "run", max_steps=6, checkpoint_every=1, keep_checkpoints=5), tmp_path / "run.yaml")
    assert main(["train", "--config", str(tmp_path / "run.yaml"), "--no-progress"]) == 3
    err = _one_line_error(capsys, "step 3", "step_00000002.pt")
    assert ("loss is nan" in err) if where == "loss" else ("weights are not finite" in err)
    assert [s for s, _ in list_checkpoints(tmp_path / "run" / "checkpoints")] == [1, 2]
    model, _ = build_model(_config(tmp_path / "x"), ("image", (3, 16, 16)))
    state = load_training_checkpoint(tmp_path / "run" / "checkpoints" / "step_00000002.pt",
                                     networks=get_method("ijepa").networks(model),
                                     trained=("encoder", "predictor"), optimizer=None)
    assert state.step == 2
    assert all(bool(torch.isfinite(p).all()) for p in model.parameters())


# --- a full disk ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fails", ["torch.save", "os.replace"])
def test_a_full_disk_during_a_checkpoint_write_is_one_line_and_loses_nothing(
        fails: str, good_run: tuple[Path, list[tuple[int, float]]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The 3rd checkpoint write fails midway with ENOSPC; then the disk is freed and the run resumes."""
    calls = {"n": 0}
    real_save, real_replace = torch.save, os.replace

    def full_save(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            f.write(b"PK\x03\x04 half a checkpoint")  # a partial write, then the disk is full
            raise OSError(28, "No space left on device")
        real_save(obj, f, *args, **kwargs)

    def full_replace(src: Any, dst: Any) -> None:
        calls["n"] += Path(dst).name.startswith("step_")  # config.yaml is written with os.replace too
        if calls["n"] == 3:
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    out = tmp_path / "run"
    save_config(_config(out, max_steps=3, checkpoint_every=1, keep_checkpoints=3), tmp_path / "run.yaml")
    if fails == "torch.save":
        monkeypatch.setattr(torch, "save", full_save)
    else:
        monkeypatch.setattr(os, "replace", full_replace)
    assert main(["train", "--config", str(tmp_path / "run.yaml"), "--no-progress"]) == 2
    _one_line_error(capsys, str(out / "checkpoints" / "step_00000003.pt"), "no space left on the device",
                    "free disk space")
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_00000001.pt", "step_00000002.pt"]
    assert int(read_official(out / "checkpoints" / "step_00000002.pt")["step"]) == 2
    monkeypatch.undo()  # space freed: the same command finishes the run, as if nothing had happened
    assert main(["train", "--config", str(tmp_path / "run.yaml"), "--no-progress"]) == 0
    assert _logged(out) == good_run[1]
