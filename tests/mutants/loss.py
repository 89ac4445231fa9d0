"""Mutants of the loss members: jepa_loss, rep_loss, layer_norm."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from jepa_core.loss import Reduction, gather_tokens, jepa_loss_blocks
from jepa_core.protocols import FloatArray, IndexArray
from jepa_core.reference import ReferenceBackend
from jepa_core.representation import LossKind, elementwise_loss, layer_norm

from ._registry import backend_getter, mutant


@mutant("jepa_loss", "test_jepaLoss_append", "test_mean_is_sum_normalised")
class MeanInsteadOfSum(ReferenceBackend):
    """Reports the mean where the objective is the sum."""

    name = "mutant: mean instead of sum"

    def jepa_loss(self, predictions: Sequence[FloatArray], targets: FloatArray,
                  target_blocks: Sequence[IndexArray], kind: LossKind, reduction: Reduction) -> float:
        return jepa_loss_blocks(predictions, targets, target_blocks, kind, "mean")


@mutant("jepa_loss", "test_jepaLoss_target_ext", "test_nonnegative_and_matches_oracle")
class ReadsLeadingTokens(ReferenceBackend):
    """Compares each block with the first K target tokens instead of the selected ones."""

    name = "mutant: reads targets by slicing"

    def jepa_loss(self, predictions: Sequence[FloatArray], targets: FloatArray,
                  target_blocks: Sequence[IndexArray], kind: LossKind, reduction: Reduction) -> float:
        sliced = [np.broadcast_to(np.arange(b.shape[1]), b.shape) for b in target_blocks]
        return jepa_loss_blocks(predictions, targets, sliced, kind, reduction)


@mutant("jepa_loss", "test_unselected_targets_never_read")
class MasksByMultiplication(ReferenceBackend):
    """Computes the loss at every token and zeroes the unselected ones by a mask.

    Equal on finite inputs, but it reads every target value: a NaN or inf
    outside the targets (from an overflowing target encoder, say) leaks in.
    """

    name = "mutant: masks by multiplication"

    def jepa_loss(self, predictions: Sequence[FloatArray], targets: FloatArray,
                  target_blocks: Sequence[IndexArray], kind: LossKind, reduction: Reduction) -> float:
        total, count = 0.0, 0
        rows = np.arange(targets.shape[0])[:, None]
        for pred, block in zip(predictions, target_blocks, strict=True):
            full = np.zeros_like(targets)
            mask = np.zeros(targets.shape[:2])
            for j in range(block.shape[1]):
                full[rows[:, 0], block[:, j]] = pred[:, j]
                mask[rows[:, 0], block[:, j]] = 1.0
            total += float((mask[..., None] * elementwise_loss(targets, full, kind)).sum())
            count += block.size
        return total if reduction == "sum" else (total / (count * targets.shape[-1]) if count else 0.0)


@mutant("jepa_loss", "test_repeated_position_counts_twice", "test_nonnegative_and_matches_oracle")
class CountsRepeatsOnce(ReferenceBackend):
    """Reads each row's distinct positions (``np.unique``), so a position listed twice counts once."""

    name = "mutant: a repeated position counts once"

    def jepa_loss(self, predictions: Sequence[FloatArray], targets: FloatArray,
                  target_blocks: Sequence[IndexArray], kind: LossKind, reduction: Reduction) -> float:
        total, count = 0.0, 0
        for pred, block in zip(predictions, target_blocks, strict=True):
            for b in range(block.shape[0]):
                positions, first = np.unique(block[b], return_index=True)
                total += float(elementwise_loss(targets[b, positions], pred[b, first], kind).sum())
            count += block.size
        return total if reduction == "sum" else (total / (count * targets.shape[-1]) if count else 0.0)


@mutant("jepa_loss", "test_nonnegative_and_matches_oracle", "test_repeated_position_counts_twice")
class Float32Loss(ReferenceBackend):
    """Computes the loss in float32 (a mixed-precision cast left on the loss)."""

    name = "mutant: jepa_loss in float32"

    def jepa_loss(self, predictions: Sequence[FloatArray], targets: FloatArray,
                  target_blocks: Sequence[IndexArray], kind: LossKind, reduction: Reduction) -> float:
        return jepa_loss_blocks([p.astype(np.float32) for p in predictions], targets.astype(np.float32),
                                target_blocks, kind, reduction)


@mutant("rep_loss", "test_rep_loss_matches_oracle")
class RepLossOverAxisOne(ReferenceBackend):
    """Sums over axis 1, the feature axis of ``(K, D)``: right in 2-D, wrong in any other rank."""

    name = "mutant: rep_loss reduces axis 1"

    def rep_loss(self, target: FloatArray, prediction: FloatArray, kind: LossKind) -> FloatArray:
        out: FloatArray = elementwise_loss(target, prediction, kind).sum(axis=1)
        return out


@mutant("rep_loss", "test_rep_loss_matches_oracle", "test_nonnegative_and_matches_oracle")
class SmoothL1DetectronBeta(ReferenceBackend):
    """Smooth-L1 with Detectron's ``beta = 1/9`` instead of torch's (and I-JEPA's) 1."""

    name = "mutant: smooth-L1 beta 1/9"

    def rep_loss(self, target: FloatArray, prediction: FloatArray, kind: LossKind) -> FloatArray:
        out: FloatArray = elementwise_loss(target, prediction, kind, beta=1.0 / 9.0).sum(axis=-1)
        return out

    def jepa_loss(self, predictions: Sequence[FloatArray], targets: FloatArray,
                  target_blocks: Sequence[IndexArray], kind: LossKind, reduction: Reduction) -> float:
        total = sum(float(elementwise_loss(gather_tokens(targets, b), p, kind, beta=1.0 / 9.0).sum())
                    for p, b in zip(predictions, target_blocks, strict=True))
        count = sum(b.size for b in target_blocks) * targets.shape[-1]
        return total if reduction == "sum" else (total / count if count else 0.0)


@mutant("layer_norm", "test_layer_norm_matches_oracle")
class LayerNormOverAxisOne(ReferenceBackend):
    """Normalises over axis 1, the feature axis of ``(N, D)`` tokens: right in 2-D only."""

    name = "mutant: layer norm over axis 1"

    def layer_norm(self, x: FloatArray) -> FloatArray:
        mean = x.mean(axis=1, keepdims=True)
        out: FloatArray = (x - mean) / np.sqrt(((x - mean) ** 2).mean(axis=1, keepdims=True) + 1e-5)
        return out


@mutant("layer_norm", "test_layer_norm_matches_oracle")
class LayerNormEncoderEps(ReferenceBackend):
    """Target layer norm with the encoder's eps 1e-6 (timm's ViT norm) instead of ``F.layer_norm``'s 1e-5."""

    name = "mutant: layer norm eps 1e-6"

    def layer_norm(self, x: FloatArray) -> FloatArray:
        return layer_norm(x, eps=1e-6)


@mutant("layer_norm", "test_layer_norm_matches_oracle")
class LayerNormUnbiased(ReferenceBackend):
    """Layer norm with the unbiased variance (``torch.var``'s default) instead of the biased one."""

    name = "mutant: layer norm with unbiased variance"

    def layer_norm(self, x: FloatArray) -> FloatArray:
        with np.errstate(divide="ignore", invalid="ignore"):  # D = 1: 0 / 0
            var = x.var(axis=-1, ddof=1, keepdims=True)
        out: FloatArray = (x - x.mean(axis=-1, keepdims=True)) / np.sqrt(var + 1e-5)
        return out


__getattr__ = backend_getter(__name__)  # ``tests.mutants.loss:<key>`` names a backend
