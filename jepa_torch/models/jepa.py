"""The one build path of the networks: a model config, ``build``, a :class:`JEPA`.

    JEPAConfig(encoder=EncoderConfig(...), predictor=PredictorConfig(...))  -> build(config) -> JEPA

A :class:`JEPAConfig` says everything the networks' shapes depend on. It is made in one of three
ways, and every other entry point goes through one of them:

- from a preset (:meth:`JEPAConfig.image`, :meth:`JEPAConfig.sequence`), as the official
  ``src/helper.py:init_model``: predictor depth 6, width 384, heads = the encoder's;
- from a training config (``jepa_torch.config.model.model_config``), which is how ``train`` builds;
- from state dicts (``jepa_torch.io.checkpoint.infer_model_config``), which is how official
  checkpoints are read; the checkpoint module reads and maps keys, nothing else.

Initialisation follows the official helper: ``depth_rescale=False`` because it re-draws every
Linear layer after construction, which removes the residual rescaling the module constructors apply
(details in ``jepa_torch.models.vit``). Pass ``depth_rescale=True`` to keep it.

Example:
    >>> encoder, predictor = build_image_jepa("vit_tiny", img_size=64, patch_size=8, pred_emb_dim=96)
    >>> model = build(JEPAConfig.image("tiny", img_size=64, patch_size=8, pred_emb_dim=96))
    >>> output_size(model.encoder)
    192
"""

from __future__ import annotations

import copy
import warnings
from typing import Any, Literal, TypeVar

import torch
from torch import Tensor, nn

from jepa_core.model_config import (EncoderConfig, JEPAConfig, ModelConfigError, PredictorConfig, ProjectorConfig,
                                    official_predictor)
from jepa_core.presets import HEADS_BY_WIDTH, VIT_PRESETS, ViTPreset, get_preset

from jepa_torch.models.heads import Projector
from jepa_torch.models.predictor import Predictor
from jepa_torch.objectives.representation import layer_norm_targets
from jepa_torch.models.tokens import SequenceTransformer
from jepa_torch.models.video import VideoPredictor, VideoTransformer
from jepa_torch.models.vit import TransformerEncoder, VisionTransformer, apply_masks, repeat_interleave_batch


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
    "make_encoder",
    "make_image_encoder",
    "make_predictor",
    "make_projector",
    "make_video_predictor",
    "make_target_encoder",
    "networks",
    "output_size",
]

E = TypeVar("E", bound=nn.Module)


# --- the networks of a model config ----------------------------------------------------------


def make_encoder(config: EncoderConfig, init_std: float = 0.02,
                 depth_rescale: bool = False) -> TransformerEncoder | VideoTransformer:
    """A freshly initialised encoder of ``config``'s shape: the video ViT for a ``(T, H, W)`` grid, else
    :func:`make_image_encoder`'s."""
    if len(config.grid) != 3:
        return make_image_encoder(config, init_std, depth_rescale)
    tubelet, ph, pw = config.patch_size
    if ph != pw:
        raise ModelConfigError(f"patch_size={config.patch_size}: a video encoder's patches are square")
    return VideoTransformer((config.grid[1] * ph, config.grid[2] * pw), ph, config.grid[0] * tubelet, tubelet,
                            config.in_chans, config.embed_dim, config.depth, config.num_heads,
                            config.mlp_hidden_dim / config.embed_dim, init_std=init_std, depth_rescale=depth_rescale,
                            positions=_video_positions(config.positions), uniform_power=True)


def make_image_encoder(config: EncoderConfig, init_std: float = 0.02,
                       depth_rescale: bool = False) -> TransformerEncoder:
    """A freshly initialised ViT (a 2-D grid) or sequence encoder (a 1-D grid) of ``config``'s shape."""
    if len(config.grid) == 3:
        raise ModelConfigError(f"grid={config.grid}: a video encoder's config; build it with make_encoder")
    if not config.patch_size:
        return SequenceTransformer(
            config.in_chans, config.grid[0], config.embed_dim, config.depth, config.num_heads,
            mlp_hidden_dim=config.mlp_hidden_dim, init_std=init_std, depth_rescale=depth_rescale,
        )
    img_size = tuple(g * p for g, p in zip(config.grid, config.patch_size, strict=True))
    return VisionTransformer(
        img_size, config.patch_size, config.in_chans, config.embed_dim, config.depth, config.num_heads,
        mlp_hidden_dim=config.mlp_hidden_dim, init_std=init_std, depth_rescale=depth_rescale,
    )


def _video_positions(positions: str) -> Literal["rope", "sincos"]:
    if positions not in ("rope", "sincos"):
        raise ModelConfigError(f"positions={positions!r}: a video network's positions are rope or sincos")
    return "rope" if positions == "rope" else "sincos"


def make_video_predictor(config: PredictorConfig, positions: str, init_std: float = 0.02,
                         depth_rescale: bool = False) -> VideoPredictor:
    """A freshly initialised V-JEPA predictor of ``config``'s shape, with the encoder's ``positions``."""
    if len(config.grid) != 3:
        raise ModelConfigError(f"grid={config.grid}: a video predictor needs a (T, H, W) grid")
    return VideoPredictor(config.grid, embed_dim=config.embed_dim, pred_emb_dim=config.pred_emb_dim,
                          depth=config.depth, num_heads=config.num_heads,
                          mlp_ratio=config.mlp_hidden_dim / config.pred_emb_dim,
                          num_mask_tokens=config.num_mask_tokens, init_std=init_std, depth_rescale=depth_rescale,
                          positions=_video_positions(positions), uniform_power=True)


def make_predictor(config: PredictorConfig, init_std: float = 0.02, depth_rescale: bool = False) -> Predictor:
    """A freshly initialised predictor of ``config``'s shape."""
    return Predictor(
        grid=config.grid, embed_dim=config.embed_dim, predictor_embed_dim=config.pred_emb_dim,
        depth=config.depth, num_heads=config.num_heads, mlp_hidden_dim=config.mlp_hidden_dim,
        init_std=init_std, depth_rescale=depth_rescale,
    )


def make_projector(config: ProjectorConfig) -> Projector:
    """A freshly initialised projector head of ``config``'s shape (torch's default initialisation)."""
    return Projector(config.in_dim, config.hidden, config.out_dim)


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
        whole, unequal contexts (``mask.context_trim: none``; ``jepa_torch.models.vit.context_valid``):
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
    encoder = make_image_encoder(config.encoder, config.init_std, config.depth_rescale)
    return encoder, make_predictor(config.predictor, config.init_std, config.depth_rescale)


def build(config: JEPAConfig) -> JEPA:
    """The networks of ``config`` at initialisation, the target encoder a copy of the context encoder."""
    return JEPA(*networks(config))


# --- shortcuts over the one path ------------------------------------------------------------


def build_vit(preset: str = "vit_base", **options: Any) -> TransformerEncoder:
    """An image encoder of a preset (the official ``vit_tiny(...)`` ... ``vit_giant(...)``): the encoder of
    :meth:`JEPAConfig.image` with the same options (``img_size``, ``patch_size``, ``in_chans``, ``depth``, ...)."""
    config = JEPAConfig.image(preset, **options)
    return make_image_encoder(config.encoder, config.init_std, config.depth_rescale)


def build_predictor(
    encoder: TransformerEncoder,
    *,
    depth: int = 6,
    pred_emb_dim: int = 384,
    num_heads: int | None = None,
    init_std: float = 0.02,
    depth_rescale: bool = False,
    emb_dim: int | None = None,
) -> Predictor:
    """A predictor matching ``encoder``'s grid and width; heads default to the encoder's (official).

    ``emb_dim`` is the former name of ``pred_emb_dim``: still read, with a ``DeprecationWarning``.

    Raises:
        ModelConfigError: if the heads do not divide ``pred_emb_dim``.
    """
    if emb_dim is not None:
        warnings.warn("build_predictor(emb_dim=...) is deprecated; use pred_emb_dim=", DeprecationWarning, stacklevel=2)
        pred_emb_dim = emb_dim
    heads = encoder.num_heads if num_heads is None else num_heads
    if pred_emb_dim % heads != 0:
        raise ModelConfigError(f"pred_emb_dim={pred_emb_dim} is not divisible by {heads} heads; "
                               f"pick a multiple of {heads}")
    shape = EncoderConfig(encoder.embed_dim, 0, heads, 0, 0, (), tuple(encoder.grid))  # what the predictor reads
    return make_predictor(official_predictor(shape, depth, pred_emb_dim, heads), init_std, depth_rescale)


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
