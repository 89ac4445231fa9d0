"""The demo: pretrain a small ViT on the bundled digits, evaluate it, draw what happened.

    jepa-torch demo                  # a few CPU minutes; writes runs/demo/
    jepa-torch demo --seeds 0 1 2    # the same recipe over three seeds, mean and std
    jepa-torch demo --config configs/moving_digits_vjepa.yaml   # V-JEPA on the bundled moving digits

It trains :data:`DEFAULT_CONFIG` (the best recipe of docs/evaluation.md at the demo's CPU budget),
then probes the frozen encoder (I-JEPA: the target encoder) on the 20% of digits that training
never saw, next to the same ViT at random initialisation and the raw pixels, and writes PNGs: the
training curves (loss, learning rate, RankMe, feature std, the online probe), what one step sees
(LeJEPA's views or I-JEPA's masks over a digit), and a 2-D PCA of the held-out features coloured
by label. A video recipe is probed on every label of its data (moving digits: ``digit`` and
``direction``), one table each.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch

from jepa_torch.config.schema import TrainConfig
from jepa_torch.config.yaml_io import load_config
from jepa_torch.data.datasets import build_dataset
from jepa_torch.evaluation import EvalConfig, EvalReport, evaluate
from jepa_torch.methods import get_method
from jepa_torch.io.plots import plot_confusion, plot_projection
from jepa_torch.training.loop import train

__all__ = ["CONFIGS", "DEFAULT_CONFIG", "run_demo", "run_seeds"]

_CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
CONFIGS = {"ijepa": _CONFIG_DIR / "digits_ijepa.yaml", "lejepa": _CONFIG_DIR / "digits_lejepa.yaml",
           "vjepa": _CONFIG_DIR / "moving_digits_vjepa.yaml"}
"""The demo recipes of docs/evaluation.md: I-JEPA with VICReg's terms and LeJEPA on digits, V-JEPA on moving digits."""
_PROBES = EvalConfig()
VIDEO_EVALUATION = EvalConfig(probes=("linear", "attentive", "knn"),
                              linear=replace(_PROBES.linear, epochs=50, min_steps=500),
                              attentive=replace(_PROBES.attentive, epochs=15, min_steps=300))
"""The video demo's probes: linear, attentive and kNN with the image demo's grids and fewer updates (two label
tasks, four feature sets, clips of 256 tokens)."""
DEFAULT_CONFIG = CONFIGS["lejepa"]
"""The demo's recipe: the best of :data:`CONFIGS` at the demo's CPU budget (docs/evaluation.md)."""


def _with(cfg: TrainConfig, out: Path, seed: int) -> TrainConfig:
    return replace(cfg, run=replace(cfg.run, out_dir=str(out), seed=seed))


def _draw_inputs(cfg: TrainConfig, out: Path) -> Path:
    """What one step sees of four held-out inputs, as the run's method draws it (masks.png, views.png)."""
    images = build_dataset(cfg, "holdout", augment=False)
    batch = torch.stack([images[(0, 0, i)] for i in range(4)])  # (4, C, H, W)
    return get_method(cfg.method.name).draw_step(cfg, batch, out)


def evaluate_run(checkpoint: str | Path, cfg: TrainConfig, seed: int, progress: bool = False,
                 evaluation: EvalConfig | None = None, label: str | None = None,
                 frame_encoders: tuple[Path, ...] = ()) -> EvalReport:
    """The demo's evaluation of a run: every probe on its held-out split, I-JEPA's two encoders, baselines.

    ``evaluation`` replaces the probes' settings (its seed and progress are the run's); ``label`` picks a
    video run's labels. A video run probes its target encoder only (its context encoder is a step behind
    and costs as much again)."""
    method = get_method(cfg.method.name)
    one = method.encoders["target"] == method.encoders["context"]
    encoders = ("target",) if one or cfg.is_video else ("target", "context")
    settings = replace(evaluation or EvalConfig(), seed=seed, progress=progress, label=label)
    return evaluate(checkpoint, encoders=encoders, config=settings, frame_encoders=frame_encoders)


def train_frames(cfg: TrainConfig, out: Path, seed: int, progress: bool, overrides: tuple[str, ...] = ()) -> Path:
    """The frame-wise baseline of a video run: the image demo's recipe (:data:`DEFAULT_CONFIG`) trained on the
    frames of the run's training videos (``data.dataset: video_frames``, with the run's ``data.cache_mb``) into
    ``out``; its last checkpoint.
    ``overrides`` apply after (the demo passes its ``run.*`` ones, so ``run.max_steps`` bounds both runs)."""
    from jepa_torch.data.moving_digits import moving_digits_folder

    d = cfg.data
    root = str(moving_digits_folder(d.path)) if d.dataset == "moving_digits" else str(d.path)
    frame_data = ["data.dataset=video_frames", f"data.path={root}", f"data.img_size={d.img_size}",
                  f"data.holdout_fraction={d.holdout_fraction}", f"data.cache_mb={d.cache_mb}",
                  *([f"data.label={d.label}"] if d.label else [])]
    frames = _with(load_config(DEFAULT_CONFIG, [*frame_data, *overrides]), out, seed)
    summary = train(frames, progress=progress)
    if summary.last_checkpoint is None:
        raise RuntimeError("the frame-wise baseline wrote no checkpoint")
    return summary.last_checkpoint


def _tasks(cfg: TrainConfig) -> list[str | None]:
    """The label tasks a demo probes: a video folder's every labels.csv column, else the data's one."""
    if not cfg.is_video:
        return [None]
    dataset = build_dataset(cfg, "holdout", augment=False)
    return list(getattr(dataset, "folder").tasks) or [None]


def run_demo(config: str | Path = DEFAULT_CONFIG, out: str | Path = "runs/demo", seed: int = 0,
             overrides: tuple[str, ...] = (), progress: bool = True,
             evaluation: EvalConfig | None = None) -> EvalReport:
    """Train, evaluate and draw one seed; returns the evaluation (``evaluation``: the probes' settings; a video
    run: its first label's)."""
    return next(iter(_run(config, out, seed, overrides, progress, evaluation).values()))


def _run(config: str | Path, out: str | Path, seed: int, overrides: tuple[str, ...], progress: bool,
         evaluation: EvalConfig | None) -> dict[str | None, EvalReport]:
    """Train, evaluate and draw one seed: the evaluation of each label task."""
    out = Path(out)
    cfg = _with(load_config(config, overrides), out, seed)
    start = time.perf_counter()
    summary = train(cfg, progress=progress)
    seconds = time.perf_counter() - start
    if summary.last_checkpoint is None:
        raise RuntimeError("the run wrote no checkpoint")
    frame_encoders: tuple[Path, ...] = ()
    frame_seconds = 0.0
    if cfg.is_video:
        evaluation = VIDEO_EVALUATION if evaluation is None else evaluation
        print(f"\nthe frame-wise baseline: {DEFAULT_CONFIG.name} on the frames of the same training videos")
        frame_start = time.perf_counter()
        frame_encoders = (train_frames(cfg, out / "frames", seed, progress,
                                       tuple(o for o in overrides if o.startswith("run."))),)
        frame_seconds = time.perf_counter() - frame_start
    reports = {task: evaluate_run(summary.last_checkpoint, cfg, seed, progress, evaluation, task, frame_encoders)
               for task in _tasks(cfg)}
    inputs = _draw_inputs(cfg, out)
    report = next(iter(reports.values()))
    first = next(iter(report.rows))
    if report.projection is not None:
        xy, labels, explained = report.projection
        plot_projection(xy, labels, explained, out / "pca.png",
                        title=f"held-out digits, {first} features (step {report.step}), PCA")
    if report.confusion is not None:
        plot_confusion(report.confusion[1], report.classes, out / "confusion.png",
                       f"held-out digits, {first}, {report.confusion[0]} probe")
    unit = "clips" if cfg.is_video else "images"
    if cfg.is_video:
        (out / "eval.json").write_text(json.dumps({str(t): r.to_dict() for t, r in reports.items()}, indent=1))
    else:
        (out / "eval.json").write_text(json.dumps(report.to_dict(), indent=1))
    print(f"\n{out}: {summary.steps} steps in {seconds:.0f} s of training, {summary.images_per_s:.1f} {unit}/s at the end")
    if frame_encoders:
        print(f"the frame-wise baseline: {frame_seconds:.0f} s of training ({out / 'frames'})")
    for task, each in reports.items():
        if task is not None:
            print(f"\nlabels: {task}")
        print(each.table())
    spent = sum(r.seconds for r in reports.values())
    print(f"evaluation: {spent:.0f} s; pictures: {out / 'curves.png'}, {inputs}, {out / 'pca.png'}, "
          f"{out / 'confusion.png'}")
    return reports


def run_seeds(seeds: list[int], config: str | Path = DEFAULT_CONFIG, out: str | Path = "runs/demo",
              overrides: tuple[str, ...] = ()) -> dict[str, dict[str, float]]:
    """The demo over several seeds: mean and standard deviation of every probe, also written as JSON."""
    out = Path(out)
    per_seed: dict[str, dict[str, list[float]]] = {}
    for seed in seeds:
        for task, report in _run(config, out / f"seed{seed}", seed, overrides, False, None).items():
            for name, scores in report.rows.items():
                row = name if task is None else f"{task}: {name}"
                for probe, score in scores.items():
                    per_seed.setdefault(row, {}).setdefault(probe, []).append(score.accuracy)
    summary = {
        name: {f"{probe}_{stat}": (statistics.fmean(v) if stat == "mean" else statistics.pstdev(v))
               for probe, v in accs.items() for stat in ("mean", "std")}
        for name, accs in per_seed.items()
    }
    probes = list(dict.fromkeys(p for accs in per_seed.values() for p in accs))
    print(f"\nover seeds {seeds} (mean ± std, held-out data):")
    print(f"{'features':40s} " + " ".join(f"{p:>16s}" for p in probes))
    for name, s in summary.items():
        cells = [f"{100 * s[f'{p}_mean']:8.2f} ± {100 * s[f'{p}_std']:4.2f}%" if f"{p}_mean" in s else f"{'-':>16s}"
                 for p in probes]
        print(f"{name:40s} " + " ".join(cells))
    (out / "seeds.json").write_text(json.dumps({"seeds": seeds, "summary": summary,
                                                "torch": torch.__version__}, indent=2))
    return summary
