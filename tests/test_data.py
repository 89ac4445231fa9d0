"""Data: digits, image folders, sequences, per-sample augmentation determinism, epoch order, loaders."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from jepa_torch.config import DataConfig, ModelConfig, TrainConfig
from jepa_torch.data import (
    DataError,
    EpochBatches,
    build_dataset,
    digits_splits,
    input_spec,
    make_loader,
)
from jepa_torch.data.transforms import IMAGENET_MEAN, IMAGENET_STD


def config(**data: Any) -> TrainConfig:
    return TrainConfig(data=DataConfig(**{"img_size": 16, **data}))


def first_batch(cfg: TrainConfig, num_workers: int = 0, epoch: int = 0, batch: int = 8) -> torch.Tensor:
    ds = build_dataset(cfg)
    order = EpochBatches(len(ds), batch, seed=3).indices(epoch)[:1]
    return next(iter(make_loader(ds, order, num_workers, seed=3, epoch=epoch)))


def unnormalise(x: torch.Tensor) -> torch.Tensor:
    return x * torch.tensor(IMAGENET_STD)[:, None, None] + torch.tensor(IMAGENET_MEAN)[:, None, None]


# ----------------------------------------------------------------------------- digits


def test_digits_splits_shapes_values_and_disjoint_stratified_split() -> None:
    xtr, ytr, xte, yte = digits_splits(img_size=16, holdout_fraction=0.2)
    assert xtr.shape == (1438, 3, 16, 16) and xte.shape == (359, 3, 16, 16)
    assert xtr.dtype == torch.float32 and ytr.dtype == yte.dtype == torch.int64
    pixels = unnormalise(torch.cat([xtr, xte]))
    assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5 and pixels.max() > 0.9
    assert torch.allclose(pixels[:, 0], pixels[:, 1], atol=1e-6) and torch.allclose(pixels[:, 0], pixels[:, 2], atol=1e-6)
    assert torch.equal(torch.bincount(yte), torch.bincount(torch.cat([ytr, yte])).mul(0.2).round().long())
    train_ds, held_ds = build_dataset(config()), build_dataset(config(), "holdout")
    assert not set(train_ds.indices.tolist()) & set(held_ds.indices.tolist())
    assert len(train_ds) + len(held_ds) == 1797
    assert torch.equal(held_ds.labels, yte)  # type: ignore[arg-type]
    plain = build_dataset(config(), "holdout", augment=False)
    assert all(torch.equal(plain.sample(i), xte[i]) for i in (0, 17, 358))
    again = digits_splits(img_size=16, holdout_fraction=0.2)
    assert all(torch.equal(a, b) for a, b in zip((xtr, ytr, xte, yte), again))


def test_digits_upsampling_matches_the_8x8_source() -> None:
    from sklearn.datasets import load_digits

    _, _, xte, _ = digits_splits(img_size=8, holdout_fraction=0.2)
    held = build_dataset(TrainConfig(model=ModelConfig(patch_size=1), data=DataConfig(img_size=8)), "holdout")
    raw = torch.from_numpy(load_digits().images[held.indices]).float() / 16
    assert torch.allclose(unnormalise(xte)[:, 0], raw, atol=1e-5)  # bilinear at the same size is the identity


def test_split_does_not_depend_on_the_run_seed() -> None:
    a = build_dataset(config(), "holdout")
    b = build_dataset(replace(config(), run=replace(TrainConfig().run, seed=5)), "holdout")
    assert np.array_equal(a.indices, b.indices)


# ----------------------------------------------------------------------------- augmentation


AUGMENTED = dict(crop_scale=(0.3, 1.0), horizontal_flip=True, color_jitter=0.5, gaussian_blur=True)


def test_augmentation_is_a_pure_function_of_seed_epoch_index() -> None:
    ds = build_dataset(config(**AUGMENTED))
    torch.manual_seed(123)
    a = ds.sample(5, seed=1, epoch=2)
    state = torch.get_rng_state()
    b = ds.sample(5, seed=1, epoch=2)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's RNG is untouched
    assert torch.equal(a, b)
    assert not torch.equal(a, ds.sample(5, seed=1, epoch=3))
    assert not torch.equal(a, ds.sample(5, seed=2, epoch=2))
    plain = build_dataset(config(), augment=False)
    assert torch.equal(plain.sample(5, epoch=0), plain.sample(5, epoch=9))  # nothing random without augmentation


def test_batches_do_not_depend_on_workers() -> None:
    cfg = config(**AUGMENTED)
    assert torch.equal(first_batch(cfg, num_workers=0), first_batch(cfg, num_workers=2))
    assert not torch.equal(first_batch(cfg, epoch=0), first_batch(cfg, epoch=1))


# ----------------------------------------------------------------------------- order


def test_epoch_batches_permutation_resume_and_distributed_split() -> None:
    batches = EpochBatches(103, 8, seed=7)
    assert len(batches) == 12 and len(EpochBatches(103, 8, 7, drop_last=False)) == 13
    full = batches.indices(4)
    flat = [i for b in full for i in b]
    assert all(len(b) == 8 for b in full) and len(set(flat)) == 96 and set(flat) <= set(range(103))
    assert full == EpochBatches(103, 8, seed=7).indices(4)  # a pure function of (seed, epoch)
    assert full != batches.indices(5) and full != EpochBatches(103, 8, seed=8).indices(4)
    assert batches.indices(4, start_batch=5) == full[5:]
    for world in (2, 4):
        shares = [batches.indices(4, 3, rank, world) for rank in range(world)]
        assert [sum((s[k] for s in shares), []) for k in range(9)] == full[3:]
    with pytest.raises(ValueError, match="cannot be split over 3 ranks"):
        batches.indices(0, world_size=3)
    tail = EpochBatches(10, 4, 0, drop_last=False).indices(0)
    assert [len(b) for b in tail] == [4, 4, 2] and sorted(sum(tail, [])) == list(range(10))


def test_distributed_loaders_see_the_single_process_batch() -> None:
    ds = build_dataset(config(**AUGMENTED))
    batches = EpochBatches(len(ds), 8, seed=0)
    single = next(iter(make_loader(ds, batches.indices(1, 2), seed=0, epoch=1)))
    ranks = [next(iter(make_loader(ds, batches.indices(1, 2, r, 2), seed=0, epoch=1))) for r in range(2)]
    assert torch.equal(torch.cat(ranks), single)


# ----------------------------------------------------------------------------- image folders


def png(path: Path, color: tuple[int, int, int], size: tuple[int, int] = (20, 24)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)


def image_folder(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    for c in range(2):
        for i in range(4):
            png(root / f"class{c}" / f"{i}.png", (60 * c + 10 * i, 100, 200))
    (root / "class0" / "notes.txt").write_text("not an image")  # no image extension: ignored
    Image.new("L", (9, 9), 128).save(root / "class1" / "grey.jpg")  # converted to RGB
    return root


def test_image_folder_happy_path(tmp_path: Path) -> None:
    cfg = config(dataset="image_folder", path=str(image_folder(tmp_path)), holdout_fraction=0.25, **AUGMENTED)
    ds = build_dataset(cfg)
    assert input_spec(ds) == ("image", (3, 16, 16)) and len(ds) == 7
    assert len(build_dataset(cfg, "holdout")) == 2 and sorted(ds.labels.tolist()) == [0, 0, 0, 1, 1, 1, 1]  # type: ignore[union-attr]
    order = EpochBatches(len(ds), 4, 0).indices(0)
    batch = next(iter(make_loader(ds, order, num_workers=2)))
    assert batch.shape == (4, 3, 16, 16) and batch.dtype == torch.float32
    assert torch.equal(batch, next(iter(make_loader(ds, order, num_workers=0))))
    plain = build_dataset(replace(cfg, data=replace(cfg.data, holdout_fraction=0.0)), augment=False)
    x = plain.sample(0)  # class0/0.png: a plain colour, resized and centre-cropped, normalised
    assert torch.allclose(unnormalise(x)[:, 8, 8], torch.tensor([0, 100, 200]) / 255, atol=1e-6)


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"\x89PNG\r\n\x1a\nthis is not a png", "cannot read this image"), (b"", "cannot read this image")],
    ids=["corrupt", "empty"],
)
@pytest.mark.parametrize("workers", [0, 2])
def test_unreadable_images_stop_with_one_line_naming_the_file(tmp_path: Path, content: bytes, reason: str,
                                                              workers: int) -> None:
    root = image_folder(tmp_path)
    bad = root / "class0" / "bad.png"
    bad.write_bytes(content)
    ds = build_dataset(config(dataset="image_folder", path=str(root), holdout_fraction=0.0))
    position = [p for p, _ in ds.samples].index(str(bad))  # type: ignore[attr-defined]
    index = int(np.flatnonzero(ds.indices == position)[0])
    with pytest.raises(DataError) as info:
        list(make_loader(ds, [[0, index]], num_workers=workers))
    message = str(info.value)
    assert message.startswith(f"{bad}: {reason}") and message.endswith("remove or replace the file")
    assert "\n" not in message


def test_truncated_image_names_the_file(tmp_path: Path) -> None:
    root = image_folder(tmp_path)
    whole = (root / "class1" / "0.png").read_bytes()
    (root / "class1" / "0.png").write_bytes(whole[: len(whole) // 2])
    ds = build_dataset(config(dataset="image_folder", path=str(root), holdout_fraction=0.0))
    with pytest.raises(DataError, match=rf"^{root / 'class1' / '0.png'}: cannot read this image"):
        list(make_loader(ds, [list(range(len(ds)))]))


@pytest.mark.parametrize(
    ("layout", "match"),
    [
        ("missing", r"data\.path='.*/images' does not exist; give a folder of images \(<path>/<image>, or "
                    r"<path>/<class>/<image>\)"),
        ("file", r"data\.path='.*/images' is not a folder"),
        ("empty", r"data\.path='.*/images' has no image files \(\.jpg, \.png, \.\.\.\) in it or in its subfolders"),
        ("no_images", r"data\.path='.*/images' has no image files \(\.jpg, \.png, \.\.\.\) in it or in its subfolders"),
    ],
)
def test_bad_image_folders(tmp_path: Path, layout: str, match: str) -> None:
    root = tmp_path / "images"
    if layout == "file":
        root.write_text("x")
    elif layout == "empty":
        root.mkdir()
    elif layout == "no_images":
        (root / "cats").mkdir(parents=True)
        (root / "cats" / "readme.txt").write_text("x")
    with pytest.raises(DataError, match="^" + match) as info:
        build_dataset(config(dataset="image_folder", path=str(root)))
    assert "\n" not in str(info.value)


# ----------------------------------------------------------------------------- sequences


def test_sequences_happy_path(tmp_path: Path) -> None:
    data = np.random.default_rng(0).normal(size=(20, 12, 3))  # float64 in, float32 out
    np.save(tmp_path / "seq.npy", data)
    cfg = config(dataset="sequence", path=str(tmp_path / "seq.npy"), holdout_fraction=0.25)
    ds = build_dataset(cfg)
    assert input_spec(ds) == ("sequence", (12, 3)) and len(ds) == 15 and ds.labels is None
    batch = next(iter(make_loader(ds, EpochBatches(len(ds), 5, 0).indices(0)[:1])))
    assert batch.shape == (5, 12, 3) and batch.dtype == torch.float32
    assert torch.equal(ds.sample(2), torch.from_numpy(data[ds.indices[2]].astype(np.float32)))
    np.save(tmp_path / "flat.npy", data[:, :, 0].astype(np.int32))
    flat = build_dataset(replace(cfg, data=replace(cfg.data, path=str(tmp_path / "flat.npy"))))
    assert input_spec(flat) == ("sequence", (12, 1))


@pytest.mark.parametrize(
    ("array", "match"),
    [
        (None, r"^data\.path='.*seq\.npy' does not exist; give a \.npy file of shape \(N, T, input_dim\)"),
        (np.zeros(5), r"seq\.npy: shape \(5,\); expected \(N, T, input_dim\) or \(N, T\)"),
        (np.zeros((2, 3, 4, 5)), r"seq\.npy: shape \(2, 3, 4, 5\); expected"),
        (np.zeros((0, 4)), r"seq\.npy: shape \(0, 4, 1\); expected .* all sizes >= 1"),
        (np.array([[0.0, np.nan], [1.0, 2.0], [np.inf, 0.0]]), r"seq\.npy: 2 sequences hold NaN or infinite values "
                                                              r"\(as float32; first: sequence 0\)"),
        (np.array([[1e300, 0.0]]), r"seq\.npy: 1 sequences hold NaN or infinite values"),
        (np.array([["a", "b"]]), r"seq\.npy: dtype <U1 is not a real number type"),
        (np.array([[object(), 1]], dtype=object), r"seq\.npy: not a readable \.npy array"),
        ("text", r"seq\.npy: not a readable \.npy array"),
    ],
)
def test_bad_sequences(tmp_path: Path, array: Any, match: str) -> None:
    path = tmp_path / "seq.npy"
    if isinstance(array, str):
        path.write_text("hello")
    elif array is not None:
        np.save(path, array, allow_pickle=True)
    with pytest.raises(DataError, match=match) as info:
        build_dataset(config(dataset="sequence", path=str(path)))
    assert "\n" not in str(info.value)


def test_empty_split_is_an_error(tmp_path: Path) -> None:
    np.save(tmp_path / "seq.npy", np.zeros((2, 4), np.float32))
    with pytest.raises(DataError, match=r"^data\.holdout_fraction=0\.1: the holdout split of sequence is empty"):
        build_dataset(config(dataset="sequence", path=str(tmp_path / "seq.npy"), holdout_fraction=0.1), "holdout")


# ----------------------------------------------------------------------------- transforms


def test_official_transforms_follow_the_official_recipe() -> None:
    import torchvision.transforms as T

    from jepa_torch.data.transforms import GaussianBlur, official_transforms

    tf = official_transforms(32, (0.3, 1.0), horizontal_flip=True, color_jitter=0.5, gaussian_blur=True)
    kinds = [type(t) for t in tf.transforms]  # type: ignore[attr-defined]
    assert kinds == [T.RandomResizedCrop, T.RandomHorizontalFlip, T.RandomApply, T.RandomGrayscale, GaussianBlur,
                     T.ToTensor, T.Normalize]
    crop, _, jitter, grey, blur = tf.transforms[:5]  # type: ignore[attr-defined]
    assert (crop.size, crop.scale) == ((32, 32), (0.3, 1.0))
    cj = jitter.transforms[0]
    assert jitter.p == 0.8 and grey.p == 0.2 and (blur.p, blur.radius_min, blur.radius_max) == (0.5, 0.1, 2.0)
    assert (cj.brightness, cj.contrast, cj.saturation, cj.hue) == ((0.6, 1.4), (0.6, 1.4), (0.6, 1.4), (-0.1, 0.1))
    plain = official_transforms(32)
    assert [type(t) for t in plain.transforms] == [T.RandomResizedCrop, T.ToTensor, T.Normalize]  # type: ignore[attr-defined]
    torch.manual_seed(0)
    pil = Image.new("RGB", (40, 30), (10, 20, 30))
    assert tf(pil).shape == (3, 32, 32) and official_transforms(32, augment=False)(pil).shape == (3, 32, 32)
    always = GaussianBlur(p=1.0, radius_min=1.0)  # radius 0.1 would leave a tensor unchanged
    x = torch.rand(3, 16, 16)
    assert always(x).shape == x.shape and not torch.equal(always(x), x)
