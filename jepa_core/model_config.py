"""The model config: the shapes of a JEPA's networks, framework-free, shared by every backend.

    JEPAConfig(encoder=EncoderConfig(...), predictor=PredictorConfig(...) | None,
               projector=ProjectorConfig(...) | None, init_std, depth_rescale)

One description of the networks, in plain values: ``jepa_torch`` builds torch modules from it
(``jepa_torch.models.build``), ``jepa_jax`` equinox modules (``jepa_jax.models.build``), and every
checkpoint of the torch trainer stores it (``model``: :meth:`JEPAConfig.to_dict`) so that every
loader builds from it rather than infer it. Made from a preset (:meth:`JEPAConfig.image`,
:meth:`JEPAConfig.sequence`, as the official ``src/helper.py:init_model``: predictor depth 6, width
384, heads the encoder's), from a training config, or from state dicts (each backend's ``infer``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from .presets import get_preset

__all__ = ["EncoderConfig", "JEPAConfig", "ModelConfigError", "PredictorConfig", "ProjectorConfig",
           "official_predictor"]


class ModelConfigError(ValueError):
    """Options that do not describe a model; the message names the option and the fix."""


@dataclass(frozen=True)
class EncoderConfig:
    """The shape of an encoder.

    Attributes:
        embed_dim: token width ``D``.
        depth: number of blocks.
        num_heads: attention heads.
        mlp_hidden_dim: MLP hidden width.
        in_chans: image channels, or features per step for a sequence encoder.
        patch_size: ``(ph, pw)`` for images; ``(tubelet, ph, pw)`` for videos; ``()`` for a sequence
            encoder.
        grid: ``(rows, cols)`` for images; ``(T, rows, cols)`` tubelets for videos; ``(length,)`` for
            sequences.
        positions: videos only: ``rope`` (V-JEPA 2) or ``sincos`` (a fixed 3-D table); empty for the
            fixed sin-cos table of images and sequences.
    """

    embed_dim: int
    depth: int
    num_heads: int
    mlp_hidden_dim: int
    in_chans: int
    patch_size: tuple[int, ...]
    grid: tuple[int, ...]
    positions: str = ""


@dataclass(frozen=True)
class PredictorConfig:
    """The shape of a predictor.

    Attributes:
        embed_dim: the encoder's width ``D`` (its input and output).
        pred_emb_dim: its own width ``Dp`` (official ``pred_emb_dim``; the official module's argument
            is ``predictor_embed_dim``).
        depth: number of blocks.
        num_heads: attention heads (divide ``pred_emb_dim``).
        mlp_hidden_dim: MLP hidden width.
        grid: the encoder's grid.
        num_mask_tokens: videos only: learned mask tokens, one per mask configuration.
    """

    embed_dim: int
    pred_emb_dim: int
    depth: int
    num_heads: int
    mlp_hidden_dim: int
    grid: tuple[int, ...]
    num_mask_tokens: int = 1


@dataclass(frozen=True)
class ProjectorConfig:
    """The shape of a projector head on the pooled encoder output (LeJEPA's).

    Attributes:
        in_dim: its input width, the encoder's.
        hidden: hidden width (0: one linear layer).
        out_dim: the embedding width.
    """

    in_dim: int
    hidden: int
    out_dim: int


_RENAMED = {"predictor_embed_dim": "pred_emb_dim"}  # a field's name in configs stored before it was renamed


@dataclass(frozen=True)
class JEPAConfig:
    """Everything a method's networks' shapes and initialisation depend on: the one model config.

    Attributes:
        encoder: the (context) encoder; an EMA target encoder is its copy.
        predictor: the predictor (I-JEPA), its ``embed_dim`` and ``grid`` the encoder's; None for a
            method without one.
        init_std: std of the truncated-normal initialisation.
        depth_rescale: keep the residual rescaling after init (False reproduces official training).
        projector: a projector head on the pooled encoder output (LeJEPA), or None.
    """

    encoder: EncoderConfig
    predictor: PredictorConfig | None
    init_std: float = 0.02
    depth_rescale: bool = False
    projector: ProjectorConfig | None = None

    def __post_init__(self) -> None:
        if self.projector is not None and self.projector.in_dim != self.encoder.embed_dim:
            raise ModelConfigError(f"projector input width {self.projector.in_dim} must be the encoder's "
                                   f"({self.encoder.embed_dim})")
        if self.predictor is None:
            return
        if self.predictor.embed_dim != self.encoder.embed_dim or self.predictor.grid != self.encoder.grid:
            raise ModelConfigError(
                f"predictor width {self.predictor.embed_dim} and grid {self.predictor.grid} must be the encoder's "
                f"({self.encoder.embed_dim}, {self.encoder.grid})")
        if self.predictor.pred_emb_dim % self.predictor.num_heads:
            raise ModelConfigError(
                f"pred_emb_dim={self.predictor.pred_emb_dim} is not divisible by {self.predictor.num_heads} "
                f"heads; pick a multiple of {self.predictor.num_heads}")

    @classmethod
    def image(cls, preset: str = "vit_tiny", *, img_size: int | Sequence[int] = 224,
              patch_size: int | Sequence[int] = 16, in_chans: int = 3, depth: int | None = None, pred_depth: int = 6,
              pred_emb_dim: int = 384, pred_num_heads: int | None = None, init_std: float = 0.02,
              depth_rescale: bool = False) -> JEPAConfig:
        """An image JEPA of an official preset (``vit_tiny`` .. ``vit_giant``, or ``tiny`` .. ``giant``).

        Args:
            preset: the encoder's dimensions.
            img_size: image side or ``(height, width)``; a multiple of the patch.
            patch_size: patch side or ``(height, width)``.
            in_chans: image channels.
            depth: encoder blocks (default: the preset's).
            pred_depth: predictor blocks.
            pred_emb_dim: predictor width (divisible by the heads).
            pred_num_heads: predictor heads (default: the encoder's, as the official helper).
            init_std: truncated-normal std.
            depth_rescale: keep the residual rescaling.
        """
        size, patch = _pair(img_size), _pair(patch_size)
        if size[0] % patch[0] or size[1] % patch[1]:
            raise ModelConfigError(f"img_size={size} is not a multiple of patch_size={patch}")
        grid = (size[0] // patch[0], size[1] // patch[1])
        encoder = _preset_encoder(preset, depth, in_chans, patch, grid)
        return cls(encoder, official_predictor(encoder, pred_depth, pred_emb_dim, pred_num_heads), init_std,
                   depth_rescale)

    @classmethod
    def sequence(cls, input_dim: int, seq_len: int, *, preset: str = "vit_tiny", depth: int | None = None,
                 pred_depth: int = 6, pred_emb_dim: int = 384, pred_num_heads: int | None = None,
                 init_std: float = 0.02, depth_rescale: bool = False) -> JEPAConfig:
        """A JEPA over sequences ``(B, seq_len, input_dim)`` (or feature rows, ``input_dim=1``)."""
        if input_dim < 1 or seq_len < 1:
            raise ModelConfigError(f"input_dim={input_dim} and seq_len={seq_len} must be positive")
        encoder = _preset_encoder(preset, depth, input_dim, (), (seq_len,))
        return cls(encoder, official_predictor(encoder, pred_depth, pred_emb_dim, pred_num_heads), init_std,
                   depth_rescale)

    @classmethod
    def video(cls, preset: str = "vit_large", *, img_size: int = 256, patch_size: int = 16, num_frames: int = 16,
              tubelet_size: int = 2, in_chans: int = 3, depth: int | None = None, positions: str = "rope",
              pred_depth: int = 12, pred_emb_dim: int = 384, pred_num_heads: int | None = None,
              num_mask_tokens: int = 2, init_std: float = 0.02, depth_rescale: bool = False) -> JEPAConfig:
        """A video JEPA (V-JEPA) of an official preset; the defaults are V-JEPA 2's (256 px, 16 frames,
        2x16x16 tubelets, RoPE, a 12-block predictor of width 384, two mask tokens).

        Args:
            img_size: frame side, a multiple of ``patch_size``.
            num_frames: frames per clip, a multiple of ``tubelet_size``.
            positions: ``rope`` or ``sincos``.
            num_mask_tokens: one per mask configuration.
            (the rest as :meth:`image`)
        """
        if img_size % patch_size or num_frames % tubelet_size:
            raise ModelConfigError(f"img_size={img_size} must be a multiple of patch_size={patch_size} and "
                                   f"num_frames={num_frames} of tubelet_size={tubelet_size}")
        if positions not in ("rope", "sincos"):
            raise ModelConfigError(f"positions={positions!r}: use rope or sincos")
        if num_mask_tokens < 1:
            raise ModelConfigError(f"num_mask_tokens={num_mask_tokens}: must be >= 1")
        grid = (num_frames // tubelet_size, img_size // patch_size, img_size // patch_size)
        base = _preset_encoder(preset, depth, in_chans, (tubelet_size, patch_size, patch_size), grid)
        encoder = EncoderConfig(**{**asdict(base), "positions": positions})
        predictor = official_predictor(encoder, pred_depth, pred_emb_dim, pred_num_heads)
        return cls(encoder, PredictorConfig(**{**asdict(predictor), "num_mask_tokens": num_mask_tokens}), init_std,
                   depth_rescale)

    @property
    def is_video(self) -> bool:
        """Whether the networks take clips (a ``(T, H, W)`` tubelet grid)."""
        return len(self.encoder.grid) == 3

    def to_dict(self) -> dict[str, Any]:
        """Plain values, for a checkpoint's ``model`` entry."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> JEPAConfig:
        """The inverse of :meth:`to_dict` (lists read as tuples; a field stored under its old name read too).

        Raises:
            ModelConfigError: a missing or unknown field, named.
        """
        def plain(part: Any) -> dict[str, Any]:
            return {(_RENAMED[k] if k in _RENAMED else str(k)): tuple(v) if isinstance(v, list) else v
                    for k, v in dict(part).items()}

        try:
            rest = {k: v for k, v in values.items() if k not in ("encoder", "predictor", "projector")}
            predictor, projector = values.get("predictor"), values.get("projector")
            return cls(EncoderConfig(**plain(values["encoder"])),
                       None if predictor is None else PredictorConfig(**plain(predictor)), **rest,
                       projector=None if projector is None else ProjectorConfig(**plain(projector)))
        except (KeyError, TypeError) as exc:
            raise ModelConfigError(f"model config {dict(values)!r} is not a JEPAConfig ({exc})") from None


def official_predictor(encoder: EncoderConfig, depth: int, pred_emb_dim: int,
                       num_heads: int | None = None) -> PredictorConfig:
    """The official predictor of ``encoder``: MLP hidden 4 x its width, heads the encoder's by default."""
    heads = encoder.num_heads if num_heads is None else num_heads
    return PredictorConfig(encoder.embed_dim, pred_emb_dim, depth, heads, int(pred_emb_dim * 4.0), encoder.grid)


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    pair = tuple(int(v) for v in value)
    if len(pair) != 2:
        raise ModelConfigError(f"expected a side or (height, width), got {value!r}")
    return (pair[0], pair[1])


def _preset_encoder(preset: str, depth: int | None, in_chans: int, patch: tuple[int, ...],
                    grid: tuple[int, ...]) -> EncoderConfig:
    try:
        p = get_preset(preset)
    except ValueError as exc:
        raise ModelConfigError(str(exc)) from None
    return EncoderConfig(p.embed_dim, p.depth if depth is None else depth, p.num_heads, p.mlp_hidden_dim,
                         in_chans, patch, grid)
