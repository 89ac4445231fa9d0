"""The evaluation protocol: which encoders, which data, which probes, and the report.

:func:`evaluate` probes the frozen encoders of a checkpoint (ours or official; by default the *target*
encoder, which I-JEPA evaluates) and, as baselines in the same table, the same architecture at random
initialisation and the raw pixels. Features are streamed to a store on disk (a temporary folder, or
``cache`` to keep and reuse them), then every probe trains from chunked reads: memory does not grow
with the dataset. Each probe trains one head per point of its grid on most of the training split,
chooses the point whose head scores best on the rest (``selection_fraction``, drawn by the seed),
trains that point again on the whole training split, and scores it on the val split: the val
labels choose nothing.
"""

from __future__ import annotations

import json
import resource
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from jepa_torch.evaluation.features import (EncoderBatches, EncoderFeatures, EvaluationError, FeatureSource,
                                            FrameWiseFeatures, LabelledSplit, PixelFeatures, bound_heap_growth,
                                            extract, folder_splits, run_splits, stored_order, token_bytes)
from jepa_torch.evaluation.probes import (CHUNK_BYTES, ArrayBatches, AttentiveProbe, Batches, HeadGrid, LinearHead,
                                          Standardise, StoreBatches, knn_predict, predict, predict_on, train_heads)
from jepa_torch.evaluation.store import FeatureStore

__all__ = ["PROBES", "EvalConfig", "EvalReport", "LowShotScore", "ProbeScore", "evaluate", "parse_shots",
           "peak_rss_mib"]

PROBES = ("linear", "lastk", "attentive", "knn")
"""The probes: linear on pooled tokens, linear on the last k layers, attentive, kNN."""
_ARRAY = {"linear": "pooled", "lastk": "lastk", "attentive": "tokens", "knn": "pooled"}


@dataclass(frozen=True)
class EvalConfig:
    """Every choice of an evaluation (the command line's flags).

    Attributes:
        probes: a subset of :data:`PROBES`.
        last_k: blocks whose pooled tokens the ``lastk`` probe concatenates.
        linear: the linear heads' grid (``linear`` and ``lastk``).
        attentive: the attentive probes' grid.
        attentive_queries: learned query tokens of an attentive probe.
        attentive_blocks: blocks of an attentive probe: 1, I-JEPA's (one cross-attention block); V-JEPA 2's
            video probes use 4 (three self-attention blocks over the tokens first; each costs many times the
            cross-attention block, docs/evaluation.md).
        knn_k: neighbours of the kNN probe.
        selection_fraction: part of the training split that chooses each probe's head.
        low_shot: labelled training images per class (``"1"``, ``"10"``) or a fraction (``"1%"``).
        draws: low-shot subsets drawn per entry.
        batch_size, num_workers: feature extraction's DataLoader.
        seed: heads' initialisation, batch order, selection split and low-shot draws.
        device: where encoders and probes run: ``auto`` (CUDA when available, as training), ``cpu``,
            ``cuda`` or ``cuda:N``; stored resolved.
        progress: progress bars on stderr.
        cache: keep the features in this folder and reuse them (default: a temporary folder).
        img_size: image side for folder data (default: the encoder's).
        clips: videos only: evenly spaced clips per video whose features are averaged (V-JEPA's
            multi-clip evaluation); 1: the middle clip.
        label: videos only: the labels to probe (a ``labels.csv`` column); None: the run's ``data.label``.
        token_disk_gib: the attentive probe's tokens are stored (float16) when they take at most this
            much disk; otherwise the inputs are encoded again at every epoch of the probe.
    """

    probes: tuple[str, ...] = PROBES
    last_k: int = 4
    linear: HeadGrid = HeadGrid(epochs=100, batch_size=256, lrs=(1e-3, 1e-2, 1e-1), weight_decays=(1e-4, 1e-2, 1e-1),
                                min_steps=2000)
    attentive: HeadGrid = HeadGrid(epochs=20, batch_size=128, lrs=(1e-3, 3e-4), weight_decays=(0.01, 0.1),
                                   min_steps=500, min_batch=64)
    attentive_queries: int = 1
    attentive_blocks: int = 1
    knn_k: int = 20
    selection_fraction: float = 0.2
    low_shot: tuple[str, ...] = ()
    draws: int = 3
    batch_size: int = 128
    num_workers: int = 0
    seed: int = 0
    device: str = "auto"
    progress: bool = True
    cache: str | None = None
    img_size: int | None = None
    token_disk_gib: float = 16.0
    clips: int = 1
    label: str | None = None

    def __post_init__(self) -> None:
        bad = [p for p in self.probes if p not in PROBES]
        if bad or not self.probes:
            raise EvaluationError(f"--probes {' '.join(self.probes)}: choose among {' '.join(PROBES)}")
        if not 0 < self.selection_fraction < 1:
            raise EvaluationError(f"--selection-fraction {self.selection_fraction}: give a number in (0, 1)")
        if min(self.knn_k, self.draws, self.batch_size, self.last_k, self.clips, self.attentive_blocks) < 1:
            raise EvaluationError("--knn-k, --draws, --batch-size, --last-k, --clips and --attentive-blocks "
                                  "must be >= 1")
        for shots in self.low_shot:
            parse_shots(shots)
        if self.device == "auto":
            object.__setattr__(self, "device", "cuda" if torch.cuda.is_available() else "cpu")
        try:
            device = torch.device(self.device)
        except RuntimeError:
            raise EvaluationError(f"--device {self.device}: use auto, cpu, cuda or cuda:N") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise EvaluationError(f"--device {self.device}: no CUDA device is visible; use --device auto or cpu")


def parse_shots(text: str) -> tuple[Literal["per_class", "fraction"], float]:
    """``"10"`` -> ten images per class; ``"1%"`` -> 1% of the training split, stratified."""
    try:
        if text.endswith("%"):
            value = float(text[:-1])
            if 0 < value <= 100:
                return "fraction", value / 100
        elif int(text) >= 1:
            return "per_class", float(int(text))
    except ValueError:
        pass
    raise EvaluationError(f"--low-shot {text}: give images per class (1, 10) or a percentage (1%)")


@dataclass(frozen=True)
class ProbeScore:
    """One probe on one feature set: val accuracy of the chosen grid point, retrained on the whole
    training split; ``selection_accuracy`` is that point's score on the selection rows."""

    accuracy: float
    selection_accuracy: float | None
    hyper: dict[str, float]
    dim: int


@dataclass(frozen=True)
class LowShotScore:
    """One probe trained on low-shot subsets: val accuracy of each draw."""

    features: str
    probe: str
    shots: str
    images: int
    accuracies: list[float]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.accuracies)

    @property
    def std(self) -> float:
        return statistics.pstdev(self.accuracies)


@dataclass
class EvalReport:
    """What :func:`evaluate` measured.

    Attributes:
        rows: feature set name -> probe -> score (a probe that does not apply to a feature set is absent).
        low_shot: the low-shot scores.
        classes: class names.
        train_size, val_size: split sizes.
        step: the checkpoint's training step (0 when unknown).
        confusion: ``(classes, classes)`` counts (true row, predicted column) of the best probe of
            the first feature set, and that probe's name.
        projection: the first feature set's pooled val features projected on their first two
            principal components ``(val_size, 2)``, and their labels.
        seconds: wall time; peak_rss_mib: the process's peak resident memory (with its DataLoader workers).
    """

    rows: dict[str, dict[str, ProbeScore]]
    low_shot: list[LowShotScore]
    classes: list[str]
    train_size: int
    val_size: int
    step: int
    confusion: tuple[str, NDArray[np.int64]] | None = None
    projection: tuple[NDArray[np.float64], NDArray[np.int64], tuple[float, float]] | None = None
    seconds: float = 0.0
    peak_rss_mib: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)

    def table(self) -> str:
        """The plain-text tables: probes per feature set, then low-shot."""
        probes = [p for p in PROBES if any(p in r for r in self.rows.values())]
        layers = next((int(r["lastk"].hyper["layers"]) for r in self.rows.values() if "lastk" in r), 0)
        header = {"linear": "linear", "lastk": f"last-{layers} lin.", "attentive": "attentive",
                  "knn": f"kNN k={self.settings.get('knn_k', 20)}"}
        lines = [f"{'features':30s} {'dim':>5s} " + " ".join(f"{header[p]:>12s}" for p in probes)]
        for name, scores in self.rows.items():
            dim = next(iter(scores.values())).dim if scores else 0
            cells = [f"{100 * scores[p].accuracy:11.2f}%" if p in scores else f"{'-':>12s}" for p in probes]
            lines.append(f"{name:30s} {dim:5d} " + " ".join(cells))
        if self.low_shot:
            lines += ["", f"low-shot ({len(self.low_shot[0].accuracies)} draws, mean ± std)",
                      f"{'features':30s} {'probe':>9s} {'labels':>10s} {'images':>7s} {'accuracy':>16s}"]
            lines += [f"{s.features:30s} {s.probe:>9s} {s.shots:>10s} {s.images:7d} "
                      f"{100 * s.mean:8.2f} ± {100 * s.std:4.2f}%" for s in self.low_shot]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step, "train_size": self.train_size, "val_size": self.val_size, "classes": self.classes,
            "rows": {n: {p: asdict(s) for p, s in r.items()} for n, r in self.rows.items()},
            "low_shot": [{**asdict(s), "mean": s.mean, "std": s.std} for s in self.low_shot],
            "confusion": None if self.confusion is None else {"probe": self.confusion[0],
                                                              "counts": self.confusion[1].tolist()},
            "seconds": self.seconds, "peak_rss_mib": self.peak_rss_mib, "settings": self.settings,
            "torch": torch.__version__,
        }


def peak_rss_mib() -> float:
    """Peak resident memory of this process and of its finished children (DataLoader workers), MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024.0  # KiB on Linux


# ----------------------------------------------------------------------------- encoders and data


@dataclass(frozen=True)
class _Checkpoint:
    path: Path
    config: Any  # the run's TrainConfig, or None for an official file or an export
    step: int
    method: str
    content: dict[str, Any] | None  # the file's entries, read (and verified) once; None for an export


def _open(path: Path) -> _Checkpoint:
    from jepa_torch.io.checkpoint import CheckpointError, read_official
    from jepa_torch.config.yaml_io import config_from_dict

    if path.suffix == ".safetensors":
        return _Checkpoint(path, None, 0, "export", None)
    ckpt = read_official(path)
    if not any(k in ckpt for k in ("target_encoder", "encoder")):
        raise CheckpointError(f"{path}: has neither 'target_encoder' nor 'encoder' (keys: {sorted(ckpt)[:6]}); "
                              "give a JEPA checkpoint (ours, official I-JEPA, or a .safetensors export)")
    cfg = config_from_dict(ckpt["config"]) if "config" in ckpt else None
    method = "official" if cfg is None else cfg.method.name
    return _Checkpoint(path, cfg, int(ckpt.get("step", ckpt.get("epoch", 0))), method, ckpt)


def _encoder(ckpt: _Checkpoint, which: str) -> nn.Module:
    from jepa_torch.io.export import load_encoder

    source = ckpt.path if ckpt.content is None else ckpt.content
    encoder: nn.Module = load_encoder(source, which=which)  # type: ignore[arg-type]
    return encoder


def _label(ckpt: _Checkpoint, which: str) -> str:
    if ckpt.method == "export":
        return "exported encoder"
    if ckpt.method == "official":
        return f"{which} encoder"
    from jepa_torch.methods import get_method

    method = get_method(ckpt.method)
    if method.encoders["target"] == method.encoders["context"]:  # one encoder, no EMA copy
        return f"{method.title} encoder" + (" (context)" if which == "context" else "")
    return f"{method.title} {which} encoder"


def _random_twin(ckpt: _Checkpoint, reference: nn.Module) -> nn.Module:
    """The same architecture at initialisation: a run's own first draw (its seed; the encoder's weights are
    drawn first), else seed 0. Built from the checkpoint's model config, or the tensors' shapes without one."""
    from jepa_torch.io.checkpoint import infer_vit_config
    from jepa_torch.models.jepa import JEPAConfig, make_encoder

    torch.manual_seed(0 if ckpt.config is None else ckpt.config.run.seed)
    stored = None if ckpt.content is None else ckpt.content.get("model")
    if stored is not None:
        config = JEPAConfig.from_dict(stored)
        return make_encoder(config.encoder, config.init_std, config.depth_rescale)
    rescale = False if ckpt.config is None else bool(ckpt.config.model.depth_rescale)
    return make_encoder(infer_vit_config(reference.state_dict()), depth_rescale=rescale)


def _image_size(encoder: nn.Module, override: int | None, path: Path) -> int:
    size: tuple[int, int] | None = getattr(encoder, "img_size", None)
    if size is None:
        raise EvaluationError(f"{path}: holds a sequence encoder; image folders need an image (ViT) checkpoint")
    if override is not None:
        patch: tuple[int, int] = getattr(encoder, "patch_size")
        if override % patch[0] or override % patch[1]:
            raise EvaluationError(f"--img-size {override}: not a multiple of the patch {patch[0]}")
        return override
    if size[0] != size[1]:
        raise EvaluationError(f"{path}: a {size[0]}x{size[1]} encoder; give --img-size for square crops")
    return int(size[0])


def _check_channels(encoder: nn.Module, path: Path) -> None:
    chans = getattr(encoder, "in_chans", 3)
    if chans != 3:
        raise EvaluationError(f"{path}: an encoder of {chans}-channel images; image folders give RGB (3 channels)")


# ----------------------------------------------------------------------------- probes on one feature set


def _selection(n: int, fraction: float, seed: int) -> NDArray[np.bool_]:
    """Which stored training rows choose the head (True) rather than train it."""
    if n < 20:
        raise EvaluationError(f"the training split has {n} images; probes need at least 20 (some choose the head)")
    chosen = np.zeros(n, dtype=bool)
    picked = np.random.default_rng([seed, 0x73656C]).choice(n, size=max(2, round(fraction * n)), replace=False)
    chosen[picked] = True
    return chosen


@dataclass(frozen=True)
class _Live:
    """Tokens that were not stored: the attentive probe encodes the inputs again (see ``token_disk_gib``)."""

    source: EncoderFeatures
    train: LabelledSplit
    val: LabelledSplit
    tokens: tuple[int, int]  # (N, D)
    chunk: int  # the rows a chunk of stored tokens would hold


def _head_maker(probe: str, width: int, classes: int, num_heads: int, cfg: EvalConfig) -> Any:
    if probe == "attentive":
        return lambda: AttentiveProbe(width, classes, num_heads, cfg.attentive_queries, blocks=cfg.attentive_blocks)
    return lambda: LinearHead(width, classes)


def _fit(probe: str, train: FeatureStore, val: FeatureStore, classes: int, cfg: EvalConfig, num_heads: int,
         select: NDArray[np.bool_], live: _Live | None = None,
         label: str = "") -> tuple[ProbeScore, NDArray[np.int64]]:
    """Train the probe's grid, choose on ``select``, retrain the choice on every training row, score on val."""
    device = torch.device(cfg.device)
    array = _ARRAY[probe]
    train_y, val_y = train.read("labels", 0, train.rows), val.read("labels", 0, val.rows)
    if probe == "knn":
        preds = knn_predict(train, train_y, val, classes, cfg.knn_k, array)
        return ProbeScore(float((preds == val_y).mean()), None, {"k": float(min(cfg.knn_k, len(train_y)))},
                          train.row_shape(array)[0]), preds
    grid = cfg.attentive if probe == "attentive" else cfg.linear
    stored = array in train
    if not stored and live is None:
        raise ValueError(f"_fit: {probe} needs {array}, which is neither stored nor computable")
    shape = train.row_shape(array) if stored else live.tokens  # type: ignore[union-attr]
    workers = cfg.num_workers

    def batches(rows: NDArray[np.bool_]) -> Batches:
        size = grid.batch_for(int(rows.sum()))
        if stored:
            return StoreBatches(train, array, rows, size, cfg.seed)
        assert live is not None
        return EncoderBatches(live.source, live.train, rows, size, cfg.seed, live.chunk, workers)

    def scores(heads: list[nn.Module], prepare: Any, rows: NDArray[np.bool_] | None, on_val: bool) -> NDArray[Any]:
        if stored:
            return predict(heads, val if on_val else train, array, device, prepare, rows)
        assert live is not None
        split = live.val if on_val else live.train
        encoder = EncoderBatches(live.source, split, np.ones(len(split), bool), grid.batch_size, 0, 1, workers)
        positions = np.arange(len(split)) if on_val or rows is None else (
            stored_order(len(split), shuffled=True)[np.flatnonzero(rows)])  # stored row -> input
        return predict_on(heads, (t for t, _ in encoder.encode(positions)), device, prepare)

    make = _head_maker(probe, shape[-1] if probe == "attentive" else int(np.prod(shape)), classes, num_heads, cfg)
    prepare: Any = Standardise(train, array, ~select) if probe != "attentive" else (lambda x: x)
    bar = (lambda what: f"{label}{probe} probe, {what}") if cfg.progress else (lambda what: None)
    heads = train_heads(make, batches(~select), grid, cfg.seed, device, prepare,
                        progress=bar(f"{len(grid.points())} heads"))
    chosen = (scores(heads, prepare, select, on_val=False) == train_y[select]).mean(axis=1)
    best = int(np.argmax(chosen))
    lr, wd = grid.points()[best]
    # the chosen point trained again on the whole training split (selection rows included), then scored
    if probe != "attentive":
        prepare = Standardise(train, array)
    refit = replace(grid, lrs=(lr,), weight_decays=(wd,))
    head = train_heads(make, batches(np.ones(train.rows, dtype=bool)), refit, cfg.seed, device, prepare,
                       progress=bar("the chosen head on every row"))
    preds = scores(head, prepare, None, on_val=True)[0]
    dim = int(shape[-1]) if probe == "attentive" else int(np.prod(shape))  # attentive: the token width
    hyper = {"lr": lr, "weight_decay": wd}
    if probe == "lastk":
        hyper["layers"] = float(dim // train.row_shape("pooled")[0])
    return ProbeScore(float((preds == val_y).mean()), float(chosen[best]), hyper, dim), preds


def _draw(labels: NDArray[np.int64], shots: str, seed: int) -> NDArray[np.int64]:
    kind, value = parse_shots(shots)
    rng = np.random.default_rng([seed, 0x6C6F77])
    rows = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        take = int(value) if kind == "per_class" else max(1, round(value * len(members)))
        rows.append(rng.choice(members, size=min(take, len(members)), replace=False))
    return np.sort(np.concatenate(rows))


def _low_shot(name: str, train: FeatureStore, val: FeatureStore, classes: int, cfg: EvalConfig,
              chosen: dict[str, ProbeScore], num_heads: int) -> list[LowShotScore]:
    """Linear (pooled, last-k), attentive (stored tokens) and kNN on low-shot subsets (V-JEPA's low-shot
    frozen evaluation); every head keeps the full-data probe's learning rate and weight decay, the linear
    heads the full training split's standardisation."""
    device = torch.device(cfg.device)
    train_y, val_y = train.read("labels", 0, train.rows), val.read("labels", 0, val.rows)
    out = []
    for shots in cfg.low_shot:
        for probe in [p for p in ("linear", "lastk", "attentive", "knn") if p in chosen and _ARRAY[p] in train]:
            array, accs, images = _ARRAY[probe], [], 0
            prepare = Standardise(train, array) if probe in ("linear", "lastk") else None
            for draw in range(cfg.draws):
                rows = _draw(train_y, shots, cfg.seed * 1000 + draw)
                images = len(rows)
                if probe == "attentive":  # tokens are too large to gather: batches read the drawn rows
                    grid = replace(cfg.attentive, lrs=(chosen[probe].hyper["lr"],),
                                   weight_decays=(chosen[probe].hyper["weight_decay"],))
                    drawn = np.zeros(train.rows, dtype=bool)
                    drawn[rows] = True
                    make = _head_maker(probe, train.row_shape(array)[-1], classes, num_heads, cfg)
                    head = train_heads(make, StoreBatches(train, array, drawn, grid.batch_for(len(rows)),
                                                          cfg.seed + draw),
                                       grid, cfg.seed + draw, device, lambda t: t,
                                       progress=f"{name}: {probe}, {shots} shots" if cfg.progress else None)
                    accs.append(float((predict(head, val, array, device)[0] == val_y).mean()))
                    continue
                x, y = train.take(array, rows), train_y[rows]
                if probe == "knn":
                    preds = knn_predict(x, y, val, classes, cfg.knn_k, array)
                else:
                    assert prepare is not None
                    hyper = chosen[probe].hyper
                    grid = replace(cfg.linear, lrs=(hyper["lr"],), weight_decays=(hyper["weight_decay"],))
                    batches = ArrayBatches(x, y, grid.batch_for(len(y)), cfg.seed + draw)
                    head = train_heads(lambda: LinearHead(x.shape[1], classes), batches, grid, cfg.seed + draw, device,
                                       prepare, progress=f"{name}: {probe}, {shots} shots" if cfg.progress else None)
                    preds = predict(head, val, array, device, prepare)[0]
                accs.append(float((preds == val_y).mean()))
            out.append(LowShotScore(name, probe, shots, images, accs))
    return out


def _projection(store: FeatureStore) -> tuple[NDArray[np.float64], NDArray[np.int64], tuple[float, float]]:
    """The pooled val features on their first two principal components, fitted in chunks."""
    from sklearn.decomposition import IncrementalPCA

    rows = 1024
    pca = IncrementalPCA(n_components=2)
    for _, chunk in store.chunks("pooled", rows):
        if len(chunk) >= 2:
            pca.partial_fit(chunk.astype(np.float64))
    xy = np.concatenate([pca.transform(c.astype(np.float64)) for _, c in store.chunks("pooled", rows)])
    ratio = pca.explained_variance_ratio_
    return xy, store.read("labels", 0, store.rows), (float(ratio[0]), float(ratio[1]))


# ----------------------------------------------------------------------------- the whole protocol


def evaluate(checkpoint: str | Path, *, train: str | None = None, val: str | None = None,
             encoders: Sequence[str] = ("target",), baselines: bool = True,
             config: EvalConfig = EvalConfig(), frame_encoders: Sequence[str | Path] = ()) -> EvalReport:
    """Probe the frozen encoders of a checkpoint, with baselines, on a run's split or ImageFolder splits.

    Args:
        checkpoint: a training checkpoint of this project, an official I-JEPA ``.pth.tar`` or a
            ``.safetensors`` export.
        train, val: ImageFolder roots; both or neither (then the run's own training and held-out splits,
            which needs a training checkpoint of this project).
        encoders: ``target`` (the EMA encoder I-JEPA evaluates) and/or ``context``.
        baselines: also probe the same architecture at random initialisation and the raw pixels.
        config: probes, grids, low-shot, device, cache.
        frame_encoders: videos only: image checkpoints (or exports) whose target encoder is applied frame by
            frame, its tokens averaged over time, as further baselines (``FrameWiseFeatures``).

    Raises:
        EvaluationError, CheckpointError, DataError: one line naming the culprit and the fix.

    On Linux (glibc) this fixes the process's malloc mmap threshold at 4 MiB
    (:func:`~jepa_torch.evaluation.features.bound_heap_growth`), which keeps memory flat over long
    extractions; the setting stays for the rest of the process.
    """
    start = time.perf_counter()
    bound_heap_growth()  # else glibc's heap grows with the number of batches (see its docstring)
    path = Path(checkpoint)
    if (train is None) != (val is None):
        raise EvaluationError("give both --train PATH and --val PATH, or neither (the run's own held-out split)")
    bad = [e for e in encoders if e not in ("target", "context")]
    if bad or not encoders:
        raise EvaluationError(f"--encoder {' '.join(encoders)}: choose target and/or context")
    ckpt = _open(path)
    loaded = [(which, _encoder(ckpt, which)) for which in dict.fromkeys(encoders)]
    if train is None or val is None:
        if ckpt.config is None:
            raise EvaluationError(f"{path}: has no run config, so no held-out split; give --train PATH --val PATH")
        run_cfg = ckpt.config if config.label is None else replace(
            ckpt.config, data=replace(ckpt.config.data, label=config.label))
        train_split, val_split, classes = run_splits(run_cfg, config.clips)
        data_key: dict[str, Any] = {"data": "run", "config": asdict(run_cfg.data), "clips": config.clips}
    else:
        _check_channels(loaded[0][1], path)
        size = _image_size(loaded[0][1], config.img_size, path)
        train_split, val_split, classes = folder_splits(train, val, size)
        data_key = {"data": "folders", "train": str(Path(train).resolve()), "val": str(Path(val).resolve()),
                    "img_size": size}
    device = torch.device(config.device)
    named: list[tuple[str, nn.Module, type[EncoderFeatures]]] = [
        (_label(ckpt, w), e, EncoderFeatures) for w, e in loaded]
    if baselines:
        named.append(("same ViT, random init", _random_twin(ckpt, loaded[0][1]), EncoderFeatures))
    for frames_path in frame_encoders:
        frame_ckpt = _open(Path(frames_path))
        image_encoder = _encoder(frame_ckpt, "target")
        if len(getattr(image_encoder, "grid", ())) != 2:
            raise EvaluationError(f"--frame-encoder {frames_path}: not an image encoder (a ViT over 2-D patches)")
        named.append((f"frame-wise {_label(frame_ckpt, 'target')}", image_encoder, FrameWiseFeatures))
    sources: list[tuple[FeatureSource, _Live | None]] = []
    for name, encoder, kind in named:
        features = kind(name, encoder, config.last_k, False, device)
        live = None
        if "attentive" in config.probes:
            n, d, size_train = token_bytes(features, train_split)
            if size_train * (len(train_split) + len(val_split)) / len(train_split) <= config.token_disk_gib * 2**30:
                features.arrays = (*features.arrays, "tokens")
            else:  # too large to store: the attentive probe encodes the inputs again, every epoch
                live = _Live(features, train_split, val_split, (n, d), max(1, CHUNK_BYTES // (n * d * 2)))
        sources.append((features, live))
    if baselines:
        sources.append((PixelFeatures(), None))
    stat = path.stat()
    base_key = {"checkpoint": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                "last_k": config.last_k, **data_key}
    num_heads = max(1, int(getattr(loaded[0][1], "embed_dim", 64)) // 64)
    report = EvalReport({}, [], classes, len(train_split), len(val_split), ckpt.step,
                        settings={k: v for k, v in asdict(config).items() if k not in ("linear", "attentive")}
                        | {"linear": asdict(config.linear), "attentive": asdict(config.attentive),
                           "checkpoint": str(path), "encoders": list(encoders), "train": train, "val": val})
    with tempfile.TemporaryDirectory(prefix="jepa-eval-") as scratch:
        root = Path(config.cache) if config.cache else Path(scratch)
        for index, (source, live) in enumerate(sources):
            slug = source.name.replace(" ", "_").replace(",", "").replace("(", "").replace(")", "")
            stores = []
            for split, shuffled in ((train_split, True), (val_split, False)):
                which = "train" if shuffled else "val"
                key = {**base_key, "features": source.name}
                stores.append(extract(source, split, root / slug / which, key, shuffled=shuffled,
                                      batch_size=config.batch_size, num_workers=config.num_workers,
                                      progress=config.progress, label=f"{source.name}: {which}"))
            tr, va = stores
            select = _selection(tr.rows, config.selection_fraction, config.seed)
            scores: dict[str, ProbeScore] = {}
            best: tuple[float, str, NDArray[np.int64]] | None = None
            for probe in config.probes:
                if _ARRAY[probe] not in tr and not (probe == "attentive" and live is not None):
                    continue
                score, preds = _fit(probe, tr, va, len(classes), config, num_heads, select, live, f"{source.name}: ")
                scores[probe] = score
                if best is None or score.accuracy > best[0]:
                    best = (score.accuracy, probe, preds)
            report.rows[source.name] = scores
            if config.low_shot:  # the baselines too: a low-shot claim needs them beside it
                report.low_shot += _low_shot(source.name, tr, va, len(classes), config, scores, num_heads)
            if index == 0:
                report.projection = _projection(va)
                if best is not None:
                    val_y = va.read("labels", 0, va.rows)
                    counts = np.zeros((len(classes), len(classes)), np.int64)
                    np.add.at(counts, (val_y, best[2]), 1)
                    report.confusion = (best[1], counts)
    report.seconds = time.perf_counter() - start
    report.peak_rss_mib = peak_rss_mib()
    return report


def write_json(report: EvalReport, path: str | Path) -> Path:
    """The report as JSON (atomically)."""
    from jepa_torch.io.files import atomic_write

    text = json.dumps(report.to_dict(), indent=1).encode()
    atomic_write(Path(path), lambda f: f.write(text))
    return Path(path)
