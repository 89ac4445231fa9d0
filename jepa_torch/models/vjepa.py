"""The three networks of V-JEPA: a video context encoder, its predictor, and the EMA target encoder.

    clips (B, C, T, H, W), per mask configuration i: context (B, Kc_i), target (B, Kt_i)
      -> target encoder on the whole clip (no grad), layer-norm, gather each configuration's target tokens
      -> context encoder on configuration i's context tokens
      -> predictor with mask token i at the target positions
      -> one (B, Kt_i, D) prediction and target per configuration

The official V-JEPA 2 training runs the same computation with the clips repeated per configuration;
row ``b`` of configuration ``i`` here is its row ``i * B + b``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from jepa_core.model_config import JEPAConfig, ModelConfigError

from jepa_torch.models.jepa import make_encoder, make_target_encoder, make_video_predictor
from jepa_torch.models.video import VideoPredictor, VideoTransformer
from jepa_torch.objectives.loss import gather_tokens
from jepa_torch.objectives.representation import layer_norm_targets

__all__ = ["VJEPA", "build_vjepa"]


class VJEPA(nn.Module):
    """Context encoder, predictor (one mask token per configuration) and EMA target encoder of V-JEPA.

    Args:
        encoder: the context encoder.
        predictor: its predictor, of the encoder's width and grid.
        target_encoder: the EMA copy; by default a frozen deep copy of ``encoder``.
    """

    def __init__(self, encoder: VideoTransformer, predictor: VideoPredictor,
                 target_encoder: VideoTransformer | None = None) -> None:
        super().__init__()
        if predictor.embed_dim != encoder.embed_dim:
            raise ValueError(f"predictor width {predictor.embed_dim} != encoder width {encoder.embed_dim}")
        self.encoder = encoder
        self.predictor = predictor
        self.target_encoder = make_target_encoder(encoder) if target_encoder is None else target_encoder
        for p in self.target_encoder.parameters():
            p.requires_grad_(False)

    def forward(self, clips: Tensor, contexts: Sequence[Tensor], targets: Sequence[Tensor],
                context_valid: Sequence[Tensor | None] | None = None,
                target_valid: Sequence[Tensor | None] | None = None) -> tuple[list[Tensor], list[Tensor]]:
        """``(predictions, targets)``: one aligned ``(B, Kt_i, D)`` pair per mask configuration ``i``.

        Args:
            clips: ``(B, C, T, H, W)``.
            contexts, targets: per configuration, ``(B, Kc_i)`` and ``(B, Kt_i)`` indices into the tubelet grid.
            context_valid, target_valid: per configuration, ``(B, K)`` booleans, False at padding (whole,
                padded masks), or None. Padding takes no part in attention; its rows of the outputs are
                meaningless and must be left out of the loss.
        """
        n = len(contexts)
        cvs = list(context_valid) if context_valid is not None else [None] * n
        tvs = list(target_valid) if target_valid is not None else [None] * n
        if not n or len(targets) != n or len(cvs) != n or len(tvs) != n:
            raise ValueError(f"{n} contexts, {len(targets)} targets, {len(cvs)} and {len(tvs)} validity masks: "
                             "give one of each per mask configuration")
        with torch.no_grad():
            h = layer_norm_targets(self.target_encoder(clips))  # (B, N, D)
        predictions, wanted = [], []
        for i, (context, target) in enumerate(zip(contexts, targets, strict=True)):
            z = self.encoder(clips, [context], valid=cvs[i])  # (B, Kc, D)
            predictions.append(self.predictor(z, context, [target], mask_index=i, valid=cvs[i],
                                              target_valid=tvs[i]))  # (B, Kt, D)
            wanted.append(gather_tokens(h, target))  # (B, Kt, D)
        return predictions, wanted


def build_vjepa(config: JEPAConfig) -> VJEPA:
    """The networks of a video ``config`` (``JEPAConfig.video``) at initialisation, from the current torch seed
    (the encoder's weights are drawn first); the target encoder is a copy of the context encoder."""
    if not config.is_video or config.predictor is None:
        raise ModelConfigError("a V-JEPA model config needs a (T, H, W) grid and a predictor (JEPAConfig.video)")
    encoder = make_encoder(config.encoder, config.init_std, config.depth_rescale)
    assert isinstance(encoder, VideoTransformer)
    predictor = make_video_predictor(config.predictor, config.encoder.positions, config.init_std,
                                     config.depth_rescale)
    return VJEPA(encoder, predictor)
