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

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn

__all__ = ["ProbeResult", "extract_features", "format_table", "knn_accuracy", "linear_probe_accuracy", "probe"]

C_GRID = tuple(float(c) for c in np.logspace(-3, 2, 6))


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

    ``C`` is picked by 3-fold stratified cross-validation on the training split alone.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
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
