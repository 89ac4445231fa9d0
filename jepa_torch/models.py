"""The one build path of the networks: a model config, ``build``, a :class:`JEPA`.

    JEPAConfig(encoder=EncoderConfig(...), predictor=PredictorConfig(...))  -> build(config) -> JEPA

A :class:`JEPAConfig` says everything the networks' shapes depend on. It is made in one of three
ways, and every other entry point goes through one of them:

- from a preset (:meth:`JEPAConfig.image`, :meth:`JEPAConfig.sequence`), as the official
  ``src/helper.py:init_model``: predictor depth 6, width 384, heads = the encoder's;
- from a training config (:func:`model_config`), which is how ``train`` and ``evaluate`` build;
- from state dicts (``jepa_torch.checkpoint.infer_model_config``), which is how official
  checkpoints are read; the checkpoint module reads and maps keys, nothing else.

Initialisation follows the official helper: ``depth_rescale=False`` because it re-draws every
Linear layer after construction, which removes the residual rescaling the module constructors apply
(details in ``jepa_torch.vit``). Pass ``depth_rescale=True`` to keep it.

Example:
    >>> encoder, predictor = build_image_jepa("vit_tiny", img_size=64, patch_size=8, pred_emb_dim=96)
    >>> model = build(JEPAConfig.image("tiny", img_size=64, patch_size=8, pred_emb_dim=96))
    >>> output_size(model.encoder)
    192
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import torch
from torch import Tensor, nn

from .heads import Projector
from .predictor import Predictor
from .presets import HEADS_BY_WIDTH, VIT_PRESETS, ViTPreset, get_preset
from .representation import layer_norm_targets
from .tokens import SequenceTransformer
from .vit import TransformerEncoder, VisionTransformer, apply_masks, repeat_interleave_batch

if TYPE_CHECKING:
    from .config import TrainConfig

__all__ = [
    "HEADS_BY_WIDTH",
    "JEPA",
    "VIT_PRESETS",
    "EncoderConfig",
    "JEPAConfig",
    "ModelConfigError",
    "PredictorConfig",
    "ProjectorConfig",
    "ViTPreset",
    "build",
    "build_image_jepa",
    "build_predictor",
    "build_sequence_jepa",
    "build_vit",
    "get_preset",
    "group_by_length",
    "make_target_encoder",
    "model_config",
    "networks",
    "output_size",
]

E = TypeVar("E", bound=nn.Module)


class ModelConfigError(ValueError):
    """Options that do not describe a model; the message names the option and the fix."""


# --- the model config ---------------------------------------------------------------------


@dataclass(frozen=True)
class EncoderConfig:
    """The shape of an encoder.

    Attributes:
        embed_dim: token width ``D``.
        depth: number of blocks.
        num_heads: attention heads.
        mlp_hidden_dim: MLP hidden width.
        in_chans: image channels, or features per step for a sequence encoder.
        patch_size: ``(ph, pw)`` for images; ``()`` for a sequence encoder.
        grid: ``(rows, cols)`` for images; ``(length,)`` for sequences.
    """

    embed_dim: int
    depth: int
    num_heads: int
    mlp_hidden_dim: int
    in_chans: int
    patch_size: tuple[int, ...]
    grid: tuple[int, ...]

    def build(self, init_std: float = 0.02, depth_rescale: bool = False) -> TransformerEncoder:
        """A freshly initialised encoder of this shape (a ViT, or the sequence encoder)."""
        if not self.patch_size:
            return SequenceTransformer(
                self.in_chans, self.grid[0], self.embed_dim, self.depth, self.num_heads,
                mlp_hidden_dim=self.mlp_hidden_dim, init_std=init_std, depth_rescale=depth_rescale,
            )
        img_size = tuple(g * p for g, p in zip(self.grid, self.patch_size, strict=True))
        return VisionTransformer(
            img_size, self.patch_size, self.in_chans, self.embed_dim, self.depth, self.num_heads,
            mlp_hidden_dim=self.mlp_hidden_dim, init_std=init_std, depth_rescale=depth_rescale,
        )


@dataclass(frozen=True)
class PredictorConfig:
    """The shape of a predictor (fields as :class:`~jepa_torch.predictor.Predictor`'s arguments)."""

    embed_dim: int
    predictor_embed_dim: int
    depth: int
    num_heads: int
    mlp_hidden_dim: int
    grid: tuple[int, ...]

    def build(self, init_std: float = 0.02, depth_rescale: bool = False) -> Predictor:
        """A freshly initialised predictor of this shape."""
        return Predictor(
            grid=self.grid, embed_dim=self.embed_dim, predictor_embed_dim=self.predictor_embed_dim,
            depth=self.depth, num_heads=self.num_heads, mlp_hidden_dim=self.mlp_hidden_dim,
            init_std=init_std, depth_rescale=depth_rescale,
        )


@dataclass(frozen=True)
class ProjectorConfig:
    """The shape of a projector head (LeJEPA's; ``jepa_torch.heads.Projector``).

    Attributes:
        in_dim: its input width, the encoder's.
        hidden: hidden width (0: one linear layer).
        out_dim: the embedding width.
    """

    in_dim: int
    hidden: int
    out_dim: int

    def build(self) -> Projector:
        """A freshly initialised projector of this shape (torch's default initialisation)."""
        return Projector(self.in_dim, self.hidden, self.out_dim)


@dataclass(frozen=True)
class JEPAConfig:
    """Everything a method's networks' shapes and initialisation depend on: the one model config.

    Every checkpoint of this project stores it (``model``); resume, evaluation, export and the hub
    build from it.

    Attributes:
        encoder: the (context) encoder; an EMA target encoder is its copy.
        predictor: the predictor (I-JEPA); its ``embed_dim`` and ``grid`` are the encoder's. None for
            a method without one.
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
        if self.predictor.predictor_embed_dim % self.predictor.num_heads:
            raise ModelConfigError(
                f"pred_emb_dim={self.predictor.predictor_embed_dim} is not divisible by {self.predictor.num_heads} "
                f"heads; pick a multiple of {self.predictor.num_heads}")

    @classmethod
    def image(
        cls,
        preset: str = "vit_tiny",
        *,
        img_size: int | Sequence[int] = 224,
        patch_size: int | Sequence[int] = 16,
        in_chans: int = 3,
        depth: int | None = None,
        pred_depth: int = 6,
        pred_emb_dim: int = 384,
        pred_num_heads: int | None = None,
        init_std: float = 0.02,
        depth_rescale: bool = False,
    ) -> JEPAConfig:
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
        predictor = _official_predictor(encoder, pred_depth, pred_emb_dim, pred_num_heads)
        return cls(encoder, predictor, init_std, depth_rescale)

    @classmethod
    def sequence(
        cls,
        input_dim: int,
        seq_len: int,
        *,
        preset: str = "vit_tiny",
        depth: int | None = None,
        pred_depth: int = 6,
        pred_emb_dim: int = 384,
        pred_num_heads: int | None = None,
        init_std: float = 0.02,
        depth_rescale: bool = False,
    ) -> JEPAConfig:
        """A JEPA over sequences ``(B, seq_len, input_dim)`` (or feature rows, ``input_dim=1``)."""
        if input_dim < 1 or seq_len < 1:
            raise ModelConfigError(f"input_dim={input_dim} and seq_len={seq_len} must be positive")
        encoder = _preset_encoder(preset, depth, input_dim, (), (seq_len,))
        predictor = _official_predictor(encoder, pred_depth, pred_emb_dim, pred_num_heads)
        return cls(encoder, predictor, init_std, depth_rescale)

    def to_dict(self) -> dict[str, Any]:
        """Plain values (lists for tuples), for a checkpoint's ``model`` entry."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> JEPAConfig:
        """The inverse of :meth:`to_dict`.

        Raises:
            ModelConfigError: a missing or unknown field, named.
        """
        def plain(part: Any) -> dict[str, Any]:
            return {k: tuple(v) if isinstance(v, list) else v for k, v in dict(part).items()}

        try:
            rest = {k: v for k, v in values.items() if k not in ("encoder", "predictor", "projector")}
            predictor = values.get("predictor")
            projector = values.get("projector")
            return cls(EncoderConfig(**plain(values["encoder"])),
                       None if predictor is None else PredictorConfig(**plain(predictor)), **rest,
                       projector=None if projector is None else ProjectorConfig(**plain(projector)))
        except (KeyError, TypeError) as exc:
            raise ModelConfigError(f"model config {dict(values)!r} is not a JEPAConfig ({exc})") from None


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


def _predictor_of(embed_dim: int, grid: tuple[int, ...], heads: int, depth: int, emb_dim: int) -> PredictorConfig:
    """The official predictor: MLP hidden 4 x its width."""
    return PredictorConfig(embed_dim, emb_dim, depth, heads, int(emb_dim * 4.0), grid)


def _official_predictor(encoder: EncoderConfig, depth: int, emb_dim: int, num_heads: int | None) -> PredictorConfig:
    heads = encoder.num_heads if num_heads is None else num_heads
    return _predictor_of(encoder.embed_dim, encoder.grid, heads, depth, emb_dim)


def model_config(cfg: TrainConfig, spec: tuple[str, tuple[int, ...]]) -> JEPAConfig:
    """The networks of a training config for its data (``spec`` from ``jepa_torch.data.input_spec``)."""
    kind, shape = spec
    m = cfg.model
    common = dict(preset=m.preset, depth=m.depth, pred_depth=m.pred_depth, pred_emb_dim=m.pred_emb_dim,
                  depth_rescale=m.depth_rescale)
    if kind == "sequence":
        seq_len, input_dim = shape
        return JEPAConfig.sequence(input_dim, seq_len, **common)  # type: ignore[arg-type]
    return JEPAConfig.image(img_size=cfg.data.img_size, patch_size=m.patch_size, in_chans=shape[0],
                            **common)  # type: ignore[arg-type]


# --- the model ------------------------------------------------------------------------------


def make_target_encoder(encoder: E) -> E:
    """A frozen deep copy of the context encoder: the EMA target, as the official ``train.py``.

    Every parameter of the copy has ``requires_grad=False``; it shares no storage with ``encoder``
    and keeps its train/eval mode (the encoder has no dropout, so the mode changes nothing).
    """
    target = copy.deepcopy(encoder)
    for p in target.parameters():
        p.requires_grad_(False)
    return target


def group_by_length(masks: list[Tensor]) -> list[list[Tensor]]:
    """Split ``(B, K)`` masks into lists of equal ``K``, keeping their order within a group."""
    groups: dict[int, list[Tensor]] = {}
    for m in masks:
        groups.setdefault(int(m.shape[-1]), []).append(m)
    return list(groups.values())


class JEPA(nn.Module):
    """The three networks of I-JEPA: context encoder, predictor, and its EMA target encoder.

    Row order everywhere is the official one: target-mask-major, then context mask, then batch.

    Args:
        encoder: the context encoder.
        predictor: the predictor, of the encoder's width.
        target_encoder: the EMA copy; by default a frozen deep copy of ``encoder``.
    """

    def __init__(self, encoder: TransformerEncoder, predictor: Predictor,
                 target_encoder: TransformerEncoder | None = None) -> None:
        super().__init__()
        if predictor.embed_dim != encoder.embed_dim:
            raise ValueError(
                f"predictor width {predictor.embed_dim} != encoder width {encoder.embed_dim}: "
                "build the predictor with embed_dim=encoder.embed_dim"
            )
        self.encoder = encoder
        self.predictor = predictor
        self.target_encoder = make_target_encoder(encoder) if target_encoder is None else target_encoder
        for p in self.target_encoder.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def forward_target(self, x: Tensor, context_masks: list[Tensor],
                       target_groups: list[list[Tensor]]) -> list[Tensor]:
        """Layer-normed target tokens, one ``(Mg * Mx * B, Kg, D)`` tensor per target group, no grad."""
        h: Tensor = layer_norm_targets(self.target_encoder(x))  # (B, N, D)
        batch = h.size(0)
        return [
            repeat_interleave_batch(apply_masks(h, group), batch, len(context_masks))  # (Mg*Mx*B, Kg, D)
            for group in target_groups
        ]

    def forward_context(self, x: Tensor, context_masks: list[Tensor], target_groups: list[list[Tensor]],
                        context_valid: Tensor | None = None) -> tuple[Tensor, list[Tensor]]:
        """Context tokens ``(Mx * B, Kc, D)`` and one prediction tensor per target group."""
        z = self.encoder(x, context_masks, valid=context_valid)  # (Mx*B, Kc, D)
        return z, [self.predictor(z, context_masks, group, valid=context_valid) for group in target_groups]

    def forward(self, x: Tensor, context_masks: list[Tensor], target_masks: list[Tensor],
                context_valid: Tensor | None = None) -> tuple[list[Tensor], list[Tensor], Tensor]:
        """``(predictions, targets, context tokens)`` for one batch.

        Target masks of equal length share one predictor call (the official case: all of
        them); masks of other lengths get their own, in order of first appearance. The
        predictions and targets are lists with one aligned ``(Mg * Mx * B, Kg, D)`` tensor
        per group. ``context_valid`` ``(Mx * B, Kc)`` marks padded context entries (False) of
        whole, unequal contexts (``mask.context_trim: none``; ``jepa_torch.vit.context_valid``):
        they are masked out of attention, so every prediction equals its sample's computed alone.
        The padded rows of the returned context tokens are meaningless.
        """
        groups = group_by_length(target_masks)
        targets = self.forward_target(x, context_masks, groups)
        context, predictions = self.forward_context(x, context_masks, groups, context_valid)
        return predictions, targets, context


def networks(config: JEPAConfig) -> tuple[TransformerEncoder, Predictor]:
    """The context encoder and predictor of ``config`` at initialisation, from the current torch seed
    (the encoder's weights are drawn first)."""
    if config.predictor is None:
        raise ModelConfigError("this model config has no predictor; it is not an I-JEPA model")
    encoder = config.encoder.build(config.init_std, config.depth_rescale)
    return encoder, config.predictor.build(config.init_std, config.depth_rescale)


def build(config: JEPAConfig) -> JEPA:
    """The networks of ``config`` at initialisation, the target encoder a copy of the context encoder."""
    return JEPA(*networks(config))


# --- shortcuts over the one path ------------------------------------------------------------


def build_vit(preset: str = "vit_base", **options: Any) -> TransformerEncoder:
    """An image encoder of a preset (the official ``vit_tiny(...)`` ... ``vit_giant(...)``): the encoder of
    :meth:`JEPAConfig.image` with the same options (``img_size``, ``patch_size``, ``in_chans``, ``depth``, ...)."""
    config = JEPAConfig.image(preset, **options)
    return config.encoder.build(config.init_std, config.depth_rescale)


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
        ModelConfigError: if the heads do not divide ``emb_dim``.
    """
    heads = encoder.num_heads if num_heads is None else num_heads
    if emb_dim % heads != 0:
        raise ModelConfigError(f"pred_emb_dim={emb_dim} is not divisible by {heads} heads; pick a multiple of {heads}")
    return _predictor_of(encoder.embed_dim, tuple(encoder.grid), heads, depth, emb_dim).build(init_std, depth_rescale)


def build_image_jepa(preset: str = "vit_tiny", **options: Any) -> tuple[TransformerEncoder, Predictor]:
    """(context encoder, predictor) for images, as the official ``init_model``: ``build`` of
    :meth:`JEPAConfig.image` (same options); make the target with ``make_target_encoder(encoder)``."""
    return networks(JEPAConfig.image(preset, **options))


def build_sequence_jepa(input_dim: int, seq_len: int, **options: Any) -> tuple[TransformerEncoder, Predictor]:
    """(context encoder, predictor) for sequences ``(B, seq_len, input_dim)`` or feature rows: ``build`` of
    :meth:`JEPAConfig.sequence` (same options)."""
    return networks(JEPAConfig.sequence(input_dim, seq_len, **options))


def output_size(model: TransformerEncoder | str) -> int:
    """The feature width a downstream user gets: ``D`` per token (and for mean-pooled features).

    Args:
        model: an encoder, or a preset name.
    """
    if isinstance(model, str):
        return get_preset(model).embed_dim
    return model.embed_dim
