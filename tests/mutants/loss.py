"""Mutants of the loss members: jepa_loss, rep_loss, layer_norm."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from jepa_core.loss import Reduction, jepa_loss_blocks
from jepa_core.losses import LossKind, elementwise_loss
from jepa_core.protocols import FloatArray, IndexArray
from jepa_core.reference import ReferenceBackend

from ._registry import mutant


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
