"""Static conformance of the torch implementation to the spec's Protocols.

Checked by ``mypy --strict`` (``make typecheck``); importing it at run time also
builds each adapter once. A signature drift in ``jepa_torch`` makes mypy reject this file.
"""

from __future__ import annotations

from torch import Tensor

from jepa_core.backend import Backend
from jepa_core.protocols import ContextEncoder, Predictor, RepresentationLoss, TargetEncoder
from jepa_core.reference import backend as reference_backend
from jepa_torch.conformance.backend import backend as torch_backend
from jepa_torch.models import build_sequence_jepa, make_target_encoder
from jepa_torch.conformance.protocol_adapters import (
    BlockPredictor,
    ContextView,
    EncodedContext,
    MaskedContextEncoder,
    NormalisedTargetEncoder,
    TargetTokens,
    l2_loss,
    smooth_l1_loss,
)

_encoder, _predictor = build_sequence_jepa(input_dim=2, seq_len=8, pred_depth=1, pred_emb_dim=48)

context_encoder: ContextEncoder[ContextView, EncodedContext] = MaskedContextEncoder(_encoder)
target_encoder: TargetEncoder[Tensor, TargetTokens] = NormalisedTargetEncoder(make_target_encoder(_encoder))
predictor: Predictor[EncodedContext, Tensor, Tensor] = BlockPredictor(_predictor)
smooth_l1: RepresentationLoss[Tensor, Tensor] = smooth_l1_loss
l2: RepresentationLoss[Tensor, Tensor] = l2_loss

# both shipped backends are Backends: a member missing or mistyped fails here
reference: Backend = reference_backend
torch: Backend = torch_backend
