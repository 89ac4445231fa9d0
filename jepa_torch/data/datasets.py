"""Training data: digits, image folders, sequences; the official transforms; a reproducible order.

Reproducibility is by construction, so a resumed run sees exactly the batches of an
uninterrupted one, whatever ``num_workers``:

- **Order** is a pure function of ``(seed, epoch)``: one permutation per epoch, cut into
  global batches (:class:`EpochBatches`); a run can start at any batch of an epoch, and
  rank ``r`` of ``w`` takes the ``r``-th slice of each global batch, so ``w`` processes at
  batch ``b`` see the samples of one process at batch ``w * b``.
- **Augmentation** is a pure function of ``(seed, epoch, sample index)``: a dataset is
  indexed by the key ``(seed, epoch, index)`` and draws its transforms under a torch RNG
  seeded from that key (:func:`sample_seed`), inside ``torch.random.fork_rng`` so the
  caller's RNG is untouched.

The held-out split (``data.holdout_fraction``) is fixed by :data:`SPLIT_SEED`, not by
``run.seed``: runs with different seeds are evaluated on the same samples. It is
stratified by class where there are labels.

A user's data errors are :class:`DataError`, one line naming the path and the fix. An
unreadable image (corrupt, empty, truncated) stops the run at its first load, naming the
file; it is never skipped, since a silent substitute would change the data. Files
without an image extension are not images to ImageFolder and are ignored.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, TypeAlias

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from jepa_torch.config.schema import TrainConfig
from jepa_torch.data.transforms import official_transforms

__all__ = [
    "SPLIT_SEED",
    "DataError",
    "EpochBatches",
    "InputSpec",
    "JepaDataset",
    "build_dataset",
    "digits_splits",
    "image_folder",
    "input_spec",
    "make_loader",
    "sample_seed",
]

SPLIT_SEED = 0
"""Seeds the train / held-out split of every dataset (independent of ``run.seed``)."""

InputSpec: TypeAlias = tuple[Literal["image", "sequence", "video"], tuple[int, ...]]
"""``("image", (C, H, W))``, ``("sequence", (T, input_dim))`` or ``("video", (C, T, H, W))``: what the encoder is
built for."""
SampleKey: TypeAlias = tuple[int, int, int]
"""``(seed, epoch, index)``: a sample and the draw of its augmentation."""
Split = Literal["train", "holdout"]

_ORDER, _AUGMENT, _SPLIT = 0x6F72646572, 0x61756700, 0x73706C6974  # stream tags: order, augmentation, split


class DataError(ValueError):
    """Data that cannot be used (missing path, unreadable file, bad array); the message names it and the fix."""


def _rng(*entropy: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([e % 2**64 for e in entropy]))


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """The torch seed of one sample's augmentation: a pure function of ``(seed, epoch, index)``."""
    lo, hi = np.random.SeedSequence([seed % 2**64, epoch % 2**64, index % 2**64, _AUGMENT]).generate_state(2)
    return int(lo) | int(hi) << 32


# ----------------------------------------------------------------------------- datasets


class JepaDataset(Dataset[Tensor]):
    """A split of a dataset, indexed by :data:`SampleKey` ``(seed, epoch, index)``.

    Attributes:
        spec: what the encoder is built for (:data:`InputSpec`).
        labels: int64 ``(len(self),)`` class labels, or None (sequences).
        indices: the positions of this split's samples in the whole dataset.
    """

    spec: InputSpec
    labels: Tensor | None

    def __init__(self, indices: np.ndarray[Any, Any], transform: Callable[[Any], Tensor] | None) -> None:
        self.indices, self.transform = indices, transform

    def __len__(self) -> int:
        return len(self.indices)

    def _load(self, position: int) -> Any:
        raise NotImplementedError

    def __getitem__(self, key: SampleKey) -> Tensor:
        seed, epoch, index = key
        item = self._load(int(self.indices[index]))
        if self.transform is None:
            return item  # type: ignore[no-any-return]
        with torch.random.fork_rng(devices=[]):  # saves and restores the CPU generator only
            torch.default_generator.manual_seed(sample_seed(seed, epoch, index))  # not torch.manual_seed: CUDA's stays
            return self.transform(item)

    def sample(self, index: int, seed: int = 0, epoch: int = 0) -> Tensor:
        """One sample: ``self[(seed, epoch, index)]``."""
        return self[(seed, epoch, index)]


class DigitsDataset(JepaDataset):
    """scikit-learn's 8x8 digits: grey ``0..16`` -> ``[0, 1]``, bilinear to ``img_size``, 3 channels."""

    def __init__(self, indices: np.ndarray[Any, Any], img_size: int, transform: Callable[[Any], Tensor]) -> None:
        super().__init__(indices, transform)
        images, labels = _digits()
        self.images, self.img_size = images, img_size
        self.labels = torch.from_numpy(labels[indices])
        self.spec = ("image", (3, img_size, img_size))

    def upsampled(self, positions: np.ndarray[Any, Any]) -> Tensor:
        """Digits at ``positions`` of the whole set, ``(n, 3, S, S)`` in ``[0, 1]``, not normalised."""
        x = torch.from_numpy(self.images[positions])[:, None]  # (n, 1, 8, 8)
        x = F.interpolate(x, size=(self.img_size, self.img_size), mode="bilinear", align_corners=False)
        return x.repeat(1, 3, 1, 1)  # (n, 3, S, S)

    def _load(self, position: int) -> Tensor:
        return self.upsampled(np.array([position]))[0]


class ImageFolderDataset(JepaDataset):
    """Images read with PIL as RGB: an ImageFolder tree ``<root>/<class>/<image>``, or unlabelled images.

    Args:
        samples: ``(path, class)`` of every image of the folder.
        labelled: False for a folder without classes (``labels`` is then None).
    """

    def __init__(self, indices: np.ndarray[Any, Any], samples: Sequence[tuple[str, int]], img_size: int,
                 transform: Callable[[Any], Tensor], labelled: bool = True) -> None:
        super().__init__(indices, transform)
        self.samples = samples
        self.labels = torch.tensor([samples[i][1] for i in indices], dtype=torch.int64) if labelled else None
        self.spec = ("image", (3, img_size, img_size))

    def _load(self, position: int) -> Image.Image:
        path = self.samples[position][0]
        try:
            with Image.open(path) as img:
                return img.convert("RGB")
        except UnidentifiedImageError:
            reason = "not image data PIL can identify"
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{path}: cannot read this image ({reason}); remove or replace the file")


class SequenceDataset(JepaDataset):
    """Rows of a float32 array ``(N, T, input_dim)``; no augmentation."""

    def __init__(self, indices: np.ndarray[Any, Any], array: np.ndarray[Any, Any]) -> None:
        super().__init__(indices, None)
        self.array, self.labels = array, None
        self.spec = ("sequence", (int(array.shape[1]), int(array.shape[2])))

    def _load(self, position: int) -> Tensor:
        return torch.from_numpy(self.array[position])  # (T, input_dim)


@functools.lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (np.asarray(bunch.images, dtype=np.float32) / 16.0).reshape(-1, 8, 8)
    return images, np.asarray(bunch.target, dtype=np.int64)


def _split(n: int, holdout_fraction: float, labels: np.ndarray[Any, Any] | None) -> tuple[np.ndarray[Any, Any], ...]:
    """Sorted ``(train, holdout)`` positions: per class ``round(fraction * count)`` held out, seeded by SPLIT_SEED."""
    rng = _rng(SPLIT_SEED, _SPLIT)
    groups = [np.arange(n)] if labels is None else [np.flatnonzero(labels == c) for c in np.unique(labels)]
    held = [rng.permutation(g)[: round(holdout_fraction * len(g))] for g in groups]
    holdout = np.sort(np.concatenate(held)) if held else np.empty(0, np.int64)
    return np.setdiff1d(np.arange(n), holdout), holdout


def image_folder(root: str) -> tuple[tuple[tuple[str, int], ...], np.ndarray[Any, Any] | None]:
    """The images of a folder: ``(path, class)`` of each, and the class labels, or None without classes.

    ``<root>/<class>/<image>`` with two or more class folders is labelled (an ImageFolder tree);
    images directly in ``root``, or in a single subfolder, are unlabelled (every sample has class 0).

    Raises:
        DataError: a missing folder, no images, or images both at the top and in class folders.
    """
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

    path = Path(root)
    if not path.is_dir():
        what = "is not a folder" if path.exists() else "does not exist"
        raise DataError(f"data.path={root!r} {what}; give a folder of images (<path>/<image>, or "
                        "<path>/<class>/<image>)")
    loose = sorted(str(p) for p in path.iterdir() if p.is_file() and p.name.lower().endswith(IMG_EXTENSIONS))
    try:
        classes = find_classes(root)[1]
    except FileNotFoundError:
        classes = {}
    nested = make_dataset(root, classes, extensions=IMG_EXTENSIONS, allow_empty=True) if classes else []
    if loose and nested:
        raise DataError(f"data.path={root!r} has {len(loose)} images at its top level and {len(nested)} in class "
                        "subfolders; put every image in a class subfolder, or all of them at the top level")
    if not loose and not nested:
        raise DataError(f"data.path={root!r} has no image files (.jpg, .png, ...) in it or in its subfolders")
    if loose or len({c for _, c in nested}) < 2:  # one class carries no label information
        return tuple((p, 0) for p in (loose or [p for p, _ in nested])), None
    return tuple(nested), np.asarray([c for _, c in nested], dtype=np.int64)


def _load_sequences(file: str) -> np.ndarray[Any, Any]:
    path = Path(file)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise DataError(f"data.path={file!r} {what}; give a .npy file of shape (N, T, input_dim)")
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{file}: not a readable .npy array ({str(exc).splitlines()[0]}); save it with numpy.save") from None
    if not isinstance(array, np.ndarray):
        raise DataError(f"{file}: an .npz archive, not one array; save the array alone with numpy.save")
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise DataError(f"{file}: dtype {array.dtype} is not a real number type; save float32 values")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or 0 in array.shape:
        raise DataError(f"{file}: shape {array.shape}; expected (N, T, input_dim) or (N, T), all sizes >= 1")
    with np.errstate(over="ignore", invalid="ignore"):  # out-of-range values become inf: reported below
        array = np.ascontiguousarray(array, dtype=np.float32)
    finite = np.isfinite(array).all(axis=(1, 2))
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise DataError(f"{file}: {len(bad)} sequences hold NaN or infinite values (as float32; first: sequence "
                        f"{bad[0]}); clean or drop them")
    return array


def build_dataset(cfg: TrainConfig, split: Split = "train", augment: bool | None = None) -> JepaDataset:
    """The dataset of ``cfg.data`` (one split), indexed by ``(seed, epoch, index)``.

    Args:
        cfg: the run's config (``data.*``).
        split: ``train`` (what training sees) or ``holdout`` (``data.holdout_fraction`` of the
            samples, never trained on; empty when the fraction is 0).
        augment: the official training transforms; default: only for ``train``. Without them
            images are resized and centre-cropped (folders) or taken as they are (digits).

    Returns:
        The split; ``input_spec`` gives its shape, ``.labels`` its labels.

    Raises:
        DataError: a missing or empty folder, an unreadable .npy, an empty training split, or an empty
            held-out split although the fraction is above 0.
    """
    if split not in ("train", "holdout"):
        raise ValueError(f"build_dataset: split={split!r}; use train or holdout")
    d = cfg.data
    augment = split == "train" if augment is None else augment
    part = 1 if split == "holdout" else 0
    path = d.path or ""
    if d.dataset in ("video_folder", "moving_digits", "video_frames"):
        dataset: JepaDataset = _video_split(cfg, part, augment)
    elif d.dataset == "sequence":
        array = _load_sequences(path)
        parts = _split(len(array), d.holdout_fraction, None)
        dataset = SequenceDataset(parts[part], array)
    else:
        tf = official_transforms(d.img_size, d.crop_scale, d.horizontal_flip, d.color_jitter, d.gaussian_blur,
                                 from_pil=d.dataset == "image_folder", augment=augment)
        if d.dataset == "digits":
            parts = _split(len(_digits()[1]), d.holdout_fraction, _digits()[1])
            dataset = DigitsDataset(parts[part], d.img_size, tf)
        else:
            samples, targets = image_folder(path)
            parts = _split(len(samples), d.holdout_fraction, targets)
            dataset = ImageFolderDataset(parts[part], samples, d.img_size, tf, labelled=targets is not None)
    if len(dataset) == 0 and (split == "train" or d.holdout_fraction > 0):
        raise DataError(f"data.holdout_fraction={d.holdout_fraction}: the {split} split of {d.dataset} is empty; "
                        "change the fraction or add data")
    return dataset


def _video_split(cfg: TrainConfig, part: int, augment: bool) -> JepaDataset:
    """One split of a video run's data; the split is stratified by the folder's first label task, so every
    task of a ``labels.csv`` sees the same held-out videos."""
    from jepa_torch.data.moving_digits import moving_digits_folder
    from jepa_torch.data.video import ClipSampler, FrameDataset, VideoDataset, VideoError, video_folder

    d = cfg.data
    try:
        root = str(moving_digits_folder(d.path)) if d.dataset == "moving_digits" else d.path or ""
        folder = video_folder(root, d.label)
        strata = folder.labels if folder.task == (folder.tasks or ("class",))[0] else video_folder(root).labels
    except VideoError as exc:
        raise DataError(str(exc)) from None
    indices = _split(len(folder.paths), d.holdout_fraction, strata)[part]
    if d.dataset == "video_frames":
        tf = official_transforms(d.img_size, d.crop_scale, d.horizontal_flip, d.color_jitter, d.gaussian_blur,
                                 from_pil=False, augment=augment)
        return FrameDataset(indices, folder, d.img_size, tf)
    sampler = ClipSampler(d.frames_per_clip, d.frame_step, d.img_size, d.clip_sampling if augment else "uniform",
                          augment=augment, crop_scale=d.crop_scale, flip=d.horizontal_flip)
    return VideoDataset(indices, folder, sampler)


def digits_splits(img_size: int = 32, holdout_fraction: float = 0.2) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Digits for evaluation, without augmentation, normalised as in training.

    Args:
        img_size: the model's image side.
        holdout_fraction: the run's ``data.holdout_fraction`` (the same split training used).

    Returns:
        ``(train_images (N, 3, S, S), train_labels (N,), test_images (M, 3, S, S), test_labels (M,))``.
    """
    labels = _digits()[1]
    tf = official_transforms(img_size, from_pil=False, augment=False)
    out: list[Tensor] = []
    for part in _split(len(labels), holdout_fraction, labels):
        ds = DigitsDataset(part, img_size, tf)
        assert ds.labels is not None
        out += [tf(ds.upsampled(part)), ds.labels]  # at once: equal to stacking ds.sample(i)
    return out[0], out[1], out[2], out[3]


def input_spec(dataset: JepaDataset) -> InputSpec:
    """``("image", (C, H, W))`` or ``("sequence", (T, input_dim))``."""
    return dataset.spec


# ----------------------------------------------------------------------------- order and loading


class EpochBatches:
    """The batches of each epoch: a permutation of ``range(num_samples)`` seeded by ``(seed, epoch)``.

    Args:
        num_samples: the training split's size.
        batch_size: the **global** batch (per-process batch x processes).
        seed: the run's seed.
        drop_last: drop the last, incomplete batch (as the official loader).
    """

    def __init__(self, num_samples: int, batch_size: int, seed: int, drop_last: bool = True) -> None:
        if num_samples < 1 or batch_size < 1:
            raise ValueError(f"EpochBatches: num_samples={num_samples} and batch_size={batch_size} must be >= 1")
        self.num_samples, self.batch_size, self.seed, self.drop_last = num_samples, batch_size, seed, drop_last

    def __len__(self) -> int:
        """Batches per epoch."""
        full, rest = divmod(self.num_samples, self.batch_size)
        return full + int(bool(rest) and not self.drop_last)

    def permutation(self, epoch: int) -> np.ndarray[Any, Any]:
        """The epoch's sample order."""
        return _rng(self.seed, epoch, _ORDER).permutation(self.num_samples)

    def indices(self, epoch: int, start_batch: int = 0, rank: int = 0, world_size: int = 1) -> list[list[int]]:
        """This rank's share of the epoch's global batches ``start_batch, start_batch + 1, ...``.

        Rank ``r`` takes items ``[r * b, (r + 1) * b)`` of each global batch, ``b = batch_size // world_size``.

        Raises:
            ValueError: ``batch_size`` not divisible by ``world_size``, or an incomplete last batch to split.
        """
        if self.batch_size % world_size or not 0 <= rank < world_size:
            raise ValueError(f"EpochBatches: global batch {self.batch_size} cannot be split over {world_size} ranks "
                             f"(rank {rank})")
        b, order = self.batch_size // world_size, self.permutation(epoch)
        out = []
        for k in range(start_batch, len(self)):
            batch = order[k * self.batch_size:(k + 1) * self.batch_size]
            if len(batch) < self.batch_size and world_size > 1:
                raise ValueError("EpochBatches: an incomplete last batch cannot be split over ranks; use drop_last")
            out.append(batch[rank * b:(rank + 1) * b].tolist())
        return out


def _stack(samples: list[Tensor]) -> Tensor:
    return torch.stack(samples)


def _one_line(exc: DataError) -> str:
    """The user's message of a DataError re-raised by a DataLoader worker (which adds the worker's traceback)."""
    text = str(exc).rstrip()
    return text.rsplit("DataError: ", 1)[-1] if "\n" in text else text


def make_loader(dataset: JepaDataset, batch_indices: Sequence[Sequence[int]], num_workers: int = 0, seed: int = 0,
                epoch: int = 0, pin_memory: bool = False) -> Iterator[Tensor]:
    """Yield the batches ``(B, ...)`` float32 of ``batch_indices``, in order, augmented as ``(seed, epoch, index)``.

    Args:
        dataset: from :func:`build_dataset`.
        batch_indices: from :meth:`EpochBatches.indices`.
        num_workers: DataLoader worker processes (0: in this process); the batches do not depend on it.
        seed, epoch: the augmentation draw.
        pin_memory: page-locked batches for faster copies to CUDA.

    Raises:
        DataError: an unreadable sample, one line (also when a worker read it).
    """
    keys = [[(seed, epoch, int(i)) for i in batch] for batch in batch_indices]
    loader = DataLoader(dataset, batch_sampler=keys, num_workers=num_workers, collate_fn=_stack,
                        pin_memory=pin_memory)
    batches = iter(loader)
    try:
        yield from batches
    except DataError as exc:
        raise DataError(_one_line(exc)) from None
    finally:
        shutdown = getattr(batches, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()
