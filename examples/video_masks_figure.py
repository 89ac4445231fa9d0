"""Draw V-JEPA 2's two mask configurations over a moving digit: docs/img/video_masks*.png.

    python examples/video_masks_figure.py [--out docs/img]

A 16-frame, 128 px clip of a scikit-learn digit moving with a bounce is cut into 2x16x16 tubelets
(an 8x8x8 grid). One batch of 8 clips is drawn with V-JEPA 2's configurations (8 blocks of 0.15
and 2 of 0.7, every frame) from seed 0; the figure shows sample 0, each tubelet's first frame under
its masks: once whole (``trim="none"``), once as the official collator would batch it
(``official_compatible()``: floored sizes, one size per configuration, raster-order cut).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

from jepa_core.video_masks import VideoMaskConfig, sample_video_masks, vjepa2_configs
from jepa_torch.io.plots import render_video_masks


def moving_digit(frames: int = 16, size: int = 128, seed: int = 0) -> np.ndarray:
    """``(frames, size, size)``: one digit (32 px) moving diagonally, bouncing off the borders."""
    digit = load_digits().images[seed]  # (8, 8), values 0..16
    sprite = np.kron(digit / 16.0, np.ones((4, 4)))  # (32, 32)
    clip = np.zeros((frames, size, size))
    y, x, dy, dx = 10.0, 4.0, 5.0, 9.0
    for t in range(frames):
        clip[t, int(y):int(y) + 32, int(x):int(x) + 32] = sprite
        y, x = y + dy, x + dx
        if not 0 <= y <= size - 32:
            dy, y = -dy, min(max(y, 0.0), size - 32.0)
        if not 0 <= x <= size - 32:
            dx, x = -dx, min(max(x, 0.0), size - 32.0)
    return clip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/img"))
    args = parser.parse_args()
    clip = moving_digit()[::2]  # each tubelet's first frame: (8, 128, 128)
    grid = (8, 8, 8)
    names = ["short-range 8x0.15", "long-range 2x0.7"]
    whole = sample_video_masks(grid, vjepa2_configs(trim="none"), 0, 8)
    render_video_masks(whole, args.out / "video_masks.png", clip, names=names,
                       title="V-JEPA 2 masks over a moving digit (whole: trim='none'), sample 0 of 8, seed 0")
    official = sample_video_masks(grid, [VideoMaskConfig.official_compatible(num_blocks=8, spatial_scale=(0.15, 0.15)),
                                         VideoMaskConfig.official_compatible(num_blocks=2, spatial_scale=(0.7, 0.7))],
                                  0, 8)
    render_video_masks(official, args.out / "video_masks_official.png", clip, names=names,
                       title="the same law batched as the official collator (raster-order cut), sample 0 of 8")
    for name, batches in (("whole", whole), ("official", official)):
        print(name, [(b.context[0].shape[1], b.targets[0].shape[1]) for b in batches])


if __name__ == "__main__":
    main()
