"""Adapters that show the torch modules through the spec's Protocols (``jepa_core.protocols``).

The spec's objective reads one target index at a time; in I-JEPA an index is a target
block ``(B, K)`` of patch positions. These thin adapters give the torch encoder,
target encoder and predictor exactly the call shapes of the Protocols, so that
``jepa_core.jepa_loss`` computes the objective with the real modules, and
``tests/typing_conformance.py`` proves the fit under ``mypy --strict``. Training does not
use them: only that typing check and the tests (``tests/test_step.py``) do.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from jepa_torch.objectives.loss import gather_tokens
from jepa_torch.objectives.representation import elementwise_loss, layer_norm_targets
from jepa_torch.models.predictor import Predictor
from jepa_torch.models.vit import TransformerEncoder

__all__ = [
    "BlockPredictor",
    "ContextView",
    "EncodedContext",
    "MaskedContextEncoder",
    "NormalisedTargetEncoder",
    "TargetTokens",
    "l2_loss",
    "smooth_l1_loss",
]


@dataclass(frozen=True)
class ContextView:
    """An input and its visible positions: ``inputs (B, C, H, W)``, ``indices (B, Kc)``."""

    inputs: Tensor
    indices: Tensor


@dataclass(frozen=True)
class EncodedContext:
    """Context tokens ``(B, Kc, D)`` and the positions they came from ``(B, Kc)``."""

    tokens: Tensor
    indices: Tensor


@dataclass(frozen=True)
class MaskedContextEncoder:
    """``ContextEncoder[ContextView, EncodedContext]``: the encoder on the visible tokens."""

    encoder: TransformerEncoder

    def __call__(self, view: ContextView, /) -> EncodedContext:
        return EncodedContext(self.encoder(view.inputs, [view.indices]), view.indices)


@dataclass(frozen=True)
class NormalisedTargetEncoder:
    """``TargetEncoder[Tensor, TargetTokens]``: layer-normed tokens of the whole input, no grad."""

    encoder: TransformerEncoder

    def __call__(self, inputs: Tensor, /) -> TargetTokens:
        with torch.no_grad():
            return TargetTokens(layer_norm_targets(self.encoder(inputs)))


@dataclass(frozen=True)
class TargetTokens:
    """The target branch read at one block: ``tokens (B, N, D)``, ``self(block) -> (B, K, D)``."""

    tokens: Tensor

    def __call__(self, block: Tensor, /) -> Tensor:
        return gather_tokens(self.tokens, block)


@dataclass(frozen=True)
class BlockPredictor:
    """``Predictor[EncodedContext, Tensor, Tensor]``: one target block ``(B, K)`` -> ``(B, K, D)``."""

    predictor: Predictor

    def __call__(self, context: EncodedContext, block: Tensor, /) -> Tensor:
        out: Tensor = self.predictor(context.tokens, [context.indices], [block])
        return out


def smooth_l1_loss(target: Tensor, prediction: Tensor, /) -> float:
    """``RepresentationLoss[Tensor, Tensor]``: smooth-L1 summed over all elements."""
    return float(elementwise_loss(target, prediction, "smooth_l1").sum().detach())


def l2_loss(target: Tensor, prediction: Tensor, /) -> float:
    """``RepresentationLoss[Tensor, Tensor]``: squared error summed over all elements."""
    return float(elementwise_loss(target, prediction, "l2").sum().detach())
