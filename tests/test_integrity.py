"""Files a run leaves: checkpoints verified against their digest, a fallback past a corrupt one, and permissions."""

from __future__ import annotations

import logging
import os
import shutil
import stat
import struct
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

from jepa_torch.methods import ijepa as ijepa_module
from jepa_torch.io.checkpoint import (DIGEST_KEY, CorruptCheckpoint, atomic_save, load_official, payload_digest,
                                      read_official)
from jepa_torch.cli import main
from jepa_torch.config.yaml_io import save_config
from jepa_torch.io.export import export_encoder, load_encoder
from jepa_torch.models import JEPA
from jepa_torch.training.resume import last_verified_checkpoint, list_checkpoints
from jepa_torch.methods.step import StepResult
from jepa_torch.training.loop import train

from .test_train import tiny_config

ROOT = Path(__file__).resolve().parent.parent


def flip_tensor_byte(path: Path, entry: str | None = None) -> str:
    """Flip one byte in the middle of a tensor's storage inside a torch zip file (not the pickled header).

    ``entry``: a storage record of the archive (``.../data/N``); default the largest. Returns the record's name.
    """
    with zipfile.ZipFile(path) as archive:
        records = [i for i in archive.infolist() if "/data/" in i.filename and i.file_size]
        record = max(records, key=lambda i: i.file_size) if entry is None else archive.getinfo(entry)
    raw = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack_from("<HH", raw, record.header_offset + 26)
    at = record.header_offset + 30 + name_len + extra_len + record.file_size // 2
    raw[at] ^= 0x10
    path.write_bytes(bytes(raw))
    return record.filename


@pytest.fixture(scope="module")
def three_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[int, float]]]:
    out = tmp_path_factory.mktemp("digest") / "run"
    cfg = tiny_config(out, max_steps=3)
    summary = train(replace(cfg, run=replace(cfg.run, checkpoint_every=1, keep_checkpoints=3)), progress=False)
    return out, summary.losses


# --- the digest ----------------------------------------------------------------------------------------------------


def test_the_digest_covers_every_tensor_byte_and_every_value_but_not_dict_order() -> None:
    state = {"w": torch.arange(6, dtype=torch.float32).view(2, 3), "meta": {"step": 3, "lr": 0.1, "name": "x"},
             "rng": [torch.tensor([1, 2], dtype=torch.uint8), (1, 2)]}
    base = payload_digest(state)
    assert base.startswith("sha256:") and base == payload_digest(dict(reversed(list(state.items()))))
    assert payload_digest({**state, DIGEST_KEY: "sha256:0"}) == base  # the entry itself is left out
    changed = [
        {**state, "w": state["w"].clone().index_put_((torch.tensor(1), torch.tensor(2)), torch.tensor(5.0001))},
        {**state, "w": state["w"].t().contiguous().view(2, 3)},  # same bytes multiset, other order
        {**state, "w": state["w"].view(3, 2)},  # same bytes, other shape
        {**state, "w": state["w"].double()},
        {**state, "meta": {"step": 4, "lr": 0.1, "name": "x"}},
        {**state, "meta": {"step": 3, "lr": 0.1 + 1e-17 + 2**-55, "name": "x"}},
        {**state, "rng": [torch.tensor([1, 3], dtype=torch.uint8), (1, 2)]},
        {**state, "rng": [torch.tensor([1, 2], dtype=torch.uint8), [1, 2]]},
    ]
    assert all(payload_digest(c) != base for c in changed)


def test_a_flipped_byte_inside_a_tensor_is_refused_in_one_line(
        three_checkpoints: tuple[Path, list[tuple[int, float]]], tmp_path: Path) -> None:
    good = three_checkpoints[0] / "checkpoints" / "step_00000003.pt"
    assert read_official(good)[DIGEST_KEY].startswith("sha256:")
    bad = tmp_path / "step_00000003.pt"
    shutil.copy(good, bad)
    flip_tensor_byte(bad)
    torch.load(bad, weights_only=True)  # torch itself does not notice
    with pytest.raises(CorruptCheckpoint) as info:
        read_official(bad)
    assert str(info.value).startswith(f"{bad}: corrupt:") and "\n" not in str(info.value)
    with pytest.raises(CorruptCheckpoint):
        load_official(bad)
    with pytest.raises(CorruptCheckpoint):
        load_encoder(bad)


@pytest.mark.parametrize("command", ["export", "eval", "hub"])
def test_export_eval_and_hub_refuse_a_corrupt_checkpoint(
        command: str, three_checkpoints: tuple[Path, list[tuple[int, float]]], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "step_00000003.pt"
    shutil.copy(three_checkpoints[0] / "checkpoints" / "step_00000003.pt", bad)
    flip_tensor_byte(bad)
    if command == "hub":
        with pytest.raises(CorruptCheckpoint, match="corrupt"):
            torch.hub.load(str(ROOT), "jepa", source="local", weights=str(bad), trust_repo=True)
        return
    argv = (["export", "--checkpoint", str(bad), "--out", str(tmp_path / "enc.safetensors")] if command == "export"
            else ["eval", "--checkpoint", str(bad), "--no-baselines", "--no-progress"])
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"jepa-torch: error: {bad}: corrupt: its content does not match the sha256 digest written with it " \
                  "(a changed byte); use an earlier checkpoint or copy the file again"
    assert not (tmp_path / "enc.safetensors").exists()


def test_a_corrupt_safetensors_export_is_refused(three_checkpoints: tuple[Path, list[tuple[int, float]]],
                                                  tmp_path: Path) -> None:
    export = export_encoder(three_checkpoints[0] / "checkpoints" / "step_00000003.pt", tmp_path / "enc.safetensors")
    load_encoder(export)
    raw = bytearray(export.read_bytes())
    raw[-100] ^= 0x01  # inside the last tensor's bytes (the header comes first)
    export.write_bytes(bytes(raw))
    with pytest.raises(CorruptCheckpoint, match="enc.safetensors: corrupt"):
        load_encoder(export)


def test_files_without_a_digest_still_load_unverified(three_checkpoints: tuple[Path, list[tuple[int, float]]],
                                                      tmp_path: Path) -> None:
    """Official files and ours from before the digest."""
    ckpt = torch.load(three_checkpoints[0] / "checkpoints" / "step_00000003.pt", weights_only=True)
    del ckpt[DIGEST_KEY]
    torch.save(ckpt, tmp_path / "old.pt")
    load_official(tmp_path / "old.pt")
    assert last_verified_checkpoint(tmp_path, tmp_path / "old.pt") is None  # readable, but not verified


# --- resume falls back, messages name a verified file --------------------------------------------------------------


def test_resume_falls_back_past_a_corrupt_newest_checkpoint_and_finishes(
        three_checkpoints: tuple[Path, list[tuple[int, float]]], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "run"
    shutil.copytree(three_checkpoints[0], out)
    newest = out / "checkpoints" / "step_00000003.pt"
    flip_tensor_byte(newest)
    cfg = tiny_config(out, max_steps=3)
    with caplog.at_level(logging.WARNING, logger="jepa_torch.training.loop"):
        summary = train(replace(cfg, run=replace(cfg.run, checkpoint_every=1, keep_checkpoints=3)), progress=False)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(f"run.resume=auto: {newest}: corrupt:")
    assert warnings[0].endswith("; falling back to the previous checkpoint")
    assert summary.resumed_from == 2 and summary.losses == three_checkpoints[1][2:]  # step 3 again, exactly
    assert read_official(newest)["step"] == 3  # rewritten, and verifies


def test_a_named_corrupt_checkpoint_stops_the_run(three_checkpoints: tuple[Path, list[tuple[int, float]]],
                                                  tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "step_00000002.pt"
    shutil.copy(three_checkpoints[0] / "checkpoints" / "step_00000002.pt", bad)
    flip_tensor_byte(bad)
    save_config(tiny_config(tmp_path / "run", max_steps=4), tmp_path / "run.yaml")
    assert main(["train", "--config", str(tmp_path / "run.yaml"), "--no-progress", "--resume", str(bad)]) == 2
    assert f"{bad}: corrupt" in capsys.readouterr().err
    assert not list_checkpoints(tmp_path / "run" / "checkpoints")


def test_the_last_good_checkpoint_of_a_nan_message_is_one_that_verifies(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Step 3's checkpoint is damaged on disk before the loss turns NaN at step 4: the message names step 2."""
    real_step = ijepa_module.train_step
    calls = {"n": 0}
    folder = tmp_path / "run" / "checkpoints"

    def poisoned(model: JEPA, *args: Any, **kwargs: Any) -> StepResult:
        calls["n"] += 1
        if calls["n"] == 4:
            flip_tensor_byte(folder / "step_00000003.pt")
            return replace(real_step(model, *args, **kwargs), loss=torch.tensor(float("nan")))
        return real_step(model, *args, **kwargs)

    monkeypatch.setattr(ijepa_module, "train_step", poisoned)
    cfg = tiny_config(tmp_path / "run", max_steps=6)
    save_config(replace(cfg, run=replace(cfg.run, checkpoint_every=1, keep_checkpoints=5)), tmp_path / "run.yaml")
    assert main(["train", "--config", str(tmp_path / "run.yaml"), "--no-progress"]) == 3
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"the last good checkpoint is {folder / 'step_00000002.pt'};" in err, err


# --- permissions ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_every_file_of_a_run_honours_the_umask(umask: int, tmp_path: Path) -> None:
    old = os.umask(umask)
    try:
        out = tmp_path / "run"
        train(tiny_config(out, max_steps=2), progress=False)
        export_encoder(out / "checkpoints" / "step_00000002.pt", tmp_path / "enc.safetensors")
        atomic_save({"x": torch.zeros(1)}, tmp_path / "plain.pt")
    finally:
        os.umask(old)
    files = [p for p in [*out.rglob("*"), tmp_path / "enc.safetensors", tmp_path / "plain.pt"] if p.is_file()]
    assert {p.name for p in files} >= {"config.yaml", "log.csv", "curves.png", "step_00000002.pt"}
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in files}
    assert set(modes.values()) == {0o666 & ~umask}, modes
