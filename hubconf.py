"""torch.hub entry points: this project's I-JEPA encoders and models, with weights you name.

    import torch
    encoder = torch.hub.load("/path/to/this/checkout", "vit_huge14", source="local",
                             weights="/data/IN1K-vit.h.14-300e.pth.tar")          # official weights, a path
    encoder = torch.hub.load("/path/to/this/checkout", "vit_huge14", source="local",
                             weights="https://host/IN1K-vit.h.14-300e.pth.tar")   # or a URL (cached)
    model = torch.hub.load("/path/to/this/checkout", "jepa", source="local",
                           weights="runs/x/checkpoints/step_00001000.pt")          # the whole model
    encoder = torch.hub.load("/path/to/this/checkout", "vit_base16", source="local")  # random init

``weights`` is a file (an official ``.pth.tar``, a training checkpoint of this project, or a
``.safetensors`` export) or an ``http(s)://`` / ``file://`` URL, downloaded once into
``torch.hub.get_dir()/checkpoints``. With weights the architecture is read from the file (the preset
of the entry point is not checked against it); without, the entry point's preset is built with the
official initialisation. The project ships no weights and downloads nothing unless given a URL.
"""

from __future__ import annotations

from pathlib import Path as _Path
from typing import Any
from urllib.parse import urlparse as _urlparse

dependencies = ["torch", "numpy"]


def _local(weights: str) -> _Path:
    """The file behind ``weights``: a URL is downloaded once into the hub cache; a path must exist."""
    import torch

    scheme = _urlparse(weights).scheme
    if scheme in ("http", "https", "file"):
        name = _Path(_urlparse(weights).path).name or "weights.pth.tar"
        cached = _Path(torch.hub.get_dir()) / "checkpoints" / name
        if not cached.is_file():
            cached.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(weights, str(cached), progress=False)
        return cached
    path = _Path(weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"weights={weights!r}: no such file; give a checkpoint path or an http(s):// URL")
    return path


def encoder(preset: str = "vit_huge", patch_size: int = 14, img_size: int = 224, weights: str | None = None,
            which: str = "target", **options: Any) -> Any:
    """An I-JEPA image encoder (``jepa_torch.models.vit.TransformerEncoder``), in eval mode when weights are given.

    Args:
        preset: ``vit_tiny`` .. ``vit_giant`` (used without weights).
        patch_size, img_size: the patch and image side (used without weights).
        weights: a checkpoint path or URL (see the module docstring); None: random init.
        which: ``target`` (the EMA encoder, which I-JEPA evaluates) or ``context``.
        **options: further ``jepa_torch.models.build_vit`` options (without weights).
    """
    from jepa_torch.io.export import load_encoder
    from jepa_torch.models import build_vit

    if weights is not None:
        return load_encoder(_local(weights), which=which)  # type: ignore[arg-type]
    return build_vit(preset, img_size=img_size, patch_size=patch_size, **options)


def jepa(weights: str, **options: Any) -> Any:
    """The whole model of a checkpoint, in eval mode: for I-JEPA (official files included) its three networks
    (``jepa_torch.models.JEPA``: encoder, predictor, EMA target), for a checkpoint of another method of
    this project that method's model (LeJEPA: encoder and projector, ``jepa_torch.models.lejepa.LeJEPA``).

    Args:
        weights: a training checkpoint of this project or an official ``.pth.tar`` (path or URL).
        **options: for official files, passed to ``jepa_torch.io.checkpoint.load_official`` (``num_heads``,
            ``grid``, ...).
    """
    from jepa_torch.methods import load_model

    return load_model(_local(weights), **options)[1]


def vit_tiny16(weights: str | None = None, img_size: int = 224, **options: Any) -> Any:
    """ViT-tiny/16 (192 wide, 12 blocks, 3 heads)."""
    return encoder("vit_tiny", 16, img_size, weights, **options)


def vit_small16(weights: str | None = None, img_size: int = 224, **options: Any) -> Any:
    """ViT-small/16 (384 wide, 12 blocks, 6 heads)."""
    return encoder("vit_small", 16, img_size, weights, **options)


def vit_base16(weights: str | None = None, img_size: int = 224, **options: Any) -> Any:
    """ViT-base/16 (768 wide, 12 blocks, 12 heads)."""
    return encoder("vit_base", 16, img_size, weights, **options)


def vit_large16(weights: str | None = None, img_size: int = 224, **options: Any) -> Any:
    """ViT-large/16 (1024 wide, 24 blocks, 16 heads)."""
    return encoder("vit_large", 16, img_size, weights, **options)


def vit_huge14(weights: str | None = None, img_size: int = 224, **options: Any) -> Any:
    """ViT-huge/14 (1280 wide, 32 blocks, 16 heads): the official IN-1K/IN-22K 224 px models."""
    return encoder("vit_huge", 14, img_size, weights, **options)


def vit_huge16(weights: str | None = None, img_size: int = 448, **options: Any) -> Any:
    """ViT-huge/16 at 448 px (the official IN-1K 448 px model)."""
    return encoder("vit_huge", 16, img_size, weights, **options)


def vit_giant16(weights: str | None = None, img_size: int = 224, **options: Any) -> Any:
    """ViT-giant/16 (1408 wide, 40 blocks, 16 heads): the official IN-22K model."""
    return encoder("vit_giant", 16, img_size, weights, **options)
