"""The official I-JEPA pre-training transforms, and the evaluation ones.

Every random draw comes from torch's global CPU generator, so a caller that seeds it
(``jepa_torch.data.datasets`` does, per sample) gets a reproducible image.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from PIL import ImageFilter
from torch import Tensor

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "GaussianBlur", "official_transforms"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class GaussianBlur:
    """The official blur: with probability ``p``, radius uniform in ``[radius_min, radius_max]``.

    Draws from torch's global RNG (seeded per sample); PIL images use PIL's filter,
    tensors ``(C, H, W)`` torchvision's with the radius as sigma.
    """

    def __init__(self, p: float = 0.5, radius_min: float = 0.1, radius_max: float = 2.0) -> None:
        self.p, self.radius_min, self.radius_max = p, radius_min, radius_max

    def __call__(self, img: Any) -> Any:
        if float(torch.rand(())) >= self.p:
            return img
        radius = self.radius_min + float(torch.rand(())) * (self.radius_max - self.radius_min)
        if isinstance(img, Tensor):
            from torchvision.transforms import functional as TF

            # one kernel size for every radius (3 sigma of the largest): a new conv shape costs ~50 ms on the CPU
            kernel = min(2 * math.ceil(3 * self.radius_max) + 1, (min(img.shape[-2:]) - 1) | 1)
            return TF.gaussian_blur(img, [kernel, kernel], [radius, radius])
        return img.filter(ImageFilter.GaussianBlur(radius=radius))


def official_transforms(img_size: int, crop_scale: tuple[float, float] = (0.3, 1.0), horizontal_flip: bool = False,
                        color_jitter: float = 0.0, gaussian_blur: bool = False, *, from_pil: bool = True,
                        augment: bool = True) -> Callable[[Any], Tensor]:
    """The official pre-training transforms, or the evaluation ones (``augment=False``).

    Training: random resized crop to ``img_size`` (area ``crop_scale``), optional horizontal
    flip, optional colour distortion of strength ``s = color_jitter`` (brightness, contrast,
    saturation ``0.8 s``, hue ``0.2 s``, applied with p=0.8, then grayscale with p=0.2),
    optional Gaussian blur (p=0.5, radius 0.1-2), then ImageNet normalisation. Evaluation:
    resize to ``img_size * 256 / 224``, centre crop ``img_size`` (PIL input; a tensor input is
    already at size), normalise.

    Args:
        img_size: the output side.
        crop_scale, horizontal_flip, color_jitter, gaussian_blur: the ``data.*`` fields.
        from_pil: input is a PIL image (``ToTensor`` is inserted); otherwise a float tensor
            ``(3, H, W)`` in ``[0, 1]``.
        augment: the training pipeline; False for evaluation.

    Returns:
        A callable mapping one input to a float32 tensor ``(3, img_size, img_size)``.
    """
    import torchvision.transforms as T

    steps: list[Callable[[Any], Any]] = []
    if augment:
        steps.append(T.RandomResizedCrop(img_size, scale=crop_scale))
        if horizontal_flip:
            steps.append(T.RandomHorizontalFlip())
        if color_jitter > 0:
            s = color_jitter
            steps += [T.RandomApply([T.ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s)], p=0.8),
                      T.RandomGrayscale(p=0.2)]
        if gaussian_blur:
            steps.append(GaussianBlur())
    elif from_pil:
        steps += [T.Resize(img_size * 256 // 224), T.CenterCrop(img_size)]
    if from_pil:
        steps.append(T.ToTensor())
    steps.append(T.Normalize(IMAGENET_MEAN, IMAGENET_STD))
    return T.Compose(steps)  # type: ignore[no-any-return]
