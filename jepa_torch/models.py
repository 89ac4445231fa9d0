"""Official presets and builders: a (context encoder, predictor) pair from a few keyword options.

Recommended defaults follow the official ``src/helper.py:init_model`` (predictor depth 6, width 384,
heads = the encoder's heads) and its initialisation: ``depth_rescale=False`` because the official
helper re-draws every Linear layer after construction, which removes the residual rescaling that
the module constructors apply (details in ``jepa_torch.vit``). Pass ``depth_rescale=True`` to keep it.

Example:
    >>> encoder, predictor = build_image_jepa("vit_tiny", img_size=64, patch_size=8, pred_emb_dim=96)
    >>> target_encoder = make_target_encoder(encoder)
    >>> output_size(encoder)
    192
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from torch import nn

from .predictor import Predictor
from .tokens import SequenceTransformer
from .vit import TransformerEncoder, VisionTransformer

__all__ = [
    "HEADS_BY_WIDTH",
    "VIT_PRESETS",
    "ViTPreset",
    "build_image_jepa",
    "build_predictor",
    "build_sequence_jepa",
    "build_vit",
    "get_preset",
    "make_target_encoder",
    "output_size",
]

E = TypeVar("E", bound=nn.Module)


@dataclass(frozen=True)
class ViTPreset:
    """Dimensions of an official ViT preset.

    Attributes:
        embed_dim: token width ``D``.
        depth: number of blocks.
        num_heads: attention heads.
        mlp_ratio: MLP hidden width over ``D`` (hidden = ``int(D * mlp_ratio)``, as the official code).
    """

    embed_dim: int
    depth: int
    num_heads: int
    mlp_ratio: float = 4.0


VIT_PRESETS: dict[str, ViTPreset] = {
    "vit_tiny": ViTPreset(192, 12, 3),
    "vit_small": ViTPreset(384, 12, 6),
    "vit_base": ViTPreset(768, 12, 12),
    "vit_large": ViTPreset(1024, 24, 16),
    "vit_huge": ViTPreset(1280, 32, 16),
    "vit_giant": ViTPreset(1408, 40, 16, 48 / 11),
}
"""The official presets, by the official function names."""

HEADS_BY_WIDTH: dict[int, int] = {p.embed_dim: p.num_heads for p in VIT_PRESETS.values()}
"""Heads of the official preset of each width: how checkpoints without a config are read."""


def get_preset(preset: str) -> ViTPreset:
    """The dimensions of an official preset (``vit_tiny`` ... ``vit_giant``; ``tiny`` also works).

    Raises:
        ValueError: for an unknown name, listing the known ones.
    """
    key = preset if preset.startswith("vit_") else f"vit_{preset}"
    if key not in VIT_PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(VIT_PRESETS)}")
    return VIT_PRESETS[key]


def build_vit(
    preset: str = "vit_base",
    *,
    img_size: int | Sequence[int] = 224,
    patch_size: int | Sequence[int] = 16,
    in_chans: int = 3,
    depth: int | None = None,
    init_std: float = 0.02,
    depth_rescale: bool = False,
) -> VisionTransformer:
    """An image encoder with a preset's dimensions (the official ``vit_tiny(...)`` ... ``vit_giant(...)``)."""
    p = get_preset(preset)
    return VisionTransformer(
        img_size=img_size,
        patch_size=patch_size,
        in_chans=in_chans,
        embed_dim=p.embed_dim,
        depth=p.depth if depth is None else depth,
        num_heads=p.num_heads,
        mlp_ratio=p.mlp_ratio,
        init_std=init_std,
        depth_rescale=depth_rescale,
    )


def build_predictor(
    encoder: TransformerEncoder,
    *,
    depth: int = 6,
    emb_dim: int = 384,
    num_heads: int | None = None,
    init_std: float = 0.02,
    depth_rescale: bool = False,
) -> Predictor:
    """A predictor matching ``encoder``'s grid and width; heads default to the encoder's (official).

    Raises:
        ValueError: if the heads do not divide ``emb_dim``.
    """
    heads = encoder.num_heads if num_heads is None else num_heads
    if emb_dim % heads != 0:
        raise ValueError(f"pred_emb_dim={emb_dim} is not divisible by {heads} heads; pick a multiple of {heads}")
    return Predictor(
        grid=encoder.grid,
        embed_dim=encoder.embed_dim,
        predictor_embed_dim=emb_dim,
        depth=depth,
        num_heads=heads,
        init_std=init_std,
        depth_rescale=depth_rescale,
    )


def build_image_jepa(
    preset: str = "vit_tiny",
    *,
    img_size: int | Sequence[int] = 224,
    patch_size: int | Sequence[int] = 16,
    in_chans: int = 3,
    depth: int | None = None,
    pred_depth: int = 6,
    pred_emb_dim: int = 384,
    init_std: float = 0.02,
    depth_rescale: bool = False,
) -> tuple[VisionTransformer, Predictor]:
    """(context encoder, predictor) for images, as the official ``init_model``.

    Args:
        preset: ``vit_tiny`` | ``vit_small`` | ``vit_base`` | ``vit_large`` | ``vit_huge`` | ``vit_giant``.
        img_size: image side or ``(height, width)``.
        patch_size: patch side or ``(height, width)``.
        in_chans: image channels.
        depth: encoder blocks (default: the preset's).
        pred_depth: predictor blocks.
        pred_emb_dim: predictor width (divisible by the preset's heads).
        init_std: truncated-normal std.
        depth_rescale: keep the residual rescaling (False reproduces official training).

    Returns:
        ``(encoder, predictor)``; make the target encoder with ``make_target_encoder(encoder)``.
    """
    encoder = build_vit(
        preset,
        img_size=img_size,
        patch_size=patch_size,
        in_chans=in_chans,
        depth=depth,
        init_std=init_std,
        depth_rescale=depth_rescale,
    )
    predictor = build_predictor(
        encoder, depth=pred_depth, emb_dim=pred_emb_dim, init_std=init_std, depth_rescale=depth_rescale
    )
    return encoder, predictor


def build_sequence_jepa(
    input_dim: int,
    seq_len: int,
    *,
    preset: str = "vit_tiny",
    depth: int | None = None,
    pred_depth: int = 6,
    pred_emb_dim: int = 384,
    init_std: float = 0.02,
    depth_rescale: bool = False,
) -> tuple[SequenceTransformer, Predictor]:
    """(context encoder, predictor) for sequences ``(B, seq_len, input_dim)`` or feature rows.

    Args:
        input_dim: features per step (1 for a flat feature row ``(B, seq_len)``).
        seq_len: steps, i.e. tokens; masks index ``0 .. seq_len - 1``.
        preset: transformer dimensions, as in ``build_image_jepa``.
        depth: encoder blocks (default: the preset's).
        pred_depth: predictor blocks.
        pred_emb_dim: predictor width (divisible by the preset's heads).
        init_std: truncated-normal std.
        depth_rescale: keep the residual rescaling.

    Returns:
        ``(encoder, predictor)``.
    """
    p = get_preset(preset)
    encoder = SequenceTransformer(
        input_dim,
        seq_len,
        embed_dim=p.embed_dim,
        depth=p.depth if depth is None else depth,
        num_heads=p.num_heads,
        mlp_ratio=p.mlp_ratio,
        init_std=init_std,
        depth_rescale=depth_rescale,
    )
    predictor = build_predictor(
        encoder, depth=pred_depth, emb_dim=pred_emb_dim, init_std=init_std, depth_rescale=depth_rescale
    )
    return encoder, predictor


def make_target_encoder(encoder: E) -> E:
    """A frozen deep copy of the context encoder: the EMA target, as the official ``train.py``.

    Every parameter of the copy has ``requires_grad=False``; it shares no storage with ``encoder``
    and keeps its train/eval mode (the encoder has no dropout, so the mode changes nothing).
    """
    target = copy.deepcopy(encoder)
    for p in target.parameters():
        p.requires_grad_(False)
    return target


def output_size(model: TransformerEncoder | str) -> int:
    """The feature width a downstream user gets: ``D`` per token (and for mean-pooled features).

    Args:
        model: an encoder, or a preset name.
    """
    if isinstance(model, str):
        return get_preset(model).embed_dim
    return model.embed_dim
