"""Moving digits: a small labelled video set, made offline from scikit-learn's digits and written as mp4 files.

Each of the 1797 digits becomes one video: the 8x8 digit, enlarged to a ``sprite``-pixel square, moves on
a black ``size x size`` frame at ``speed`` pixels per frame along one of eight directions (the four axes
and the four diagonals), bouncing off the edges, over a static distractor (another digit at half
brightness) and under pixel noise. Each video is labelled with

- ``digit``: the digit's class (0-9), which any single frame shows;
- ``direction``: the direction of motion at the first frame (0 = right, counter-clockwise in steps of
  45 degrees), which no single frame shows and a time-averaged feature cannot tell from its opposite.

With the defaults (16 frames of 48 px, a 16 px sprite, 1 px per frame) a start is drawn where the digit
reaches no edge within the video, so ``direction`` holds for every frame; longer or faster videos bounce.
The frame is wide enough for the start to vary by 17 px along a moving axis: on a frame the digit barely
crosses, every video of a direction follows nearly one path, and raw pixels read the direction off it
(docs/evaluation.md).
Directions are balanced (each takes every eighth video, shuffled) and starts are uniform over the room
the direction leaves, so a digit's mean position says nothing of its direction.

The set is written once, as H.264 mp4 files at constant QP (the same bytes on every write with one PyAV build)
with a ``labels.csv`` (``file,digit,direction``), into a folder named by a hash of its settings under
``$JEPA_DATA`` (default ``~/.cache/jepa-reference``), and read back with the same decoder a user's videos
go through (``jepa_torch.data.video``).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DIRECTIONS", "MovingDigits", "data_home", "moving_digits_folder", "render", "write_moving_digits"]

DIRECTIONS = ((1, 0), (1, -1), (0, -1), (-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1))
"""``(dx, dy)`` per direction label, in image coordinates (y down): right, then counter-clockwise by 45 deg."""
_VERSION = 2  # bump when the rendering or the encoding changes: a new folder is written (2: constant QP)


@dataclass(frozen=True)
class MovingDigits:
    """The settings of a moving-digits set (every one of them enters the folder's name).

    Attributes:
        frames: frames per video.
        size: frame side in pixels.
        sprite: the digit's side in pixels.
        speed: pixels per frame along each moving axis.
        fps: the files' frame rate (metadata only).
        seed: directions, starts.
        videos: how many of the digits (the first ones) become videos; None: all 1797.
        distractors: static digits (others of the set, at half brightness, anywhere in the frame) under the
            moving one: clutter that a pixel or frame-wise feature must see past.
        noise: std of Gaussian noise added to every pixel of every frame, in units of full brightness.
        jitter: the moving digit's wobble: an offset drawn for every frame, uniform in ``[-jitter, jitter]``
            pixels along each axis, added to its path. With a jitter near the speed, two neighbouring frames
            no longer tell the direction; the drift over the clip does.
    """

    frames: int = 16
    size: int = 48
    sprite: int = 16
    speed: int = 1
    fps: int = 8
    seed: int = 0
    videos: int | None = None
    distractors: int = 1
    noise: float = 0.05
    jitter: int = 0

    def __post_init__(self) -> None:
        if self.frames < 2 or self.speed < 1 or not 4 <= self.sprite < self.size or self.size % 2:
            raise ValueError(f"{self}: need frames >= 2, speed >= 1, 4 <= sprite < size and an even size")
        if self.distractors < 0 or not 0.0 <= self.noise <= 1.0:
            raise ValueError(f"distractors={self.distractors}, noise={self.noise}: need >= 0 and a noise in [0, 1]")
        if not 0 <= 2 * self.jitter < self.size - self.sprite:
            raise ValueError(f"jitter={self.jitter}: need 0 <= 2 * jitter < size - sprite")
        if self.videos is not None and self.videos < 1:
            raise ValueError(f"videos={self.videos}: must be >= 1, or None for every digit")

    def key(self) -> str:
        settings = {k: v for k, v in asdict(self).items() if k != "jitter" or v}  # sets without it keep their name
        text = json.dumps({**settings, "version": _VERSION}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def data_home() -> Path:
    """Where generated data sets are written: ``$JEPA_DATA``, else ``~/.cache/jepa-reference``."""
    return Path(os.environ.get("JEPA_DATA") or Path.home() / ".cache" / "jepa-reference").expanduser()


def _sprites(side: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Every digit as a uint8 ``(side, side)`` sprite (bilinear from 8x8, 0..255), and its class."""
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy(np.asarray(bunch.images, np.float32) / 16.0)[:, None]  # (N, 1, 8, 8)
    big = F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False)[:, 0]
    return (big.clamp(0, 1) * 255).round().to(torch.uint8).numpy(), np.asarray(bunch.target, np.int64)


def _path(start: float, velocity: int, room: int, frames: int) -> list[int]:
    """Positions along one axis over ``frames``, reflecting at 0 and ``room``."""
    out, p, v = [], start, velocity
    for _ in range(frames):
        out.append(int(p))
        p += v
        if p < 0 or p > room:
            v = -v
            p = -p if p < 0 else 2 * room - p
    return out


def render(sprite: np.ndarray[Any, Any], direction: int, start: tuple[int, int], spec: MovingDigits,
           background: np.ndarray[Any, Any] | None = None,
           rng: np.random.Generator | None = None) -> np.ndarray[Any, Any]:
    """One video, uint8 ``(frames, size, size)``: the sprite moving over ``background`` (a static uint8
    ``(size, size)`` frame; black by default), plus ``spec.jitter`` and ``spec.noise`` drawn from ``rng``.
    ``start`` is on the path, which keeps ``spec.jitter`` pixels from each edge for the wobble."""
    if (spec.noise > 0 or spec.jitter > 0) and rng is None:
        raise ValueError("render: a spec with noise or jitter needs an rng")
    dx, dy = DIRECTIONS[direction]
    track = _track(spec)
    xs = np.array(_path(start[0], dx * spec.speed, track, spec.frames)) + spec.jitter
    ys = np.array(_path(start[1], dy * spec.speed, track, spec.frames)) + spec.jitter
    if spec.jitter > 0:
        assert rng is not None
        wobble = rng.integers(-spec.jitter, spec.jitter + 1, (2, spec.frames))
        xs, ys = xs + wobble[0], ys + wobble[1]
    video = np.zeros((spec.frames, spec.size, spec.size), np.uint8)
    if background is not None:
        video[:] = background
    for t, (x, y) in enumerate(zip(xs.tolist(), ys.tolist())):
        patch = video[t, y:y + spec.sprite, x:x + spec.sprite]
        np.maximum(patch, sprite, out=patch)
    if spec.noise > 0:
        assert rng is not None
        noisy = video + rng.normal(0.0, 255.0 * spec.noise, video.shape)
        video = np.clip(np.round(noisy), 0, 255).astype(np.uint8)
    return video


def _track(spec: MovingDigits) -> int:
    """The last position of the digit's path along an axis (its wobble around the path stays in the frame)."""
    return spec.size - spec.sprite - 2 * spec.jitter


def _background(rng: np.random.Generator, sprites: np.ndarray[Any, Any], skip: int,
                spec: MovingDigits) -> np.ndarray[Any, Any] | None:
    """``spec.distractors`` other digits at half brightness, anywhere, or None without distractors."""
    if not spec.distractors:
        return None
    frame = np.zeros((spec.size, spec.size), np.uint8)
    room = spec.size - spec.sprite
    for _ in range(spec.distractors):
        other = int(rng.integers(0, len(sprites) - 1))
        other += int(other >= skip)  # never the moving digit's own image
        x, y = (int(v) for v in rng.integers(0, room + 1, 2))
        patch = frame[y:y + spec.sprite, x:x + spec.sprite]
        np.maximum(patch, sprites[other] // 2, out=patch)
    return frame


def _start(rng: np.random.Generator, d: int, spec: MovingDigits) -> int:
    """A start along an axis moving by ``d`` (-1, 0, 1): where the video reaches no edge, if there is such room."""
    room, travel = _track(spec), (spec.frames - 1) * spec.speed
    if d == 0 or travel > room:
        return int(rng.integers(0, room + 1))
    low = 0 if d > 0 else travel
    return int(rng.integers(low, low + room - travel + 1))


def _write_mp4(path: Path, video: np.ndarray[Any, Any], fps: int) -> None:
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height = video.shape[2], video.shape[1]
        stream.pix_fmt = "yuv420p"
        # Constant QP: x264's default rate control (CRF, whose macroblock tree adapts the quantiser from a
        # look-ahead) wrote different bytes for the same frames from one write to the next, so the same
        # settings did not give the same pixels. QP 12 is as faithful (mean error 0.9 grey levels, at most 8)
        # and about as small (20 kB a default video).
        stream.options = {"qp": "12", "preset": "veryfast"}
        for frame in video:
            rgb = np.repeat(frame[:, :, None], 3, axis=2)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def write_moving_digits(root: str | Path, spec: MovingDigits = MovingDigits()) -> Path:
    """Write the set of ``spec`` into ``root`` (made atomically: a partial set is never left there); returns it."""
    root = Path(root)
    sprites, digits = _sprites(spec.sprite)
    sprites, digits = sprites[:spec.videos], digits[:spec.videos]
    rng = np.random.default_rng([spec.seed, 0x6D6F7665])  # "move"
    directions = rng.permutation(np.arange(len(digits)) % len(DIRECTIONS))
    root.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{root.name}-", dir=root.parent))
    scratch.chmod(0o755)  # mkdtemp's 0700 would stay on the finished folder
    try:
        (scratch / "videos").mkdir()
        rows = []
        for i, (sprite, digit, direction) in enumerate(zip(sprites, digits, directions)):
            dx, dy = DIRECTIONS[int(direction)]
            start = (_start(rng, dx, spec), _start(rng, dy, spec))
            name = f"videos/{i:05d}.mp4"
            video = render(sprite, int(direction), start, spec, _background(rng, sprites, i, spec), rng)
            _write_mp4(scratch / name, video, spec.fps)
            rows.append((name, int(digit), int(direction)))
        with (scratch / "labels.csv").open("w", newline="") as f:
            csv.writer(f).writerows([("file", "digit", "direction"), *rows])
        (scratch / "moving_digits.json").write_text(json.dumps({**asdict(spec), "version": _VERSION}, indent=1))
        try:
            scratch.rename(root)
        except OSError:  # another process wrote it first
            if not (root / "labels.csv").is_file():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return root


def moving_digits_folder(path: str | None = None, spec: MovingDigits = MovingDigits()) -> Path:
    """The folder of the set of ``spec`` (``path``, else a folder named by its settings under :func:`data_home`),
    written first if it is not there."""
    root = Path(path).expanduser() if path else data_home() / f"moving_digits-{spec.key()}"
    if not (root / "labels.csv").is_file():
        write_moving_digits(root, spec)
    return root
