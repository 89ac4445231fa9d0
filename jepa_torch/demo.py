"""The demo: pretrain a small ViT on the bundled digits, evaluate it, draw what happened.

    jepa-torch demo                  # a few CPU minutes; writes runs/demo/
    jepa-torch demo --seeds 0 1 2    # the same recipe over three seeds, mean and std

It trains :data:`DEFAULT_CONFIG` (the best recipe of docs/evaluation.md at the demo's CPU budget),
then probes the frozen encoder (I-JEPA: the target encoder) on the 20% of digits that training
never saw, next to the same ViT at random initialisation and the raw pixels, and writes PNGs: the
training curves (loss, learning rate, RankMe, feature std, the online probe), what one step sees
(LeJEPA's views or I-JEPA's masks over a digit), and a 2-D PCA of the held-out features coloured
by label.
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
CONFIGS = {"ijepa": _CONFIG_DIR / "digits_ijepa.yaml", "lejepa": _CONFIG_DIR / "digits_lejepa.yaml"}
"""The digits recipes of docs/evaluation.md: I-JEPA with VICReg's terms, and LeJEPA."""
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
                 evaluation: EvalConfig | None = None) -> EvalReport:
    """The demo's evaluation of a run: every probe on its held-out split, I-JEPA's two encoders, baselines.

    ``evaluation`` replaces the probes' settings (its seed and progress are the run's)."""
    method = get_method(cfg.method.name)
    one = method.encoders["target"] == method.encoders["context"]
    encoders = ("target",) if one else ("target", "context")
    settings = replace(evaluation or EvalConfig(), seed=seed, progress=progress)
    return evaluate(checkpoint, encoders=encoders, config=settings)


def run_demo(config: str | Path = DEFAULT_CONFIG, out: str | Path = "runs/demo", seed: int = 0,
             overrides: tuple[str, ...] = (), progress: bool = True,
             evaluation: EvalConfig | None = None) -> EvalReport:
    """Train, evaluate and draw one seed; returns the evaluation (``evaluation``: the probes' settings)."""
    out = Path(out)
    cfg = _with(load_config(config, overrides), out, seed)
    start = time.perf_counter()
    summary = train(cfg, progress=progress)
    seconds = time.perf_counter() - start
    if summary.last_checkpoint is None:
        raise RuntimeError("the run wrote no checkpoint")
    report = evaluate_run(summary.last_checkpoint, cfg, seed, progress, evaluation)
    inputs = _draw_inputs(cfg, out)
    first = next(iter(report.rows))
    if report.projection is not None:
        xy, labels, explained = report.projection
        plot_projection(xy, labels, explained, out / "pca.png",
                        title=f"held-out digits, {first} features (step {report.step}), PCA")
    if report.confusion is not None:
        plot_confusion(report.confusion[1], report.classes, out / "confusion.png",
                       f"held-out digits, {first}, {report.confusion[0]} probe")
    (out / "eval.json").write_text(json.dumps(report.to_dict(), indent=1))
    print(f"\n{out}: {summary.steps} steps in {seconds:.0f} s of training, {summary.images_per_s:.1f} images/s at the end")
    print(report.table())
    print(f"evaluation: {report.seconds:.0f} s; pictures: {out / 'curves.png'}, {inputs}, {out / 'pca.png'}, "
          f"{out / 'confusion.png'}")
    return report


def run_seeds(seeds: list[int], config: str | Path = DEFAULT_CONFIG, out: str | Path = "runs/demo",
              overrides: tuple[str, ...] = ()) -> dict[str, dict[str, float]]:
    """The demo over several seeds: mean and standard deviation of every probe, also written as JSON."""
    out = Path(out)
    per_seed: dict[str, dict[str, list[float]]] = {}
    for seed in seeds:
        report = run_demo(config, out / f"seed{seed}", seed, overrides, progress=False)
        for name, scores in report.rows.items():
            for probe, score in scores.items():
                per_seed.setdefault(name, {}).setdefault(probe, []).append(score.accuracy)
    summary = {
        name: {f"{probe}_{stat}": (statistics.fmean(v) if stat == "mean" else statistics.pstdev(v))
               for probe, v in accs.items() for stat in ("mean", "std")}
        for name, accs in per_seed.items()
    }
    probes = list(dict.fromkeys(p for accs in per_seed.values() for p in accs))
    print(f"\nover seeds {seeds} (mean ± std, held-out digits):")
    print(f"{'features':30s} " + " ".join(f"{p:>16s}" for p in probes))
    for name, s in summary.items():
        cells = [f"{100 * s[f'{p}_mean']:8.2f} ± {100 * s[f'{p}_std']:4.2f}%" if f"{p}_mean" in s else f"{'-':>16s}"
                 for p in probes]
        print(f"{name:30s} " + " ".join(cells))
    (out / "seeds.json").write_text(json.dumps({"seeds": seeds, "summary": summary,
                                                "torch": torch.__version__}, indent=2))
    return summary
