"""Frozen-feature evaluation: a linear probe and a kNN classifier on held-out data.

I-JEPA is evaluated on the *target* encoder's tokens, average-pooled. The probe is
scikit-learn's logistic regression on standardised features, its inverse
regularisation ``C`` chosen by stratified cross-validation on the training split only;
the kNN classifier is cosine, k = 20, distance-weighted. Both are scored on a held-out
split that pretraining never saw. The same probes run on raw pixels and on the same
architecture at random initialisation, so a reader sees what pretraining adds.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn

__all__ = ["EvalReport", "EvaluationError", "ProbeResult", "evaluate_checkpoint", "extract_features", "format_table", "knn_accuracy",
           "linear_probe_accuracy", "probe", "raw_pixels"]

class EvaluationError(ValueError):
    """A checkpoint or dataset that cannot be evaluated; the message says why."""


C_GRID = tuple(float(c) for c in np.logspace(-3, 1, 5))


@torch.no_grad()
def extract_features(encoder: nn.Module, inputs: Tensor, batch_size: int = 256,
                     device: torch.device | str = "cpu") -> NDArray[np.float64]:
    """Average-pooled tokens of a frozen encoder: ``(N, ...) -> (N, D)`` float64."""
    was_training = encoder.training
    encoder.eval().to(device)
    out = []
    for chunk in torch.split(inputs, batch_size):
        tokens = encoder(chunk.to(device))  # (b, N_tokens, D)
        out.append(tokens.float().mean(dim=1).cpu())
    encoder.train(was_training)
    return torch.cat(out).double().numpy()


def linear_probe_accuracy(train_x: NDArray[np.floating], train_y: NDArray[np.integer],
                          test_x: NDArray[np.floating], test_y: NDArray[np.integer], seed: int = 0,
                          c_grid: Sequence[float] = C_GRID) -> tuple[float, float]:
    """Held-out accuracy of a standardised logistic-regression probe, and the chosen ``C``.

    ``C`` is picked by 3-fold stratified cross-validation on the training split alone; a grid of
    one value is fitted directly (the online probe during training does this).
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    if len(c_grid) == 1:
        pipe.set_params(logisticregression__C=c_grid[0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            pipe.fit(train_x, train_y)
        return float(pipe.score(test_x, test_y)), float(c_grid[0])
    search = GridSearchCV(pipe, {"logisticregression__C": list(c_grid)},
                          cv=StratifiedKFold(3, shuffle=True, random_state=seed), n_jobs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # lbfgs at the largest C; the CV still ranks it
        search.fit(train_x, train_y)
    return float(search.score(test_x, test_y)), float(search.best_params_["logisticregression__C"])


def knn_accuracy(train_x: NDArray[np.floating], train_y: NDArray[np.integer],
                 test_x: NDArray[np.floating], test_y: NDArray[np.integer], k: int = 20) -> float:
    """Held-out accuracy of a cosine, distance-weighted kNN classifier."""
    from sklearn.neighbors import KNeighborsClassifier

    knn = KNeighborsClassifier(n_neighbors=min(k, len(train_y)), metric="cosine", weights="distance",
                               algorithm="brute")
    knn.fit(train_x, train_y)
    return float(knn.score(test_x, test_y))


@dataclass(frozen=True)
class ProbeResult:
    """One row of the comparison table."""

    name: str
    linear: float
    knn: float
    c: float
    dim: int


def probe(name: str, train_x: NDArray[np.floating], train_y: NDArray[np.integer], test_x: NDArray[np.floating],
          test_y: NDArray[np.integer], seed: int = 0) -> ProbeResult:
    """Both probes on one feature set."""
    linear, c = linear_probe_accuracy(train_x, train_y, test_x, test_y, seed)
    return ProbeResult(name, linear, knn_accuracy(train_x, train_y, test_x, test_y), c, int(train_x.shape[1]))


def format_table(rows: Sequence[ProbeResult]) -> str:
    """A plain-text table of probe results."""
    lines = [f"{'features':34s} {'dim':>5s} {'linear probe':>13s} {'kNN (k=20)':>11s}"]
    lines += [f"{r.name:34s} {r.dim:5d} {100 * r.linear:12.2f}% {100 * r.knn:10.2f}%" for r in rows]
    return "\n".join(lines)


def raw_pixels(images: Tensor, max_side: int = 16) -> NDArray[np.float64]:
    """The raw-pixel baseline's features: ``(N, C, H, W)`` area-resized to at most ``max_side`` per
    side, one channel when all channels are equal (grey images), flattened.

    For the 8x8 digits upsampled to 32 px this keeps every original pixel (16 x 16 = 256
    values); for large colour images it keeps the probe's cost bounded.
    """
    x = images.double()
    if x.dim() == 4:
        if x.shape[1] > 1 and bool((x == x[:, :1]).all()):
            x = x[:, :1]
        if max(x.shape[-2:]) > max_side:
            x = torch.nn.functional.adaptive_avg_pool2d(x, (min(x.shape[-2], max_side), min(x.shape[-1], max_side)))
    return x.flatten(1).numpy()


@dataclass(frozen=True)
class EvalReport:
    """Probe results of a checkpoint and its baselines, plus the held-out features for plots."""

    rows: list[ProbeResult]
    test_features: NDArray[np.float64]
    test_labels: NDArray[np.int64]
    step: int


def _inputs(dataset: Any) -> tuple[Tensor, NDArray[np.int64]]:
    if dataset.labels is None:
        raise EvaluationError("evaluation needs labels; this dataset has none (sequences without labels)")
    x = torch.stack([dataset[(0, 0, i)] for i in range(len(dataset))])
    return x, dataset.labels.numpy().astype(np.int64)


def evaluate_checkpoint(checkpoint: str | Path, *, seed: int = 0, device: str = "cpu",
                        baselines: bool = True) -> EvalReport:
    """Probe the checkpoint's target and context encoders (a LeJEPA run's one encoder), and
    (``baselines``) the same architecture at random initialisation and the raw inputs, on the run's
    held-out split.

    The run's config is read from the checkpoint, so the split is the one training held out.
    """
    from .checkpoint import read_official
    from .config_io import config_from_dict
    from .data import build_dataset, input_spec
    from .export import load_encoder
    from .models import model_config

    path = Path(checkpoint)
    ckpt = read_official(path)
    if "config" not in ckpt:
        raise EvaluationError(f"{path}: has no run config; evaluate a training checkpoint of this project")
    cfg = config_from_dict(ckpt["config"])
    train_x, train_y = _inputs(build_dataset(cfg, "train", augment=False))
    test_x, test_y = _inputs(build_dataset(cfg, "holdout", augment=False))
    rows: list[ProbeResult] = []
    target_test = np.zeros((0, 0))
    encoders = ((("target", "LeJEPA encoder"),) if cfg.method.name == "lejepa"  # one encoder, no EMA copy
                else (("target", "I-JEPA target encoder"), ("context", "I-JEPA context encoder")))
    for which, label in encoders:
        encoder = load_encoder(path, which=which)  # type: ignore[arg-type]
        tr, te = extract_features(encoder, train_x, device=device), extract_features(encoder, test_x, device=device)
        rows.append(probe(label, tr, train_y, te, test_y, seed))
        if which == "target":
            target_test = te
    if baselines:
        torch.manual_seed(cfg.run.seed)  # the run's encoder at initialisation: its weights are drawn first
        config = model_config(cfg, input_spec(build_dataset(cfg, "holdout", augment=False)))
        random_encoder = config.encoder.build(config.init_std, config.depth_rescale)
        tr = extract_features(random_encoder, train_x, device=device)
        te = extract_features(random_encoder, test_x, device=device)
        rows.append(probe("same ViT, random init", tr, train_y, te, test_y, seed))
        rows.append(probe("raw pixels", raw_pixels(train_x), train_y, raw_pixels(test_x), test_y, seed))
    return EvalReport(rows, target_test, test_y, int(ckpt.get("step", 0)))
