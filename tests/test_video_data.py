"""Video data: the moving-digits set, folder layouts, clips, augmentation, and bad videos."""

from __future__ import annotations

import csv
import logging
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from jepa_torch.config import DataConfig, MethodConfig, ModelConfig, TrainConfig
from jepa_torch.data.datasets import DataError, build_dataset, sample_seed
from jepa_torch.data.moving_digits import DIRECTIONS, MovingDigits, render, write_moving_digits
from jepa_torch.data.video import (ClipSampler, VideoError, clip_indices, frame_count, read_frames,
                                   video_folder)

SMALL = MovingDigits(frames=8, size=16, sprite=8, videos=48, distractors=0, noise=0.0)
"""A moving-digits set that writes in a second: 48 videos of 8 frames of 16 px."""


@pytest.fixture(scope="module")
def small_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_moving_digits(tmp_path_factory.mktemp("md") / "set", SMALL)


def video_config(root: Path, **data: object) -> TrainConfig:
    options = dict(dataset="video_folder", path=str(root), img_size=16, frames_per_clip=4, frame_step=2,
                   batch_size=8, holdout_fraction=0.25)
    return TrainConfig(method=MethodConfig(name="vjepa"),
                       model=ModelConfig(preset="vit_tiny", depth=1, patch_size=4, pred_depth=1, pred_emb_dim=48),
                       data=DataConfig(**{**options, **data}))  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- the moving digits


def test_moving_digits_are_real_video_files_whose_frames_show_the_labelled_motion(small_set: Path) -> None:
    folder = video_folder(str(small_set), "direction")
    assert folder.tasks == ("digit", "direction") and len(folder.paths) == SMALL.videos
    assert all(Path(p).suffix == ".mp4" for p in folder.paths)
    assert folder.labels is not None and sorted(set(folder.labels.tolist())) == list(range(8))
    for path, direction in zip(folder.paths[:8], folder.labels[:8]):
        frames = read_frames(path, range(SMALL.frames))[..., 0].astype(np.float64)  # (T, H, W)
        assert frames.shape == (SMALL.frames, SMALL.size, SMALL.size) and frame_count(path) == SMALL.frames
        ys, xs = np.indices(frames.shape[1:])
        mass = frames.sum(axis=(1, 2))
        centre_x, centre_y = (frames * xs).sum(axis=(1, 2)) / mass, (frames * ys).sum(axis=(1, 2)) / mass
        dx, dy = DIRECTIONS[int(direction)]
        # the centre of brightness moves by `speed` pixels a frame along the labelled direction (mp4 is lossy)
        np.testing.assert_allclose(np.diff(centre_x).mean(), dx * SMALL.speed, atol=0.2)
        np.testing.assert_allclose(np.diff(centre_y).mean(), dy * SMALL.speed, atol=0.2)


def test_moving_digits_are_the_same_from_the_same_settings_and_balanced(tmp_path: Path, small_set: Path) -> None:
    again = write_moving_digits(tmp_path / "again", SMALL)
    assert (again / "labels.csv").read_text() == (small_set / "labels.csv").read_text()
    with (small_set / "labels.csv").open() as f:
        counts = np.bincount([int(r["direction"]) for r in csv.DictReader(f)], minlength=8)
    assert counts.tolist() == [6] * 8
    assert not list(tmp_path.glob(".again-*"))  # the scratch folder of the atomic write is gone


def test_moving_digits_are_written_byte_for_byte_the_same_every_time(tmp_path: Path) -> None:
    """The set is a function of its settings down to the mp4 bytes, so every machine trains on the same
    pixels. x264's default rate control (CRF with its macroblock tree) gave different bytes and frames up
    to 12 grey levels apart on two writes of the same frames in one process; constant QP does not."""
    spec = MovingDigits(frames=8, videos=24)  # the demo's 48 px frames, distractor and noise
    first, second = (write_moving_digits(tmp_path / name, spec) for name in ("first", "second"))
    names = sorted(p.name for p in (first / "videos").iterdir())
    assert len(names) == 24
    differing = [n for n in names if (first / "videos" / n).read_bytes() != (second / "videos" / n).read_bytes()]
    assert differing == []


def test_a_digit_bounces_off_the_edges_of_a_long_video() -> None:
    spec = MovingDigits(frames=30, size=16, sprite=8, distractors=0, noise=0.0)
    video = render(np.full((8, 8), 255, np.uint8), 0, (0, 0), spec)  # moving right from the left edge
    left = [int(np.flatnonzero(f.max(axis=0))[0]) for f in video]
    assert max(left) == 8 and left[8] == 8 and left[9] == 7 and left[16] == 0  # out to the edge and back


def test_jitter_wobbles_the_digit_around_its_path_inside_the_frame() -> None:
    """Neighbouring frames no longer tell the direction; the drift over the clip still does. Without jitter
    the sets (and the names of their folders) are those written before it existed."""
    spec = MovingDigits(frames=16, size=48, sprite=16, distractors=0, noise=0.0, jitter=3)
    rng = np.random.default_rng(0)
    steps, drifts = [], []
    for _ in range(20):
        video = render(np.full((16, 16), 255, np.uint8), 0, (0, 5), spec, rng=rng)  # moving right
        left = np.array([int(np.flatnonzero(f.max(axis=0))[0]) for f in video])
        top = np.array([int(np.flatnonzero(f.max(axis=1))[0]) for f in video])
        assert left.min() >= 0 and left.max() <= 48 - 16 and abs(top - (5 + 3)).max() <= 3
        steps += np.diff(left).tolist()
        drifts.append(left[-1] - left[0])
    assert min(steps) < 0 < max(steps)  # some frame-to-frame steps go backwards
    assert min(drifts) >= 15 - 6 and np.mean(drifts) > 12  # 15 px of drift, give or take the wobble
    with pytest.raises(ValueError, match="jitter"):
        MovingDigits(size=48, sprite=16, jitter=16)
    with pytest.raises(ValueError, match="rng"):
        render(np.zeros((16, 16), np.uint8), 0, (0, 0), spec)
    assert MovingDigits().key() == "74a42d2f10c2"  # the default set's folder: jitter 0 leaves the name alone


def test_read_frames_gives_pyav_own_rgb_frames_in_the_order_asked(small_set: Path) -> None:
    import av

    path = video_folder(str(small_set)).paths[3]
    with av.open(path) as container:  # PyAV's own conversion, frame by frame, every frame decoded
        every = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(container.streams.video[0])])
    assert every.shape == (SMALL.frames, SMALL.size, SMALL.size, 3)
    for indices in ([0, 1, 2], [5, 1, 5, 0], [SMALL.frames - 1]):
        np.testing.assert_array_equal(read_frames(path, indices), every[indices])


# ----------------------------------------------------------------------------- folders


def _copy_video(src: str, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, dst)


def test_class_folders_label_videos_and_frame_folders_are_videos(small_set: Path, tmp_path: Path) -> None:
    paths = video_folder(str(small_set)).paths
    _copy_video(paths[0], tmp_path / "left" / "a.mp4")
    _copy_video(paths[1], tmp_path / "left" / "b.webm.mp4")
    frames = read_frames(paths[2], range(SMALL.frames))
    (tmp_path / "right" / "c").mkdir(parents=True)
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(tmp_path / "right" / "c" / f"{i:03d}.png")
    (tmp_path / "right" / "notes.txt").write_text("not a video")
    folder = video_folder(str(tmp_path))
    assert folder.classes == ("left", "right") and folder.labels is not None
    assert folder.labels.tolist() == [0, 0, 1]
    np.testing.assert_array_equal(read_frames(folder.paths[2], [0, 3, 3]), frames[[0, 3, 3]])
    assert frame_count(folder.paths[2]) == SMALL.frames
    with pytest.raises(VideoError, match="data.label='digit'.*class folder"):
        video_folder(str(tmp_path), "digit")


@pytest.mark.parametrize("layout", ["missing", "empty", "mixed"])
def test_a_folder_without_usable_videos_is_one_line(layout: str, small_set: Path, tmp_path: Path) -> None:
    root = tmp_path / "videos"
    if layout != "missing":
        root.mkdir()
    if layout == "mixed":
        _copy_video(video_folder(str(small_set)).paths[0], root / "loose.mp4")
        _copy_video(video_folder(str(small_set)).paths[1], root / "cls" / "nested.mp4")
    cfg = video_config(root)
    with pytest.raises(DataError) as info:
        build_dataset(cfg)
    assert str(root) in str(info.value) and "\n" not in str(info.value)


def test_clips_are_strided_padded_past_the_end_and_evenly_spaced_for_evaluation() -> None:
    assert clip_indices(10, 4, 3, 0) == [0, 3, 6, 9]
    assert clip_indices(5, 4, 2, 0) == [0, 2, 4, 4]  # a short video repeats its last frame
    assert ClipSampler(4, 2, 16, sampling="uniform", num_clips=3).starts(20) == [0, 6, 13]
    assert ClipSampler(4, 2, 16, sampling="uniform").starts(20) == [6]
    torch.manual_seed(0)
    starts = {ClipSampler(4, 2, 16).starts(20)[0] for _ in range(200)}
    assert starts == set(range(14))  # uniform over every start that fits


def test_a_training_clip_is_cropped_and_flipped_alike_in_every_frame() -> None:
    clip = np.zeros((4, 32, 32, 3), np.uint8)
    clip[:, 4:12, 20:28] = 255  # the same square in every frame
    sampler = ClipSampler(4, 1, 16, augment=True, crop_scale=(0.3, 1.0), flip=True)
    for seed in range(6):
        torch.manual_seed(seed)
        x = sampler.frames(clip)
        assert x.shape == (3, 4, 16, 16)
        assert all(torch.equal(x[:, 0], x[:, t]) for t in range(4))
    plain = ClipSampler(4, 1, 16).frames(clip)
    assert plain[0, 0, 2:6, 10:14].mean() > 1.5 and plain[0, 0, 10:, :8].mean() < -1.5  # resized, not cropped


def test_a_sample_is_a_function_of_seed_epoch_and_index(small_set: Path) -> None:
    ds = build_dataset(video_config(small_set, label="digit"))
    assert ds.spec == ("video", (3, 4, 16, 16)) and ds.labels is not None
    a, b = ds[(0, 1, 5)], ds[(0, 1, 5)]
    assert torch.equal(a, b) and not torch.equal(a, ds[(0, 2, 5)])
    holdout = build_dataset(video_config(small_set, label="digit"), "holdout")
    other_task = build_dataset(video_config(small_set, label="direction"), "holdout")
    assert np.array_equal(holdout.indices, other_task.indices)  # every task holds out the same videos
    assert len(holdout) == 12


# ----------------------------------------------------------------------------- decoded videos in memory


def test_cached_videos_give_the_same_samples_without_reading_a_file(small_set: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from jepa_torch.data import video

    configs = [video_config(small_set), video_config(small_set, clip_sampling="uniform"),
               replace(video_config(small_set), data=DataConfig(dataset="video_frames", path=str(small_set),
                                                                img_size=16, holdout_fraction=0.25))]
    for cfg in configs:
        plain, cached = build_dataset(cfg), build_dataset(cfg)
        line = cached.cache(16)
        assert line.startswith("decoded 36 of 36 training videos into memory (") and "\n" not in line
        keys = [(seed, epoch, i) for seed in (0, 3) for epoch in (0, 2) for i in range(0, 36, 5)]
        expected = [plain[k] for k in keys]

        def no_file(path: str, indices: object) -> None:
            raise AssertionError(f"{path} was read from its file")

        with monkeypatch.context() as m:
            m.setattr(video, "read_frames", no_file)
            m.setattr(video, "frame_count", no_file)
            got = [cached[k] for k in keys]
        assert all(torch.equal(a, b) for a, b in zip(got, expected)), cfg.data.dataset


def test_the_cache_keeps_a_prefix_of_the_split_within_its_budget(small_set: Path) -> None:
    ds = build_dataset(video_config(small_set))
    one = read_frames(ds.folder.paths[int(ds.indices[0])], range(8)).nbytes  # 8 frames of 16 x 16 RGB
    fits = 5
    line = ds.cache((fits + 0.5) * one / 2**20)  # room for 5 and a half of the (equal-sized) videos
    assert ds.decoded is not None and ds.decoded.nbytes == fits * one
    assert set(ds.decoded.videos) == {ds.folder.paths[int(i)] for i in ds.indices[:fits]}
    assert f"decoded {fits} of {len(ds)}" in line and "raise data.cache_mb" in line
    plain = build_dataset(video_config(small_set))
    assert all(torch.equal(ds[(0, 1, i)], plain[(0, 1, i)]) for i in range(len(ds)))  # past the budget: its file
    assert build_dataset(video_config(small_set)).cache(0).startswith("decoded 0 of 36")


def test_a_bad_video_is_left_out_of_the_cache_and_still_reported_once(
        small_set: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "set"
    shutil.copytree(small_set, root)
    folder = video_folder(str(root))
    Path(folder.paths[0]).write_bytes(b"\x00" * 4000)
    ds = build_dataset(video_config(root, holdout_fraction=0.0))
    assert ds.cache(16).startswith(f"decoded {len(ds) - 1} of {len(ds)} ")
    assert ds.decoded is not None and folder.paths[0] not in ds.decoded.videos
    plain = build_dataset(video_config(root, holdout_fraction=0.0))
    with caplog.at_level(logging.WARNING):
        assert torch.equal(ds[(0, 0, 0)], plain[(0, 0, 0)])  # video 1 stands in, as without the cache
    assert sum(folder.paths[0] in r.getMessage() for r in caplog.records) == 1  # reported, once


def test_cache_mb_is_refused_where_there_are_no_videos() -> None:
    from jepa_torch.config import ConfigError

    with pytest.raises(ConfigError, match="data.cache_mb=64: .*data.dataset=digits has none, so set it to 0"):
        DataConfig(cache_mb=64)
    with pytest.raises(ConfigError, match="data.cache_mb=-1"):
        DataConfig(dataset="moving_digits", cache_mb=-1)


# ----------------------------------------------------------------------------- bad videos


def test_a_bad_video_is_one_warning_line_and_its_samples_read_the_next_video(
        small_set: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "set"
    shutil.copytree(small_set, root)
    folder = video_folder(str(root))
    bad = Path(folder.paths[0])
    bad.write_bytes(bad.read_bytes()[:300])  # truncated
    Path(folder.paths[1]).write_bytes(b"\x00" * 4000)  # not a video
    ds = build_dataset(video_config(root, holdout_fraction=0.0))
    with caplog.at_level(logging.WARNING):
        first = [ds[(0, 0, i)] for i in range(len(ds))]
        again = [ds[(0, 0, i)] for i in range(len(ds))]
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 2 and all("\n" not in w and "skipped" in w for w in warned)
    assert any(folder.paths[0] in w for w in warned) and any(folder.paths[1] in w for w in warned)
    assert all(torch.equal(a, b) and torch.isfinite(a).all() for a, b in zip(first, again))
    # the bad videos' samples are those of the next readable video (video 2 for both), drawn with their own keys
    assert list(ds.indices[:3]) == [0, 1, 2]
    for i in (0, 1):
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(sample_seed(0, 0, i))
            expected = ds._clips(folder.paths[2])
        assert torch.equal(first[i], expected), i
    assert not torch.equal(first[0], first[2])  # sample 2 reads video 2 with another key


def test_a_split_where_nothing_decodes_is_one_line(small_set: Path, tmp_path: Path) -> None:
    root = tmp_path / "bad"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    for name in ("a/x.mp4", "b/y.mp4"):
        (root / name).write_bytes(b"garbage")
    ds = build_dataset(video_config(root, holdout_fraction=0.0, batch_size=1))
    with pytest.raises(DataError, match="none of the 2 videos"):
        ds[(0, 0, 0)]


def test_image_methods_refuse_videos_and_vjepa_refuses_images(small_set: Path) -> None:
    from jepa_torch.config import ConfigError

    with pytest.raises(ConfigError, match="method ijepa does not support videos; use method.name=vjepa"):
        TrainConfig(data=DataConfig(dataset="moving_digits", img_size=16, frames_per_clip=4))
    with pytest.raises(ConfigError, match="method vjepa does not support images"):
        TrainConfig(method=MethodConfig(name="vjepa"))
    with pytest.raises(ConfigError, match="model.tubelet_size=2: must divide data.frames_per_clip=5"):
        video_config(small_set, frames_per_clip=5)


def test_distractors_are_static_dim_digits_and_noise_has_the_asked_spread() -> None:
    spec = MovingDigits(frames=8, size=16, sprite=8, distractors=1, noise=0.0)
    sprites = np.full((3, 8, 8), 200, np.uint8)
    from jepa_torch.data.moving_digits import _background

    background = _background(np.random.default_rng(0), sprites, 0, spec)
    assert background is not None and set(np.unique(background).tolist()) == {0, 100}  # half brightness
    video = render(sprites[0], 0, (0, 0), spec, background)
    alone = render(sprites[0], 0, (0, 0), spec)
    covered = alone.max(axis=0) > 0  # where the moving digit passes
    assert (video[:, ~covered] == background[~covered]).all() and (background[~covered] > 0).any()
    assert (video[alone > 0] == 200).all()  # the moving digit is drawn over the distractor
    spec = MovingDigits(frames=8, size=16, sprite=8, distractors=0, noise=0.1)
    noisy = render(np.zeros((8, 8), np.uint8), 0, (0, 0), spec,
                   np.full((16, 16), 128, np.uint8), np.random.default_rng(0))
    assert abs(noisy.astype(np.float64).std() - 25.5) < 1.5 and abs(noisy.mean() - 128) < 1.5


def test_video_frames_are_images_of_the_training_videos_a_new_frame_each_epoch(small_set: Path) -> None:
    cfg = TrainConfig(model=ModelConfig(preset="vit_tiny", depth=1, patch_size=4, pred_depth=1, pred_emb_dim=48),
                      data=DataConfig(dataset="video_frames", path=str(small_set), img_size=16, batch_size=8,
                                      holdout_fraction=0.25, label="direction"))
    frames = build_dataset(cfg)
    videos = build_dataset(video_config(small_set, label="direction"))
    assert frames.spec == ("image", (3, 16, 16)) and np.array_equal(frames.indices, videos.indices)
    assert frames.labels is not None and videos.labels is not None and torch.equal(frames.labels, videos.labels)
    seen = {frames[(0, epoch, 0)].sum().item() for epoch in range(6)}
    assert len(seen) > 1  # another frame in another epoch
    assert torch.equal(frames[(0, 3, 0)], frames[(0, 3, 0)])


def test_frame_wise_features_average_an_image_encoder_over_time_and_ignore_frame_order() -> None:
    from jepa_torch.evaluation.features import FrameWiseFeatures
    from jepa_torch.models import build_vit

    torch.manual_seed(0)
    encoder = build_vit("vit_tiny", img_size=16, patch_size=4, depth=2)
    source = FrameWiseFeatures("frames", encoder, 2, True, torch.device("cpu"))
    clip = torch.randn(2, 3, 4, 16, 16)
    out = source(clip)
    frames = clip.transpose(1, 2).flatten(0, 1)  # (8, 3, 16, 16)
    tokens = encoder(frames).reshape(2, 4, 16, -1).mean(dim=1)
    torch.testing.assert_close(out["pooled"], tokens.mean(dim=1), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out["tokens"].float(), tokens, rtol=0, atol=5e-3)
    reversed_clip = source(clip.flip(2))
    torch.testing.assert_close(reversed_clip["pooled"], out["pooled"], rtol=1e-5, atol=1e-5)
