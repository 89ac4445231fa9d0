"""Multi-crop views of a batch, drawn on the batch's device: LeJEPA's global and local views.

Each view of each image is a random resized crop (area a fraction ``scale`` of the image, aspect
ratio log-uniform in ``ratio``, placed uniformly inside the image), optionally rotated about its
centre by up to ``rotation`` degrees and mirrored, resampled bilinearly to the view's side (the
image's border pixels extend it where a rotated crop reaches outside). All views of a batch come from one ``torch.Generator`` that the
trainer seeds with ``(seed, step)``, so a step's views are a pure function of the run's seed and
the step, as its masks are, and a resumed run draws the same ones. The crops are one
``affine_grid`` + ``grid_sample`` per view set: no per-image Python loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["MultiCrop", "view_generator"]

_VIEWS = 0x76696577  # stream tag of the views' generator


def view_generator(seed: int, step: int) -> torch.Generator:
    """The CPU generator of one step's views, seeded from ``(seed, step)``."""
    state = np.random.SeedSequence([seed % 2**64, step % 2**64, _VIEWS]).generate_state(2)
    return torch.Generator().manual_seed(int(state[0]) | int(state[1]) << 32)


@dataclass(frozen=True)
class MultiCrop:
    """How many views of which size, and the crops they come from.

    Attributes:
        global_views: views at ``global_size`` (the ones whose mean is LeJEPA's target).
        local_views: views at ``local_size``.
        global_size, local_size: output side of each kind, in pixels.
        global_scale, local_scale: ``(low, high)`` area fraction of the crop.
        ratio: ``(low, high)`` aspect ratio (width / height) of the crop, log-uniform.
        rotation: rotate each view by an angle uniform in ``[-rotation, rotation]`` degrees.
        flip: mirror each view with probability 1/2.
    """

    global_views: int = 2
    local_views: int = 4
    global_size: int = 32
    local_size: int = 16
    global_scale: tuple[float, float] = (0.3, 1.0)
    local_scale: tuple[float, float] = (0.05, 0.3)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    rotation: float = 0.0
    flip: bool = False

    def __post_init__(self) -> None:
        if self.global_views < 1 or self.local_views < 0:
            raise ValueError(f"global_views={self.global_views}, local_views={self.local_views}: need at least one "
                             "global view and no negative count")
        for name in ("global_scale", "local_scale"):
            low, high = getattr(self, name)
            if not 0 < low <= high <= 1:
                raise ValueError(f"{name}={getattr(self, name)}: need 0 < low <= high <= 1")
        if not 0 < self.ratio[0] <= self.ratio[1]:
            raise ValueError(f"ratio={self.ratio}: need 0 < low <= high")
        if not 0 <= self.rotation <= 180:
            raise ValueError(f"rotation={self.rotation}: need 0 <= degrees <= 180")

    def __call__(self, images: Tensor, generator: torch.Generator, rows: tuple[int, int] | None = None) -> list[Tensor]:
        """The views of ``images`` ``(B, C, H, W)``: the global ones first, then the local ones.

        Args:
            images: this process's images.
            generator: the step's generator (:func:`view_generator`).
            rows: ``(first, global batch)`` under torchrun: the crops of the whole global batch are
                drawn and this process takes rows ``first .. first + B``, so that ``N`` processes crop
                exactly as one process does at the global batch. None: ``(0, B)``.

        Returns:
            ``global_views`` tensors ``(B, C, global_size, global_size)``, then ``local_views``
            tensors ``(B, C, local_size, local_size)``.
        """
        kinds = [(self.global_size, self.global_scale)] * self.global_views
        kinds += [(self.local_size, self.local_scale)] * self.local_views
        first, total = (0, images.shape[0]) if rows is None else rows
        return [self._crop(images, size, scale, generator, first, total) for size, scale in kinds]

    def _crop(self, images: Tensor, size: int, scale: tuple[float, float], generator: torch.Generator,
              first: int, total: int) -> Tensor:
        b, c = images.shape[:2]
        u = torch.rand(total, 6, generator=generator, dtype=torch.float64)[first:first + b]  # area, ratio, x, y, flip, angle
        area = scale[0] + (scale[1] - scale[0]) * u[:, 0]
        log_lo, log_hi = math.log(self.ratio[0]), math.log(self.ratio[1])
        ratio = torch.exp(log_lo + (log_hi - log_lo) * u[:, 1])
        width = torch.sqrt(area * ratio).clamp(max=1.0)  # fractions of the image side
        height = torch.sqrt(area / ratio).clamp(max=1.0)
        cx = (2 * u[:, 2] - 1) * (1 - width)  # centre in [-1, 1] coordinates, crop inside the image
        cy = (2 * u[:, 3] - 1) * (1 - height)
        mirrored = (u[:, 4] < 0.5) if self.flip else torch.zeros(b, dtype=torch.bool)
        sign = 1.0 - 2.0 * mirrored.to(torch.float64)
        angle = math.radians(self.rotation) * (2 * u[:, 5] - 1)
        cos, sin = torch.cos(angle), torch.sin(angle)
        theta = torch.zeros(b, 2, 3, dtype=torch.float64)  # output (x, y) -> input (x, y), [-1, 1] coordinates
        theta[:, 0, 0], theta[:, 0, 1], theta[:, 0, 2] = sign * width * cos, -height * sin, cx
        theta[:, 1, 0], theta[:, 1, 1], theta[:, 1, 2] = sign * width * sin, height * cos, cy
        theta = theta.to(images.device, images.dtype)
        grid = F.affine_grid(theta, [b, c, size, size], align_corners=False)  # (B, size, size, 2)
        return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
