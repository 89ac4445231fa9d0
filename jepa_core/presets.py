"""The official ViT presets: dimensions only, no model code, so that every framework and the configs share them.

``vit_tiny`` .. ``vit_giant`` (and V-JEPA 2's ``vit_giant_xformers``) are the official function names;
the short names ``tiny`` .. ``giant``, ``giant_xformers`` are accepted everywhere a preset is named
(config files, builders, the CLI).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["HEADS_BY_WIDTH", "VIT_PRESETS", "ViTPreset", "canonical_preset", "get_preset"]


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

    @property
    def mlp_hidden_dim(self) -> int:
        """The MLP hidden width, ``int(D * mlp_ratio)`` (giant: 6144)."""
        return int(self.embed_dim * self.mlp_ratio)


VIT_PRESETS: dict[str, ViTPreset] = {
    "vit_tiny": ViTPreset(192, 12, 3),
    "vit_small": ViTPreset(384, 12, 6),
    "vit_base": ViTPreset(768, 12, 12),
    "vit_large": ViTPreset(1024, 24, 16),
    "vit_huge": ViTPreset(1280, 32, 16),
    "vit_giant": ViTPreset(1408, 40, 16, 48 / 11),
    "vit_giant_xformers": ViTPreset(1408, 40, 22, 48 / 11),
}
"""The official presets, by the official function names. V-JEPA 2's released encoders are ``vit_large``
(ViT-L), ``vit_huge`` (ViT-H) and ``vit_giant_xformers`` (its ViT-g: the giant's widths with 22 heads)."""

HEADS_BY_WIDTH: dict[int, int] = {p.embed_dim: p.num_heads for k, p in VIT_PRESETS.items() if k != "vit_giant_xformers"}
"""Heads of the official preset of each width: how checkpoints without a config are read."""


def canonical_preset(preset: str) -> str:
    """The official name of a preset: ``tiny`` -> ``vit_tiny``; ``vit_tiny`` stays.

    Raises:
        ValueError: for an unknown name, listing the known ones.
    """
    key = preset if preset.startswith("vit_") else f"vit_{preset}"
    if key not in VIT_PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(VIT_PRESETS)} (or tiny .. giant)")
    return key


def get_preset(preset: str) -> ViTPreset:
    """The dimensions of an official preset (``vit_tiny`` ... ``vit_giant``; ``tiny`` also works).

    Raises:
        ValueError: for an unknown name, listing the known ones.
    """
    return VIT_PRESETS[canonical_preset(preset)]
