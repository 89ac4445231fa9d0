"""How runs end: the process group torn down on every way out, one summary per torchrun job, errors that name
the cause that occurred, and nothing left on disk by a run refused at its start.

``JEPA_LAUNCHES=N`` sets the number of consecutive two-process launches of the launch test (default 4: two
DDP, two FSDP); the long version (``JEPA_LAUNCHES=30``) is the one quoted in docs/benchmarks.md.
"""

from __future__ import annotations

import errno
import logging
import multiprocessing
import os
import re
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist

from jepa_torch.cli import main
from jepa_torch.config.schema import ConfigError
from jepa_torch.config.yaml_io import save_config
from jepa_torch.io.checkpoint import save_official
from jepa_torch.io.files import WriteError, atomic_write, describe_os_error
from jepa_torch.models import EncoderConfig, JEPAConfig, PredictorConfig, build
from jepa_torch.training import loop
from jepa_torch.training.loop import TrainingDiverged

from .test_train import tiny_config

ROOT = Path(__file__).resolve().parent.parent


def _spin() -> None:
    while True:
        pass


def _launch(config: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
                           "--nproc_per_node", "2", "-m", "jepa_torch.cli", "train", "--config", str(config),
                           "--no-progress"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_consecutive_two_process_launches_all_exit_zero_with_one_summary(tmp_path: Path) -> None:
    """N launches under DDP and FSDP in turn, one core kept busy (the abort at exit showed under load): every
    one exits 0, prints the run's header once and the summary once, and no rank aborts."""
    launches = int(os.environ.get("JEPA_LAUNCHES", "4"))
    busy = multiprocessing.get_context("spawn").Process(target=_spin, daemon=True)
    busy.start()
    failed = []
    start = time.perf_counter()
    try:
        for i in range(launches):
            parallel = ("ddp", "fsdp")[i % 2]
            cfg = tiny_config(tmp_path / f"run{i}", max_steps=3)
            cfg = replace(cfg, data=replace(cfg.data, batch_size=8), run=replace(cfg.run, parallel=parallel))
            save_config(cfg, tmp_path / f"run{i}.yaml")
            done = _launch(tmp_path / f"run{i}.yaml")
            if done.returncode != 0 or "terminate called" in done.stderr:
                why = [line for line in done.stderr.splitlines()  # the rank's own words, before torchrun's report
                       if any(k in line for k in ("terminate called", "what()", "Abort", "Error", "error"))]
                failed.append(f"launch {i} ({parallel}): exit {done.returncode}: " + "\n".join(why[:12])
                              + f"\n...{done.stderr[-600:]}")
                continue
            assert done.stdout.count("trained steps 0..3") == 1, done.stdout
            assert done.stderr.count("writing to ") == 1, done.stderr
            assert "rank 1" not in done.stdout + done.stderr, done.stderr
    finally:
        busy.terminate()
    seconds = time.perf_counter() - start
    assert not failed, f"{len(failed)} of {launches} launches failed in {seconds:.0f} s:\n" + "\n".join(failed)


@pytest.mark.slow
def test_a_two_process_run_refused_after_the_group_is_up_exits_cleanly_with_one_line_per_rank(
        tmp_path: Path) -> None:
    """An error raised after ``init_process_group`` (a resume path that is not there) ends both ranks with
    exit 2 and their own line, rank 1's prefixed, and leaves no folder behind."""
    cfg = tiny_config(tmp_path / "run", max_steps=3)
    cfg = replace(cfg, data=replace(cfg.data, batch_size=8), run=replace(cfg.run, resume=str(tmp_path / "gone.pt")))
    save_config(cfg, tmp_path / "run.yaml")
    done = _launch(tmp_path / "run.yaml")
    assert done.returncode != 0
    ranks = done.stderr.split("failed (exitcode")[0]  # then torchrun's own report (its traceback, each rank's exit)
    assert "terminate called" not in done.stderr and "Traceback" not in ranks, done.stderr
    # The first rank out ends by our exit 2; torchrun then sends SIGTERM to any rank still exiting (after its
    # line was written), so a rank may read -15 there, but none ends by an abort or another code.
    codes = re.findall(r"exitcode  : (-?\d+) ", done.stderr)
    assert sorted(codes) in (["2", "2"], ["-15", "2"]), done.stderr
    assert re.search(r"Root Cause.*?exitcode  : 2 ", done.stderr, re.S), done.stderr
    ours = [line for line in done.stderr.splitlines() if line.startswith("jepa-torch:")]
    assert sorted(ours) == sorted([f"jepa-torch: error: run.resume={str(tmp_path / 'gone.pt')!r}: no such checkpoint "
                                   "file; give a path, auto or never",
                                   f"jepa-torch: rank 1: error: run.resume={str(tmp_path / 'gone.pt')!r}: no such "
                                   "checkpoint file; give a path, auto or never"]), done.stderr
    assert not (tmp_path / "run").exists()


# --- the process group on every way out ---------------------------------------------------------------------------


def _outcomes() -> list[tuple[str, BaseException | None]]:
    return [("done", None), ("error", ConfigError("bad")), ("nan", TrainingDiverged("nan")),
            ("ctrl-c", KeyboardInterrupt())]


@pytest.mark.parametrize(("way", "raised"), _outcomes(), ids=[w for w, _ in _outcomes()])
def test_train_tears_down_the_process_group_it_made_on_every_way_out(
        way: str, raised: BaseException | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def setup(cfg: Any) -> Any:
        dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
        return loop._Dist(0, 1, torch.device("cpu"), owns_group=True)

    def body(*args: Any) -> Any:
        assert dist.is_initialized()
        if raised is not None:
            raise raised
        return "summary"

    monkeypatch.setattr(loop, "_setup", setup)
    monkeypatch.setattr(loop, "_train", body)
    if raised is None:
        assert loop.train(tiny_config(tmp_path / "run")) == "summary"  # type: ignore[comparison-overlap]
    else:
        with pytest.raises(type(raised)):
            loop.train(tiny_config(tmp_path / "run"))
    assert not dist.is_initialized(), way


def test_train_leaves_a_process_group_it_did_not_make(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        monkeypatch.setattr(loop, "_setup", lambda cfg: loop._Dist(0, 1, torch.device("cpu"), owns_group=False))
        monkeypatch.setattr(loop, "_train", lambda *args: None)
        loop.train(tiny_config(tmp_path / "run"))
        assert dist.is_initialized()  # the caller's, to end when the caller chooses
    finally:
        dist.destroy_process_group()


# --- what each rank prints ----------------------------------------------------------------------------------------


def test_ranks_other_than_0_print_only_their_own_records_prefixed(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    main(["train", "--set", "model.no_such_key=1"])  # installs the handler; fails on the config
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("jepa-torch: rank 1: error: "), err
    library = logging.getLogger("jepa_torch.test")
    library.warning("for the job")
    library.warning("this rank's own", extra={"rank_local": True})
    assert capsys.readouterr().err.strip().splitlines() == ["jepa-torch: rank 1: warning: this rank's own"]
    monkeypatch.setenv("RANK", "0")
    library.warning("for the job")
    assert capsys.readouterr().err.strip().splitlines() == ["jepa-torch: warning: for the job"]


# --- errors that name their cause ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "cause", "fix"), [
    (errno.ENOSPC, "no space left on the device", "free disk space or write elsewhere"),
    (errno.EDQUOT, "disk quota exceeded", "free disk space or write elsewhere"),
    (errno.EACCES, "permission denied", "give this user write permission on"),
    (errno.EROFS, "read-only file system", "write elsewhere"),
    (errno.EIO, os.strerror(errno.EIO), "check the path and the disk"),
])
def test_a_failed_write_names_the_cause_that_occurred_and_its_own_fix(
        code: int, cause: str, fix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(f: Any) -> None:
        raise OSError(code, os.strerror(code))

    (tmp_path / "keep.bin").write_bytes(b"old")
    with pytest.raises(WriteError) as caught:
        atomic_write(tmp_path / "keep.bin", refuse)
    message = str(caught.value)
    assert f"cannot write {tmp_path / 'keep.bin'} ({cause})" in message and fix in message, message
    if code not in (errno.ENOSPC, errno.EDQUOT):
        assert "free disk space" not in message, message
    assert (tmp_path / "keep.bin").read_bytes() == b"old" and os.listdir(tmp_path) == ["keep.bin"]


def test_a_run_folder_that_cannot_be_made_is_one_line_with_its_cause(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "file").write_text("")
    assert main(["train", "--out", str(tmp_path / "file" / "run"), "--max-steps", "1", "--no-progress"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert err == [f"jepa-torch: error: {str(tmp_path / 'file' / 'run' / 'checkpoints')!r}: a part of the path is "
                   "a file, not a folder; check the path, then rerun"], err
    denied = PermissionError(errno.EACCES, "Permission denied", "/srv/runs/x")
    assert describe_os_error(denied) == ("'/srv/runs/x': permission denied; give this user write permission on "
                                         "/srv/runs or write elsewhere, then rerun")


# --- save_official without the optimiser -------------------------------------------------------------------------


def test_save_official_warns_when_the_official_trainer_could_not_resume_from_the_file(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    model = build(JEPAConfig(EncoderConfig(48, 1, 4, 96, 3, (4, 4), (4, 4)), PredictorConfig(48, 32, 1, 4, 64, (4, 4))))
    networks = (model.encoder, model.predictor, model.target_encoder)
    with caplog.at_level(logging.WARNING, logger="jepa_torch"):
        save_official(tmp_path / "weights.pth.tar", *networks)
        save_official(tmp_path / "no_opt.pth.tar", *networks, epoch=3)
        save_official(tmp_path / "whole.pth.tar", *networks, epoch=3, opt={"state": {}, "param_groups": []})
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert "without 'epoch' and 'opt'" in lines[0] and "from fresh weights" in lines[0]
    assert "without 'opt'" in lines[1] and "fresh weights" not in lines[1]
    assert all("official trainer will not resume" in line and "pass epoch= and opt=" in line for line in lines)
    assert (tmp_path / "weights.pth.tar").is_file()  # written all the same: whole for evaluation


# --- nothing written before the start is validated ----------------------------------------------------------------


@pytest.mark.parametrize("bad", ["data.dataset=image_folder", "run.resume=/nonexistent/step_1.pt",
                                 "model.patch_size=5"])
def test_a_run_refused_at_its_start_leaves_nothing_on_disk(bad: str, tmp_path: Path) -> None:
    args = ["train", "--out", str(tmp_path / "run"), "--set", bad, "--max-steps", "1", "--no-progress"]
    if bad.startswith("data."):
        args += ["--set", f"data.path={tmp_path / 'missing'}"]
    assert main(args) == 2
    assert os.listdir(tmp_path) == [], os.listdir(tmp_path)
