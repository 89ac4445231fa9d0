"""What the probes read: labelled splits, and the frozen features of each split streamed to disk.

Two kinds of data:

- **a run's own split** (a training checkpoint of this project): the training split and the held-out
  split that training never saw (``data.holdout_fraction``), un-augmented, as training built them;
- **ImageFolder splits** (``--train PATH --val PATH``): ``<root>/<class>/<image>``, resized to
  ``img_size * 256 / 224``, centre-cropped to ``img_size`` and ImageNet-normalised (the official
  evaluation transform). The val folder's classes must be among the train folder's; its labels are the
  train folder's class numbers.

Extraction runs the encoder under ``torch.no_grad`` over a ``DataLoader`` and appends each batch's
features to a :class:`~jepa_torch.evaluation.store.FeatureStore`: ``pooled`` (the last layer's tokens
averaged, ``(D,)``), ``lastk`` (the average-pooled tokens of each of the last ``k`` blocks, each
through the final norm, concatenated: ``(k * D,)``), and for the attentive probe ``tokens`` (the last
layer's tokens, float16, ``(N, D)``, when they fit the disk budget; otherwise :class:`EncoderBatches`
encodes the inputs again for every epoch of that probe, in the order stored tokens would be read).
The training split is written in a fixed shuffled order, so a contiguous chunk of it is a random
sample, which is what lets the probes train from chunked reads.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from jepa_torch.data.datasets import DataError, ImageFolderDataset, JepaDataset, _one_line
from jepa_torch.data.transforms import official_transforms
from jepa_torch.evaluation.store import FeatureStore, StoreWriter

log = logging.getLogger(__name__)

__all__ = ["EncoderBatches", "EncoderFeatures", "bound_heap_growth", "EvaluationError", "FeatureSource", "LabelledSplit", "PixelFeatures",
           "extract", "folder_splits", "run_splits", "stored_order", "token_bytes"]

ORDER_SEED = 0x65766F72
"""Seeds the fixed order in which a training split's features are stored."""


class EvaluationError(ValueError):
    """A checkpoint, folder or option that cannot be evaluated; the message names it and the fix."""


class _Labelled(Dataset[tuple[Tensor, int]]):
    def __init__(self, split: JepaDataset, labels: NDArray[np.int64]) -> None:
        self.split, self.labels = split, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.split[(0, 0, index)], int(self.labels[index])


@dataclass(frozen=True)
class LabelledSplit:
    """One split: a dataset of ``(input, label)`` and what it is (for tables and cache keys)."""

    dataset: Dataset[tuple[Tensor, int]]
    labels: NDArray[np.int64]
    description: str

    def __len__(self) -> int:
        return len(self.labels)


def run_splits(cfg: Any, clips: int = 1) -> tuple[LabelledSplit, LabelledSplit, list[str]]:
    """A run's training split and held-out split, un-augmented, with its class names.

    ``clips``: for videos, this many evenly spaced clips per video, whose features are averaged."""
    from jepa_torch.data.datasets import build_dataset

    if not cfg.data.holdout_fraction > 0:
        raise EvaluationError("the run held out no data (data.holdout_fraction=0); give --train PATH --val PATH "
                              "labelled image folders")
    out = []
    for split in ("train", "holdout"):
        ds = build_dataset(cfg, split, augment=False)
        sampler = getattr(ds, "sampler", None)
        if sampler is not None and clips > 1:
            ds.sampler = replace(sampler, sampling="uniform", num_clips=clips)  # type: ignore[attr-defined]
        if ds.labels is None:
            what = cfg.data.dataset if cfg.data.path is None else f"{cfg.data.dataset} {cfg.data.path}"
            raise EvaluationError(f"the run's data ({what}) has no labels to probe; give --train PATH --val PATH "
                                  "labelled image folders")
        labels = ds.labels.numpy().astype(np.int64)
        out.append(LabelledSplit(_Labelled(ds, labels), labels, f"{cfg.data.dataset} {split} split"))
    named = getattr(ds, "classes", None)  # a video folder's class names, in label order
    classes = list(named) if named else [str(c) for c in range(int(max(out[0].labels.max(),
                                                                         out[1].labels.max())) + 1)]
    return out[0], out[1], classes


def _classes(root: str, flag: str) -> list[str]:
    path = Path(root)
    if not path.is_dir():
        what = "is not a folder" if path.exists() else "does not exist"
        raise EvaluationError(f"{flag} {root}: {what}; give an ImageFolder root <path>/<class>/<image>")
    classes = sorted(p.name for p in path.iterdir() if p.is_dir())
    if not classes:
        raise EvaluationError(f"{flag} {root}: has no class subfolders; put images in <path>/<class>/<image>")
    return classes


def folder_splits(train: str, val: str, img_size: int) -> tuple[LabelledSplit, LabelledSplit, list[str]]:
    """ImageFolder splits with the evaluation transform at ``img_size``; val labels use train's numbering."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, make_dataset

    classes = _classes(train, "--train")
    val_classes = _classes(val, "--val")
    unknown = [c for c in val_classes if c not in classes]
    if unknown:
        raise EvaluationError(f"--val {val}: classes {unknown[:3]}{' ...' if len(unknown) > 3 else ''} are not "
                              f"classes of --train {train}; give the val split of the same dataset")
    index = {c: i for i, c in enumerate(classes)}
    transform = official_transforms(img_size, from_pil=True, augment=False)
    out = []
    for root, flag, names in ((train, "--train", classes), (val, "--val", val_classes)):
        samples = make_dataset(root, {c: index[c] for c in names}, extensions=IMG_EXTENSIONS, allow_empty=True)
        if not samples:
            raise EvaluationError(f"{flag} {root}: has no image files (.jpg, .png, ...) in its class subfolders")
        labels = np.asarray([s[1] for s in samples], dtype=np.int64)
        ds = ImageFolderDataset(np.arange(len(samples)), samples, img_size, transform)
        out.append(LabelledSplit(_Labelled(ds, labels), labels, f"{root} ({len(samples)} images)"))
    missing = sorted(set(classes) - set(val_classes))
    if missing:
        log.warning("--val %s has no folder for %d of the %d train classes (first: %s)", val, len(missing),
                    len(classes), missing[0])
    return out[0], out[1], classes


class FeatureSource:
    """Maps a batch of inputs to named feature arrays (see the module docstring)."""

    name: str
    arrays: tuple[str, ...]

    def __call__(self, inputs: Tensor) -> dict[str, Tensor]:
        raise NotImplementedError


class EncoderFeatures(FeatureSource):
    """A frozen encoder's ``pooled``, ``lastk`` and (``tokens=True``) ``tokens`` features.

    ``lastk`` concatenates ``min(last_k, depth)`` layers.
    """

    def __init__(self, name: str, encoder: nn.Module, last_k: int, tokens: bool, device: torch.device) -> None:
        depth = len(getattr(encoder, "blocks", ()))
        if depth < 1 or last_k < 1:
            raise EvaluationError(f"--last-k {last_k}: give 1 .. {depth} (the encoder's blocks)")
        self.last_k = min(last_k, depth)  # a shallower encoder than k: all its blocks
        self.name, self.encoder, self.device = name, encoder.eval().to(device), device
        self.arrays = ("pooled", "lastk", "tokens") if tokens else ("pooled", "lastk")

    @torch.no_grad()
    def tokens(self, inputs: Tensor) -> Tensor:
        """The last layer's tokens ``(B, N, D)`` in float16, as they are stored (several clips: averaged)."""
        x, views = _fold_views(inputs.to(self.device))
        out: Tensor = _average_views(self.encoder(x).float(), views).half()
        return out

    @torch.no_grad()
    def __call__(self, inputs: Tensor) -> dict[str, Tensor]:
        x, views = _fold_views(inputs.to(self.device))
        layers = [_average_views(y.float(), views)
                  for y in self.encoder.layer_outputs(x, self.last_k)]  # type: ignore[operator]
        pooled = [x.float().mean(dim=1) for x in layers]  # each (B, D)
        out = {"pooled": pooled[-1], "lastk": torch.cat(pooled, dim=1)}  # (B, D), (B, k * D)
        if "tokens" in self.arrays:
            out["tokens"] = layers[-1].half()  # (B, N, D)
        return out


class FrameWiseFeatures(EncoderFeatures):
    """An image encoder applied to every frame of a clip, its tokens averaged over time: each spatial token is
    the mean of that patch's tokens over the frames (``tokens``: ``(B, H * W, D)``), ``pooled`` and ``lastk``
    their means. Blind, by construction, to the order of the frames."""

    @torch.no_grad()
    def tokens(self, inputs: Tensor) -> Tensor:
        return self._layers(inputs)[-1].half()

    def _layers(self, inputs: Tensor) -> list[Tensor]:
        x, views = _fold_views(inputs.to(self.device))  # (B', C, T, H, W)
        b, _, t = x.shape[:3]
        frames = x.transpose(1, 2).flatten(0, 1)  # (B' * T, C, H, W)
        layers = self.encoder.layer_outputs(frames, self.last_k)  # type: ignore[operator]
        return [_average_views(y.float().reshape(b, t, *y.shape[1:]).mean(dim=1), views) for y in layers]

    @torch.no_grad()
    def __call__(self, inputs: Tensor) -> dict[str, Tensor]:
        layers = self._layers(inputs)
        pooled = [y.mean(dim=1) for y in layers]  # each (B, D)
        out = {"pooled": pooled[-1], "lastk": torch.cat(pooled, dim=1)}
        if "tokens" in self.arrays:
            out["tokens"] = layers[-1].half()
        return out


def _fold_views(inputs: Tensor) -> tuple[Tensor, int]:
    """Several clips per video ``(B, V, C, T, H, W)`` as one batch ``(B * V, C, T, H, W)``, and ``V`` (1 otherwise)."""
    if inputs.dim() != 6:
        return inputs, 1
    return inputs.flatten(0, 1), int(inputs.shape[1])


def _average_views(x: Tensor, views: int) -> Tensor:
    """``(B * V, ...)`` -> ``(B, ...)``: the mean over each video's clips, token by token (the same grid)."""
    return x if views == 1 else x.reshape(-1, views, *x.shape[1:]).mean(dim=1)


class PixelFeatures(FeatureSource):
    """The raw-pixel baseline: inputs area-resized to at most ``max_side`` per side, flattened (``pooled`` only);
    a clip keeps every frame (in order), so the raw baseline sees motion.

    For the 8 x 8 digits upsampled to 32 px this keeps every original pixel (16 x 16 per channel).
    """

    def __init__(self, max_side: int = 16) -> None:
        self.name, self.arrays, self.max_side = "raw pixels", ("pooled",), max_side

    def __call__(self, inputs: Tensor) -> dict[str, Tensor]:
        x, views = _fold_views(inputs.float())
        side = (min(x.shape[-2], self.max_side), min(x.shape[-1], self.max_side))
        if x.dim() == 4 and max(x.shape[-2:]) > self.max_side:
            x = F.adaptive_avg_pool2d(x, side)
        elif x.dim() == 5 and max(x.shape[-2:]) > self.max_side:  # clips: every frame, each resized
            x = F.adaptive_avg_pool3d(x, (x.shape[2], *side))
        return {"pooled": _average_views(x.flatten(1), views)}


def bound_heap_growth(threshold: int = 4 * 2**20) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes for this process (and the workers it forks).

    glibc raises its threshold each time a large block is freed, after which blocks of a batch's size
    come from the heap, which fragments: over a long extraction the resident memory then grows with the
    number of batches (measured: +240 MiB from 4,000 to 16,000 images of 64 px with two DataLoader
    workers). A fixed threshold returns every block above it to the system when it is freed, at the
    cost of fresh pages per batch. Returns False where there is no glibc ``mallopt``.
    """
    import ctypes

    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(-3, threshold))  # -3: M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        return False


def _collate(batch: Sequence[tuple[Tensor, int]]) -> tuple[Tensor, Tensor]:
    return torch.stack([b[0] for b in batch]), torch.tensor([b[1] for b in batch], dtype=torch.int64)


def token_bytes(source: EncoderFeatures, split: LabelledSplit) -> tuple[int, int, int]:
    """``(N, D, bytes)``: the tokens of one input, and what the split's tokens take stored in float16."""
    shape = source.tokens(split.dataset[0][0][None]).shape  # (1, N, D)
    return int(shape[1]), int(shape[2]), len(split) * int(shape[1]) * int(shape[2]) * 2


class EncoderBatches:
    """The attentive probe's minibatches when the tokens are not stored: each batch's inputs encoded again.

    The batches hold exactly the rows, in exactly the order, that ``StoreBatches`` would read from stored
    tokens (:func:`~jepa_torch.evaluation.probes.visit_order` over the stored training order, with the
    chunk a store of these tokens would use), so both ways train the same probe.
    """

    def __init__(self, source: EncoderFeatures, split: LabelledSplit, rows: NDArray[np.bool_], batch_size: int,
                 seed: int, chunk: int, num_workers: int = 0) -> None:
        self.source, self.split, self.rows, self.batch_size = source, split, rows, batch_size
        self.seed, self.chunk, self.num_workers = seed, chunk, num_workers
        self.order = stored_order(len(split), shuffled=True)

    def __len__(self) -> int:
        return -(-int(self.rows.sum()) // self.batch_size)

    def epoch(self, epoch: int) -> Iterator[tuple[Tensor, NDArray[np.int64]]]:
        from jepa_torch.evaluation.probes import visit_order

        plan = visit_order(self.rows, self.chunk, self.seed, epoch)
        visit = np.concatenate([kept for _, kept in plan]) if plan else np.zeros(0, np.int64)
        yield from self.encode(self.order[visit])

    def encode(self, positions: NDArray[np.int64]) -> Iterator[tuple[Tensor, NDArray[np.int64]]]:
        """Tokens and labels of the split's inputs at ``positions``, in batches, in order."""
        batches = [positions[i:i + self.batch_size].tolist() for i in range(0, len(positions), self.batch_size)]
        loader = DataLoader(self.split.dataset, batch_sampler=batches, num_workers=self.num_workers,
                            collate_fn=_collate)
        try:
            for inputs, labels in loader:
                yield self.source.tokens(inputs), labels.numpy()
        except DataError as exc:
            raise DataError(_one_line(exc)) from None


def stored_order(n: int, shuffled: bool) -> NDArray[np.int64]:
    """The order in which a split's samples are stored: a fixed permutation for training splits."""
    if not shuffled:
        return np.arange(n, dtype=np.int64)
    return np.random.default_rng(ORDER_SEED).permutation(n).astype(np.int64)


def extract(source: FeatureSource, split: LabelledSplit, folder: Path, key: dict[str, Any], *, shuffled: bool,
            batch_size: int = 128, num_workers: int = 0, progress: bool = True,
            label: str | None = None) -> FeatureStore:
    """Stream ``split`` through ``source`` into a store in ``folder`` (reused when complete with ``key``).

    Args:
        source: what to compute per batch.
        split: the labelled inputs.
        folder: the store's folder.
        key: identifies the features; a complete store in ``folder`` with another key is an error
            (a cache is never overwritten silently).
        shuffled: store the samples in :func:`stored_order` (training splits).
        batch_size, num_workers: the ``DataLoader``'s.
        progress: a progress bar on stderr.
        label: the bar's label (default: the source's name).

    Raises:
        EvaluationError: ``folder`` holds features of something else.
        DataError: an unreadable image, one line.
    """
    key = json.loads(json.dumps({**key, "arrays": list(source.arrays), "rows": len(split), "shuffled": shuffled}))
    if FeatureStore.complete(folder):
        store = FeatureStore(folder)
        if store.key == key:
            return store
        raise EvaluationError(f"--cache {folder.parent.parent}: {folder} holds features of another checkpoint, "
                              "encoder, data or probe set; give an empty --cache folder or delete this one")
    from tqdm import tqdm

    order = stored_order(len(split), shuffled)
    loader = DataLoader(split.dataset, batch_size=batch_size, sampler=order.tolist(), num_workers=num_workers,
                        collate_fn=_collate)
    writer = StoreWriter(folder, key)
    label = label or source.name
    try:
        for inputs, labels in tqdm(loader, desc=label, unit="batch", disable=not progress, leave=False):
            for name, value in source(inputs).items():
                writer.append(name, value.cpu().numpy())
            writer.append("labels", labels.numpy())
    except DataError as exc:  # raised again by a worker, with its traceback: back to one line
        raise DataError(_one_line(exc)) from None
    return writer.close()
