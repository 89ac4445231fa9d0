"""A user's own data: which dataset a run reads, unlabelled folders, nothing held out, and the run's header line."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from jepa_torch.cli import main
from jepa_torch.config import ConfigError, DataConfig, MethodConfig, TrainConfig
from jepa_torch.config.yaml_io import load_config, save_config
from jepa_torch.data import build_dataset
from jepa_torch.evaluation import EvaluationError
from jepa_torch.evaluation.features import run_splits
from jepa_torch.methods.step import precision_note
from jepa_torch.training.loop import train

from .test_train import tiny_config

ROOT = Path(__file__).resolve().parent.parent


def _images(folder: Path, count: int, seed: int = 0) -> Path:
    """``count`` 16 px PNGs directly in ``folder`` (no class subfolders)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(folder / f"img_{i:03d}.png")
    return folder


def _folder_run(out: Path, data: Path, method: str = "ijepa", holdout: float = 0.25, **run: object) -> TrainConfig:
    cfg = tiny_config(out, max_steps=2)
    cfg = replace(cfg, run=replace(cfg.run, monitor_every=1, **run),  # type: ignore[arg-type]
                  data=replace(cfg.data, dataset=None, path=str(data), batch_size=8, holdout_fraction=holdout))
    if method == "lejepa":
        cfg = replace(cfg, method=MethodConfig(name="lejepa", global_views=2, local_views=2, local_size=8,
                                               projector_hidden=0, projector_dim=16))
    return cfg


# --- which data a run reads ----------------------------------------------------------------------------------------


def test_the_dataset_is_read_from_the_path_when_not_given(tmp_path: Path) -> None:
    assert DataConfig().dataset == "digits"
    assert DataConfig(path=str(tmp_path)).dataset == "image_folder"
    assert DataConfig(path=str(tmp_path / "x.npy")).dataset == "sequence"
    assert DataConfig(dataset="image_folder", path=str(tmp_path)).dataset == "image_folder"
    assert DataConfig(path="~/photos").path == str(Path.home() / "photos")  # bash leaves ~ in data.path=~/photos


def test_a_path_beside_the_digits_is_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """README's natural first try: the digits recipe with one's own folder. It must not train on digits."""
    with pytest.raises(ConfigError, match=r"data.path=.*data.dataset=digits .*ignores.*data.dataset=image_folder"):
        load_config(str(ROOT / "configs" / "digits_ijepa.yaml"), [f"data.path={tmp_path}"])
    assert main(["train", "--config", str(ROOT / "configs" / "digits_ijepa.yaml"), "--set", f"data.path={tmp_path}",
                 "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "data.path" in err and "image_folder" in err
    assert not (tmp_path / "run").exists()  # nothing is created for a refused config


def test_the_run_starts_with_one_header_line_and_says_when_it_resumes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _images(tmp_path / "photos", 20)
    cfg = _folder_run(tmp_path / "run", data, holdout=0.2)
    save_config(cfg, tmp_path / "run.yaml")
    assert main(["train", "--config", str(tmp_path / "run.yaml"), "--no-progress"]) == 0
    first = capsys.readouterr().err.splitlines()[0]
    assert first == (f"jepa-torch: ijepa on image_folder {data}: 16 training and 4 held-out images; 2 steps of 8; "
                     f"cpu, {precision_note(torch.device('cpu'))}; writing to {tmp_path / 'run'}")
    assert precision_note(torch.device("cpu")) in ("fp32 (bf16 units: AMX)", "fp32 (bf16 units: AVX512-BF16)",
                                                   "fp32 (bf16 units: none)")
    assert main(["train", "--config", str(tmp_path / "run.yaml"), "--no-progress", "--max-steps", "3"]) == 0
    first = capsys.readouterr().err.splitlines()[0]
    assert first.endswith(f"; resuming from step 2 ({tmp_path / 'run' / 'checkpoints' / 'step_00000002.pt'})")


# --- unlabelled folders and nothing held out -----------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["flat", "one class folder"])
def test_an_unlabelled_folder_has_no_labels_and_a_random_split(layout: str, tmp_path: Path) -> None:
    root = tmp_path / "photos"
    _images(root if layout == "flat" else root / "all", 10)
    cfg = _folder_run(tmp_path / "run", root, holdout=0.2)
    train_split, held = build_dataset(cfg, "train"), build_dataset(cfg, "holdout")
    assert train_split.labels is None and held.labels is None
    assert (len(train_split), len(held)) == (8, 2)


def test_images_both_loose_and_in_class_folders_are_refused(tmp_path: Path) -> None:
    from jepa_torch.data import DataError

    _images(tmp_path / "photos", 3)
    _images(tmp_path / "photos" / "cats", 3)
    _images(tmp_path / "photos" / "dogs", 3)
    cfg = _folder_run(tmp_path / "run", tmp_path / "photos")
    with pytest.raises(DataError, match="3 images at its top level and 6 in class subfolders"):
        build_dataset(cfg)


@pytest.mark.parametrize("method", ["ijepa", "lejepa"])
@pytest.mark.parametrize("holdout", [0.25, 0.0])
def test_every_method_trains_on_an_unlabelled_folder_with_or_without_a_holdout(
        method: str, holdout: float, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = _images(tmp_path / "photos", 24)
    with caplog.at_level(logging.INFO, logger="jepa_torch"):
        summary = train(_folder_run(tmp_path / "run", data, method, holdout), progress=False)
    assert summary.steps == 2 and summary.last_checkpoint is not None and summary.last_checkpoint.is_file()
    notes = [r.getMessage() for r in caplog.records if "online probe is off" in r.getMessage()]
    why = "data.holdout_fraction=0" if holdout == 0 else "has no labels"
    assert len(notes) == 1 and why in notes[0], notes  # said once, not at every monitor step
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    rows = (tmp_path / "run" / "log.csv").read_text().splitlines()
    header = rows[0].split(",")
    assert all(row.split(",")[header.index("rankme")] for row in rows[1:])  # the label-free monitors ran
    assert not any(row.split(",")[header.index("probe_linear")] for row in rows[1:])


def test_a_labelled_run_without_a_holdout_trains_with_the_probe_off(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cfg = tiny_config(tmp_path / "run", max_steps=1)
    cfg = replace(cfg, data=replace(cfg.data, holdout_fraction=0.0), run=replace(cfg.run, monitor_every=1))
    with caplog.at_level(logging.INFO, logger="jepa_torch"):
        train(cfg, progress=False)
    assert any("data.holdout_fraction=0" in r.getMessage() for r in caplog.records)


def test_evaluating_a_run_without_labels_or_holdout_asks_for_labelled_folders(tmp_path: Path) -> None:
    data = _images(tmp_path / "photos", 10)
    with pytest.raises(EvaluationError, match=r"has no labels to probe; give --train PATH --val PATH"):
        run_splits(_folder_run(tmp_path / "a", data, holdout=0.2))
    with pytest.raises(EvaluationError, match=r"held out no data .*give --train PATH --val PATH"):
        run_splits(_folder_run(tmp_path / "b", data, holdout=0.0))
