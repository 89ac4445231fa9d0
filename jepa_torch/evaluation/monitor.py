"""Collapse monitors: RankMe and the spread of the centred features.

A collapsing JEPA maps every input to (nearly) the same representation, which the
loss cannot see: predictions and targets agree trivially. These statistics of a
fixed batch's pooled features can. Both are taken of the **centred** features (the batch mean
removed): pooled ViT features share one large common direction (mean cosine near 1 early in a
healthy run), which says nothing about whether inputs are told apart.

- **RankMe** (Garrido et al., 2023): ``exp(entropy(s / sum(s)))`` of the singular values
  ``s`` of the centred ``(N, D)`` feature matrix; between 1 (rank one, collapsed) and ``min(N, D)``.
- **feature std**: the mean over dimensions of the standard deviation of the centred,
  L2-normalised features; about ``1 / sqrt(D)`` for well-spread features, 0 at collapse.

A reading is low when RankMe is under ``max(2, 1% of D)`` or the feature std under
``0.2 / sqrt(D)``. The monitor warns only when ``patience`` consecutive readings after the warm-up
are low (one low reading of a fixed batch is noise), names the statistic that is low with its
threshold and the online probe's accuracy beside it, and says so when the readings recover.

The JEPA loss is only a proxy for what the features are worth, so the monitor also runs an
**online probe** when the run has labels and a held-out split: a linear probe (standardised logistic
regression, ``C = 0.1``) and kNN (cosine, k = 20, as the final evaluation) fitted on the fixed batch
and scored on (at most ``probe_size`` of) the held-out split. It reuses the fixed batch's features,
so it adds the cost of encoding those held-out inputs and of fitting the two probes.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from jepa_torch.evaluation.online import linear_probe_accuracy
from jepa_torch.evaluation.probes import knn_predict

log = logging.getLogger(__name__)

__all__ = ["ONLINE_PROBE_C", "CollapseStats", "FixedBatchMonitor", "collapse_stats", "feature_std", "rankme",
           "std_threshold", "warn_threshold"]

ONLINE_PROBE_C = 0.1
"""The online linear probe's inverse regularisation (fixed: no cross-validation during training)."""


def _centred(features: Tensor) -> Tensor:
    """``(N, D)`` features less their mean; rows left with rounding noise only (equal rows) are exactly 0."""
    z = features.detach().double().reshape(features.shape[0], -1)  # (N, D)
    c = z - z.mean(dim=0, keepdim=True)
    noise = 1e-9 * float(z.abs().max()) if z.numel() else 0.0
    return torch.where(c.norm(dim=1, keepdim=True) > noise, c, torch.zeros_like(c))


def rankme(features: Tensor, eps: float = 1e-7) -> float:
    """Effective rank of centred ``(N, D)`` features from the entropy of their normalised singular values."""
    s = torch.linalg.svdvals(_centred(features))
    total = s.sum()
    if not total > 0:  # every row equal
        return 1.0
    p = s / total + eps
    return float(torch.exp(-(p * torch.log(p)).sum()))


def feature_std(features: Tensor) -> float:
    """Mean per-dimension std of the centred, L2-normalised ``(N, D)`` features."""
    z = torch.nn.functional.normalize(_centred(features), dim=1)
    return float(z.std(dim=0).mean())


@dataclass(frozen=True)
class CollapseStats:
    """The monitors of one evaluation; ``low`` names each statistic under its threshold."""

    rankme: float
    feature_std: float
    dim: int

    @property
    def low(self) -> list[str]:
        """``"RankMe 1.3 < 2"``-style descriptions of the statistics under their thresholds."""
        out = []
        if self.rankme < warn_threshold(self.dim):
            out.append(f"RankMe {self.rankme:.3g} < {warn_threshold(self.dim):.3g}")
        if self.feature_std < std_threshold(self.dim):
            out.append(f"feature std {self.feature_std:.3g} < {std_threshold(self.dim):.3g} (0.2 / sqrt({self.dim}))")
        return out

    @property
    def collapsing(self) -> bool:
        return bool(self.low)


def warn_threshold(dim: int) -> float:
    """The RankMe below which a reading is low: 1% of the feature width, at least 2."""
    return max(2.0, 0.01 * dim)


def std_threshold(dim: int) -> float:
    """The feature std below which a reading is low: a fifth of a well-spread ``1 / sqrt(dim)``."""
    return 0.2 / math.sqrt(dim)


def collapse_stats(features: Tensor) -> CollapseStats:
    """Both monitors of pooled ``(N, D)`` features."""
    return CollapseStats(rankme(features), feature_std(features), int(features.shape[-1]))


def _spread(length: int, size: int) -> list[int]:
    """``min(size, length)`` positions evenly over ``0 .. length - 1`` (a split sorted by class keeps every class)."""
    n = min(size, length)
    return sorted({round(i * (length - 1) / max(n - 1, 1)) for i in range(n)})


class FixedBatchMonitor:
    """The monitors on one fixed batch of un-augmented training inputs, for the whole run.

    Args:
        dataset: a split indexed by ``(seed, epoch, index)`` (``jepa_torch.data.datasets``), un-augmented.
        device: where the encoder runs.
        size: how many inputs (spread evenly over the split, so a split sorted by class keeps every class).
        warn_after: no collapse warning up to this step (features of a freshly initialised ViT
            are nearly rank one; they spread once the warm-up has run).
        holdout: the held-out split, un-augmented; with labels on both, the online probe runs.
        probe_size: how many held-out inputs (spread evenly) the online probe scores on, kept in memory.
        patience: consecutive low readings (after ``warn_after``) before the warning.
        speak: log the warning and recovery lines (the main process of a run; others measure silently).
        chunk: inputs encoded at once; None: 32 on a CPU (a chunk's activations stay in its caches: the video
            demo's pass ran 1.45x faster than at 256 on a 2-core AMD EPYC, ``benchmarks/bench_monitor.py``),
            256 on an accelerator.
    """

    def __init__(self, dataset: Dataset[Tensor], device: torch.device, size: int = 512,
                 warn_after: int = 0, holdout: Dataset[Tensor] | None = None, probe_size: int = 1024,
                 patience: int = 3, speak: bool = True, chunk: int | None = None) -> None:
        if patience < 1:
            raise ValueError(f"FixedBatchMonitor: patience={patience} must be >= 1")
        if chunk is not None and chunk < 1:
            raise ValueError(f"FixedBatchMonitor: chunk={chunk} must be >= 1")
        self.chunk = chunk or (32 if device.type == "cpu" else 256)
        picked = _spread(len(dataset), size)  # type: ignore[arg-type]
        self.inputs = torch.stack([dataset[(0, 0, i)] for i in picked]).to(device)
        self.warn_after, self.patience, self.speak = warn_after, patience, speak
        self.low_streak = 0  # consecutive low readings after warn_after
        self.warned = False  # a warning stands (no recovery line since)
        labels, held_labels = getattr(dataset, "labels", None), getattr(holdout, "labels", None)
        self.probe: tuple[Tensor, Tensor, Tensor] | None = None
        if holdout is not None and labels is not None and held_labels is not None and len(held_labels):
            held_picked = _spread(len(held_labels), probe_size)
            held = torch.stack([holdout[(0, 0, i)] for i in held_picked]).to(device)
            self.probe = (labels[picked], held, held_labels[held_picked])

    def _pooled(self, encoder: nn.Module, inputs: Tensor) -> Tensor:
        return torch.cat([encoder(c).float().mean(dim=1) for c in torch.split(inputs, self.chunk)])  # (n, D)

    @torch.no_grad()
    def measure(self, encoder: nn.Module, step: int) -> dict[str, float]:
        """``rankme`` and ``feature_std`` of the encoder's pooled tokens, and ``probe_linear`` and
        ``probe_knn`` (held-out accuracies) when the run has labels; warns after ``patience`` low readings
        in a row, and says when they recover."""
        was_training = encoder.training
        encoder.eval()
        features = self._pooled(encoder, self.inputs)  # (n, D)
        out: dict[str, float] = {}
        if self.probe is not None:
            labels, held, held_labels = self.probe
            train_x, test_x = features.double().cpu().numpy(), self._pooled(encoder, held).double().cpu().numpy()
            train_y, test_y = labels.numpy(), held_labels.numpy()
            out["probe_linear"] = linear_probe_accuracy(train_x, train_y, test_x, test_y, c_grid=(ONLINE_PROBE_C,))[0]
            classes = int(max(train_y.max(), test_y.max())) + 1
            out["probe_knn"] = float((knn_predict(train_x, train_y, test_x, classes) == test_y).mean())
        encoder.train(was_training)
        stats = collapse_stats(features)
        self._judge(stats, step, out.get("probe_linear"))
        return {"rankme": stats.rankme, "feature_std": stats.feature_std, **out}

    def _judge(self, stats: CollapseStats, step: int, probe: float | None) -> None:
        """Count the low readings in a row; warn at ``patience`` of them, and once more only after a recovery."""
        beside = "" if probe is None else f"; online linear probe {probe:.1%}"
        if stats.collapsing and step > self.warn_after:
            self.low_streak += 1
            if self.low_streak >= self.patience and not self.warned:
                self.warned = True
                if self.speak:
                    log.warning("step %d: representations are collapsing: %s over the last %d monitor readings%s; "
                                "see docs/evaluation.md for remedies", step, " and ".join(stats.low),
                                self.low_streak, beside)
            return
        self.low_streak = 0
        if self.warned and not stats.collapsing:
            self.warned = False
            if self.speak:
                log.warning("step %d: representations recovered: RankMe %.3g, feature std %.3g, both above their "
                            "thresholds%s", step, stats.rankme, stats.feature_std, beside)
