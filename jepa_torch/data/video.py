"""Video data: folders of video files (or of frame images), clips, and clip-consistent augmentation.

    <root>/<class>/<video>.mp4          labelled by class folder (two or more classes)
    <root>/<video>.webm                 unlabelled
    <root>/<class>/<video>/0001.png     a video given as a folder of frame images (sorted by name)
    <root>/labels.csv                   optional: ``file,<task>,<task>...`` (``file`` relative to root); its
                                        columns are label tasks, ``data.label`` picks one (default: the first)

Files are decoded with PyAV (FFmpeg in its wheels: no system FFmpeg on Linux or macOS). A clip is
``data.frames_per_clip`` frames ``data.frame_step`` apart; its start is drawn uniformly over the video
(``clip_sampling: random``) or placed at evenly spaced positions (``uniform``, the evaluation's views).
A video shorter than a clip's span repeats its last frame. A training clip is cropped and flipped the
same way in every frame.

With ``data.cache_mb`` (:class:`DecodedVideos`) a training split decodes each video once, before the first
step, and cuts every later clip or frame from memory: the same pixels, without decoding a clip for every
sample.

A video that cannot be decoded (corrupt, truncated, no video stream) is reported once, in one warning
line naming the file, and its samples are replaced by the next readable video of the split: a run never
hangs or stops on one bad file. A split in which nothing decodes is a :class:`DataError`.
"""

from __future__ import annotations

import csv
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from jepa_torch.data.datasets import DataError, JepaDataset, SampleKey, sample_seed
from jepa_torch.data.transforms import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["FRAME_EXTENSIONS", "VIDEO_EXTENSIONS", "ClipSampler", "DecodedVideos", "FrameDataset", "VideoDataset",
           "VideoError", "VideoFolder", "VideoSplit", "centre_square", "clip_indices", "frame_count", "read_frames",
           "video_folder"]

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".m4v")
FRAME_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
LABELS_FILE = "labels.csv"


class VideoError(OSError):
    """A video that cannot be decoded; the message names the file and the reason."""


# ----------------------------------------------------------------------------- the folder


@dataclass(frozen=True)
class VideoFolder:
    """The videos of a folder and their labels.

    Attributes:
        paths: each video (a file, or a folder of frames), in a fixed order.
        labels: int64 ``(len(paths),)``, or None (unlabelled).
        classes: the label values by index (class folder names, or a labels.csv column's values).
        task: what the labels say (``class``, or a labels.csv column).
        tasks: every task the folder labels (labels.csv's columns).
    """

    paths: tuple[str, ...]
    labels: np.ndarray[Any, Any] | None
    classes: tuple[str, ...]
    task: str
    tasks: tuple[str, ...]


def _is_video(path: Path) -> bool:
    if path.is_file():
        return path.suffix.lower() in VIDEO_EXTENSIONS
    return path.is_dir() and any(p.suffix.lower() in FRAME_EXTENSIONS for p in path.iterdir() if p.is_file())


def _from_csv(root: Path, label: str | None) -> VideoFolder:
    table = root / LABELS_FILE
    with table.open(newline="") as f:
        rows = list(csv.reader(f))
    if not rows or not rows[0] or rows[0][0] != "file" or len(rows[0]) < 2:
        raise VideoError(f"{table}: the first line must be 'file,<task>[,<task>...]'; fix the header")
    header, body = rows[0], [r for r in rows[1:] if r]
    tasks = tuple(header[1:])
    task = tasks[0] if label is None else label
    if task not in tasks:
        raise VideoError(f"data.label={label!r}: {table} labels {', '.join(tasks)}; use one of them")
    column = header.index(task)
    bad = [r for r in body if len(r) != len(header)]
    if bad:
        raise VideoError(f"{table}: a line has {len(bad[0])} fields where the header has {len(header)} ({bad[0]!r})")
    values = [r[column] for r in body]
    classes = tuple(sorted(set(values), key=lambda v: (len(v), v) if v.isdigit() else (math.inf, v)))
    index = {c: i for i, c in enumerate(classes)}
    paths = tuple(str(root / r[0]) for r in body)
    return VideoFolder(paths, np.asarray([index[v] for v in values], np.int64), classes, task, tasks)


def video_folder(root: str, label: str | None = None) -> VideoFolder:
    """The videos of ``root`` and the labels ``label`` names (see the module's docstring for the layouts).

    Raises:
        VideoError: a missing folder, no videos, a bad labels.csv, or a ``label`` the folder does not have.
    """
    path = Path(root)
    if not path.is_dir():
        what = "is not a folder" if path.exists() else "does not exist"
        raise VideoError(f"data.path={root!r} {what}; give a folder of videos (<path>/<class>/<video>.mp4)")
    if (path / LABELS_FILE).is_file():
        return _from_csv(path, label)
    loose = sorted(p for p in path.iterdir() if _is_video(p))
    classes = sorted(p for p in path.iterdir() if p.is_dir() and p not in loose)
    nested = [(v, c.name) for c in classes for v in sorted(c.iterdir()) if _is_video(v)]
    if loose and nested:
        raise VideoError(f"data.path={root!r} has {len(loose)} videos at its top level and {len(nested)} in class "
                         "subfolders; put every video in a class subfolder, or all of them at the top level")
    if not loose and not nested:
        raise VideoError(f"data.path={root!r} has no videos ({', '.join(VIDEO_EXTENSIONS)}, or folders of frame "
                         "images) in it or in its class subfolders")
    if label not in (None, "class"):
        raise VideoError(f"data.label={label!r}: {root} labels videos by class folder only; use class, or add a "
                         f"{LABELS_FILE}")
    names = sorted({c for _, c in nested})
    if loose or len(names) < 2:
        return VideoFolder(tuple(str(p) for p in loose or [v for v, _ in nested]), None, (), "class", ())
    index = {c: i for i, c in enumerate(names)}
    return VideoFolder(tuple(str(v) for v, _ in nested), np.asarray([index[c] for _, c in nested], np.int64),
                       tuple(names), "class", ("class",))


# ----------------------------------------------------------------------------- decoding


def _frames_of(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in FRAME_EXTENSIONS)


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text or type(exc).__name__


def frame_count(path: str) -> int:
    """How many frames the video at ``path`` has (a file's container header, else its packets counted).

    Raises:
        VideoError: unreadable, or no video stream.
    """
    p = Path(path)
    if p.is_dir():
        n = len(_frames_of(p))
        if not n:
            raise VideoError(f"{path}: no frame images in this folder")
        return n
    import av

    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise VideoError(f"{path}: no video stream")
            stream = container.streams.video[0]
            n = int(stream.frames or 0)
            if n <= 0:
                n = sum(1 for packet in container.demux(stream) if packet.size)
    except VideoError:
        raise
    except Exception as exc:  # PyAV raises many error types (av.error.*, ValueError, OSError)
        raise VideoError(f"{path}: cannot read this video ({_reason(exc)})") from None
    if n <= 0:
        raise VideoError(f"{path}: the video has no frames")
    return n


def read_frames(path: str, indices: Sequence[int]) -> np.ndarray[Any, Any]:
    """The frames at ``indices`` (any order, repeats allowed) as uint8 ``(len(indices), H, W, 3)`` RGB.

    Raises:
        VideoError: unreadable, or fewer frames decode than an index asks for.
    """
    wanted = sorted(set(int(i) for i in indices))
    p = Path(path)
    got: dict[int, np.ndarray[Any, Any]] = {}
    try:
        if p.is_dir():
            from PIL import Image

            files = _frames_of(p)
            for i in wanted:
                with Image.open(files[i]) as img:
                    got[i] = np.asarray(img.convert("RGB"))
        else:
            import av
            from av.video.reformatter import VideoReformatter

            # One converter for the whole video (`frame.to_ndarray(format=...)` sets one up per frame, which
            # costs more than decoding a small frame), and the codec's default threading: frame threads
            # ("AUTO") were slower on 48 px and 224 px clips alike (docs/benchmarks.md, video decoding).
            to_rgb = VideoReformatter()
            with av.open(path) as container:
                stream = container.streams.video[0]
                for i, frame in enumerate(container.decode(stream)):
                    if i in wanted:
                        got[i] = to_rgb.reformat(frame, format="rgb24").to_ndarray()
                    if i >= wanted[-1]:
                        break
    except Exception as exc:
        raise VideoError(f"{path}: cannot decode this video ({_reason(exc)})") from None
    missing = [i for i in wanted if i not in got]
    if missing:
        raise VideoError(f"{path}: decoded {len(got)} of the frames asked for (frame {missing[0]} is missing)")
    shapes = {a.shape for a in got.values()}
    if len(shapes) != 1:
        raise VideoError(f"{path}: frames of different sizes {sorted(shapes)[:2]}")
    return np.stack([got[int(i)] for i in indices])


def clip_indices(num_frames: int, frames_per_clip: int, frame_step: int, start: int) -> list[int]:
    """The frames of the clip starting at ``start``; past the end, the last frame repeats."""
    return [min(start + k * frame_step, num_frames - 1) for k in range(frames_per_clip)]


# ----------------------------------------------------------------------------- clips and augmentation


def centre_square(x: Tensor, side: int) -> Tensor:
    """Frames ``(..., H, W)`` with the shorter side resized to ``side`` (antialiased), then the centre square."""
    h, w = x.shape[-2:]
    scale = side / min(h, w)
    size = (max(side, round(h * scale)), max(side, round(w * scale)))
    if size != (h, w):
        lead = x.shape[:-2]
        x = F.interpolate(x.reshape(-1, 1, h, w), size=size, mode="bilinear", align_corners=False,
                          antialias=True).reshape(*lead, *size)
    top, left = (x.shape[-2] - side) // 2, (x.shape[-1] - side) // 2
    return x[..., top:top + side, left:left + side]



@dataclass(frozen=True)
class ClipSampler:
    """Where clips start, and how their frames become the encoder's input.

    Attributes:
        frames_per_clip, frame_step: the clip.
        img_size: the square side fed to the encoder.
        sampling: ``random`` (a start drawn uniformly) or ``uniform`` (``num_clips`` evenly spaced starts).
        num_clips: clips per video (``uniform``): a sample is then ``(num_clips, C, T, S, S)``.
        augment: random resized crop (``crop_scale``, aspect 3/4 to 4/3) and, with ``flip``, a horizontal
            flip, drawn once per clip; else the frame resized and centre-cropped.
    """

    frames_per_clip: int
    frame_step: int
    img_size: int
    sampling: str = "random"
    num_clips: int = 1
    augment: bool = False
    crop_scale: tuple[float, float] = (0.3, 1.0)
    flip: bool = False

    @property
    def span(self) -> int:
        return (self.frames_per_clip - 1) * self.frame_step + 1

    def starts(self, num_frames: int) -> list[int]:
        """The clip starts in a video of ``num_frames`` (drawn from torch's generator for ``random``)."""
        room = max(0, num_frames - self.span)
        if self.sampling == "random":
            return [int(torch.randint(0, room + 1, ()).item()) for _ in range(self.num_clips)]
        if self.num_clips == 1:
            return [room // 2]
        return [round(room * k / (self.num_clips - 1)) for k in range(self.num_clips)]

    def _crop_box(self, h: int, w: int) -> tuple[int, int, int, int]:
        """``(top, left, height, width)`` of a random resized crop (torchvision's rule, 10 tries then centre)."""
        area = h * w
        log_ratio = (math.log(3 / 4), math.log(4 / 3))
        for _ in range(10):
            target = area * float(torch.empty(1).uniform_(*self.crop_scale))
            ratio = math.exp(float(torch.empty(1).uniform_(*log_ratio)))
            cw, ch = round(math.sqrt(target * ratio)), round(math.sqrt(target / ratio))
            if 0 < cw <= w and 0 < ch <= h:
                top = int(torch.randint(0, h - ch + 1, ()).item())
                left = int(torch.randint(0, w - cw + 1, ()).item())
                return top, left, ch, cw
        side = min(h, w)
        return (h - side) // 2, (w - side) // 2, side, side

    def frames(self, clip: np.ndarray[Any, Any]) -> Tensor:
        """uint8 ``(T, H, W, 3)`` -> normalised float32 ``(3, T, S, S)``."""
        x = torch.from_numpy(np.ascontiguousarray(clip)).permute(0, 3, 1, 2).float().div_(255.0)  # (T, 3, H, W)
        h, w = x.shape[-2:]
        s = self.img_size
        if self.augment:
            top, left, ch, cw = self._crop_box(h, w)
            x = x[..., top:top + ch, left:left + cw]
            if self.flip and bool(torch.rand(()) < 0.5):
                x = x.flip(-1)
        else:
            x = centre_square(x, s)
        if x.shape[-2:] != (s, s):
            x = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False, antialias=True)
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        return ((x - mean) / std).permute(1, 0, 2, 3).contiguous()  # (3, T, S, S)


# ----------------------------------------------------------------------------- decoded videos in memory


class DecodedVideos:
    """Whole videos decoded once and kept in memory (``data.cache_mb``), so that clips and frames are cut from
    memory instead of decoded from their files on every read. The pixels are the same either way (decoding is
    deterministic), so the batches and the losses are too.

    Args:
        budget: bytes of decoded frames (uint8 RGB) kept at most.
    """

    def __init__(self, budget: int) -> None:
        if budget < 0:
            raise ValueError(f"DecodedVideos: budget={budget} must be >= 0")
        self.budget = budget
        self.videos: dict[str, np.ndarray[Any, Any]] = {}
        self.nbytes = 0

    def fill(self, paths: Sequence[str]) -> int:
        """Decode ``paths`` in order until the budget is spent; how many are kept. A video that does not decode
        whole is left out: its samples read it from its file, and are reported and skipped there as before."""
        for path in paths:
            if path in self.videos:
                continue
            try:
                frames = read_frames(path, range(frame_count(path)))
            except VideoError:
                continue
            if self.nbytes + frames.nbytes > self.budget:
                break  # the videos after it stay on disk (a fixed prefix of the split, whatever their sizes)
            self.videos[path] = frames
            self.nbytes += frames.nbytes
        return len(self.videos)

    def count(self, path: str) -> int | None:
        """The frames of ``path`` if it is kept, else None."""
        video = self.videos.get(path)
        return None if video is None else len(video)

    def read(self, path: str, indices: Sequence[int]) -> np.ndarray[Any, Any]:
        """:func:`read_frames` of ``path``, from memory if it is kept."""
        video = self.videos.get(path)
        return read_frames(path, indices) if video is None else video[np.asarray(indices, dtype=np.int64)]


# ----------------------------------------------------------------------------- the datasets

_REPORTED: set[str] = set()  # videos already reported as unreadable by this process


class VideoSplit(JepaDataset):
    """What the two video datasets share: a split of a video folder, its labels, its videos' frame counts, and
    the decoded videos kept in memory (:meth:`cache`)."""

    def __init__(self, indices: np.ndarray[Any, Any], folder: VideoFolder,
                 transform: Callable[[Any], Tensor] | None) -> None:
        super().__init__(indices, transform)
        self.folder = folder
        self.labels = None if folder.labels is None else torch.from_numpy(folder.labels[indices])
        self.classes = folder.classes
        self.decoded: DecodedVideos | None = None
        self._counts: dict[str, int] = {}

    def cache(self, budget_mb: float) -> str:
        """Decode the split's videos into memory, up to ``budget_mb`` MiB (before a run's first step, so that
        DataLoader workers, forked later, share them); one line saying what was kept."""
        start = time.perf_counter()
        self.decoded = DecodedVideos(int(budget_mb * 2**20))
        paths = [self.folder.paths[int(i)] for i in self.indices]
        kept = self.decoded.fill(paths)
        mib = self.decoded.nbytes / 2**20
        rest = "" if kept == len(paths) else (f"; the other {len(paths) - kept} are decoded on every read "
                                              "(unreadable, or past the budget: raise data.cache_mb to keep them)")
        return (f"decoded {kept} of {len(paths)} training videos into memory ({mib:.0f} MiB of data.cache_mb="
                f"{budget_mb}) in {time.perf_counter() - start:.1f} s{rest}")

    def _count(self, path: str) -> int:
        kept = None if self.decoded is None else self.decoded.count(path)
        if kept is not None:
            return kept
        if path not in self._counts:
            self._counts[path] = frame_count(path)
        return self._counts[path]

    def _read(self, path: str, indices: Sequence[int]) -> np.ndarray[Any, Any]:
        return read_frames(path, indices) if self.decoded is None else self.decoded.read(path, indices)


class VideoDataset(VideoSplit):
    """A split of a video folder: each sample one clip ``(3, T, S, S)`` (or ``(V, 3, T, S, S)`` for
    ``num_clips = V > 1``), its start and crop drawn from ``(seed, epoch, index)``.

    Args:
        indices: the split's positions in ``folder``.
        folder: the videos (:func:`video_folder`).
        sampler: how clips are cut and augmented.
    """

    def __init__(self, indices: np.ndarray[Any, Any], folder: VideoFolder, sampler: ClipSampler) -> None:
        super().__init__(indices, folder, None)
        self.sampler = sampler
        self.spec = ("video", (3, sampler.frames_per_clip, sampler.img_size, sampler.img_size))

    def _clips(self, path: str) -> Tensor:
        n = self._count(path)
        s = self.sampler
        frames = [clip_indices(n, s.frames_per_clip, s.frame_step, start) for start in s.starts(n)]
        decoded = self._read(path, [i for clip in frames for i in clip])  # (V*T, H, W, 3)
        clips = [s.frames(decoded[k * s.frames_per_clip:(k + 1) * s.frames_per_clip]) for k in range(len(frames))]
        return clips[0] if s.num_clips == 1 else torch.stack(clips)

    def __getitem__(self, key: SampleKey) -> Tensor:
        return _first_readable(self, key, self._clips)


def _first_readable(split: VideoSplit, key: SampleKey, load: Callable[[str], Tensor]) -> Tensor:
    """``load`` of the sample's video under its seeded draw; a video that does not decode is reported once and
    the next video of the split stands in."""
    seed, epoch, index = key
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(sample_seed(seed, epoch, index))
        for attempt in range(len(split.indices)):
            path = split.folder.paths[int(split.indices[(index + attempt) % len(split.indices)])]
            try:
                return load(path)
            except VideoError as exc:
                if path not in _REPORTED:
                    _REPORTED.add(path)
                    log.warning("%s; skipped (its samples read the next video)", exc,
                                extra={"rank_local": True})  # this process's reading: each rank says its own
    raise DataError(f"none of the {len(split.indices)} videos of this split decodes (first: "
                    f"{split.folder.paths[int(split.indices[0])]}); check the files and that PyAV is installed")


class FrameDataset(VideoSplit):
    """A video folder's frames as images (``data.dataset: video_frames``): sample ``(seed, epoch, i)`` is one
    frame of video ``i`` drawn from that key (so a new frame each epoch), resized to ``img_size`` and passed
    through the image ``transform``. What a frame-wise image encoder trains on.
    """

    def __init__(self, indices: np.ndarray[Any, Any], folder: VideoFolder, img_size: int,
                 transform: Callable[[Any], Tensor]) -> None:
        super().__init__(indices, folder, transform)
        self.img_size = img_size
        self.spec = ("image", (3, img_size, img_size))

    def _frame(self, path: str) -> Tensor:
        t = int(torch.randint(0, self._count(path), ()).item())
        frame = torch.from_numpy(self._read(path, [t])[0]).permute(2, 0, 1).float().div_(255.0)  # (3, H, W)
        assert self.transform is not None
        return self.transform(centre_square(frame, self.img_size))

    def __getitem__(self, key: SampleKey) -> Tensor:
        return _first_readable(self, key, self._frame)
