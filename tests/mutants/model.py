"""Mutants of the whole objective: objective and objective_parts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from jepa_core.backend import ObjectiveParts
from jepa_core.loss import Reduction, jepa_loss_blocks, mean_normalised
from jepa_core.protocols import FloatArray, IndexArray
from jepa_core.reference import ReferenceBackend, ReferenceModel
from jepa_core.representation import LossKind
from jepa_torch.conformance.backend import TorchBackend
from jepa_torch.models.predictor import Predictor
from jepa_torch.models import JEPA
from jepa_torch.objectives.representation import layer_norm_targets
from jepa_torch.models.vit import apply_masks

from ._registry import backend_getter, mutant


@mutant("objective", "test_objective_jepaLoss_nil_append_reverse")
class PredictorSeesAllBlocks(ReferenceBackend):
    """A predictor whose output for one block depends on the other blocks of the list."""

    name = "mutant: predictor sees all blocks"

    def objective(self, tokens: FloatArray, context_indices: IndexArray, target_blocks: Sequence[IndexArray],
                  seed: int, kind: LossKind, reduction: Reduction, context_lengths: Any = None) -> float:
        model = ReferenceModel.init(seed, tokens.shape[1], tokens.shape[2])
        context = model.encode(tokens, context_indices)
        targets = model.encode_target(tokens)
        shared = sum((model.queries[b].mean(axis=1, keepdims=True) for b in target_blocks), np.zeros(1))
        predictions = [model.predict(context, b, context_lengths) + shared for b in target_blocks]
        return jepa_loss_blocks(predictions, targets, target_blocks, kind, reduction)


@mutant("objective", "test_objective_is_the_spec_loss_of_its_parts")
class ObjectiveIgnoresLossKind(ReferenceBackend):
    """An objective hard-wired to smooth-L1, whatever loss kind it is asked for."""

    name = "mutant: objective ignores the loss kind"

    def objective(self, tokens: FloatArray, context_indices: IndexArray, target_blocks: Sequence[IndexArray],
                  seed: int, kind: LossKind, reduction: Reduction, context_lengths: Any = None) -> float:
        return super().objective(tokens, context_indices, target_blocks, seed, "smooth_l1", reduction, context_lengths)


@mutant("objective", "test_targets_are_the_layer_normed_target_tokens")
class ObjectiveForgetsLayerNorm(ReferenceBackend):
    """Targets compared as the target encoder gives them, without the layer norm."""

    name = "mutant: targets not layer-normed"

    def objective_parts(self, tokens: FloatArray, context_indices: IndexArray, target_blocks: Sequence[IndexArray],
                        seed: int, context_lengths: Any = None) -> ObjectiveParts:
        parts = super().objective_parts(tokens, context_indices, target_blocks, seed, context_lengths)
        return ObjectiveParts(parts.context, parts.target_tokens, parts.target_tokens, parts.predictions)


@mutant("objective", "test_duplicated_batch_doubles_the_sum_and_keeps_the_mean",
        "test_objective_is_the_spec_loss_of_its_parts")
class MeanWithoutTheBatch(ReferenceBackend):
    """The mean divides by the target tokens of one sample times D, forgetting the batch."""

    name = "mutant: mean normalised without the batch"

    def objective(self, tokens: FloatArray, context_indices: IndexArray, target_blocks: Sequence[IndexArray],
                  seed: int, kind: LossKind, reduction: Reduction, context_lengths: Any = None) -> float:
        parts = self.objective_parts(tokens, context_indices, target_blocks, seed, context_lengths)
        total = jepa_loss_blocks(parts.predictions, parts.targets, target_blocks, kind, "sum")
        if reduction == "sum":
            return total
        per_sample = sum(int(b.shape[1]) for b in target_blocks)
        return mean_normalised(total, per_sample, parts.targets.shape[-1])


@mutant("objective", "test_objective_is_the_spec_loss_of_its_parts")
class MeanWithoutTheFeatures(ReferenceBackend):
    """The mean divides by the number of target tokens only, not by tokens times D."""

    name = "mutant: mean normalised without D"

    def objective(self, tokens: FloatArray, context_indices: IndexArray, target_blocks: Sequence[IndexArray],
                  seed: int, kind: LossKind, reduction: Reduction, context_lengths: Any = None) -> float:
        total = super().objective(tokens, context_indices, target_blocks, seed, kind, "sum", context_lengths)
        count = sum(int(b.size) for b in target_blocks)
        return total if reduction == "sum" else (total / count if count else 0.0)


class _ContextSeesAllTokens(JEPA):
    def forward_context(self, x: Tensor, context_masks: list[Tensor],
                        target_groups: list[list[Tensor]]) -> tuple[Tensor, list[Tensor]]:
        z = apply_masks(self.encoder(x), context_masks)  # encode every token, then keep the context ones
        return z, [self.predictor(z, context_masks, group) for group in target_groups]


@mutant("objective", "test_context_encoder_sees_the_context_alone")
class ContextEncoderSeesAllTokens(TorchBackend):
    """The torch backend whose context encoder attends over every token and keeps the context rows after."""

    name = "mutant: context encoder sees every token"

    def model(self, seed: int, num_tokens: int, input_dim: int) -> JEPA:
        model = super().model(seed, num_tokens, input_dim)
        model.__class__ = _ContextSeesAllTokens
        return model


@mutant("objective", "test_objective_is_the_spec_loss_of_its_parts")
class ObjectiveInFloat32(TorchBackend):
    """The torch backend that runs its model in float32 and hands back float64 copies of the parts."""

    name = "mutant: objective in float32"

    def model(self, seed: int, num_tokens: int, input_dim: int) -> JEPA:
        return super().model(seed, num_tokens, input_dim).float()

    def objective(self, tokens: Tensor, context_indices: Tensor, target_blocks: Sequence[Tensor],
                  seed: int, kind: LossKind, reduction: Reduction, context_lengths: Any = None) -> float:
        return super().objective(tokens.float(), context_indices, target_blocks, seed, kind, reduction, context_lengths)

    def objective_parts(self, tokens: Tensor, context_indices: Tensor, target_blocks: Sequence[Tensor],
                        seed: int, context_lengths: Any = None) -> ObjectiveParts:
        parts = super().objective_parts(tokens.float(), context_indices, target_blocks, seed, context_lengths)
        return ObjectiveParts(parts.context.double(), parts.target_tokens.double(), parts.targets.double(),
                              [p.double() for p in parts.predictions])


class _RowsMisordered(Predictor):
    def forward(self, x: Tensor, masks_x: Any, masks: Any) -> Tensor:
        out = super().forward(x, masks_x, masks)  # (M*B, K, D), mask-major
        m, b = len(masks), masks[0].shape[0]
        return out.view(b, m, *out.shape[1:]).transpose(0, 1).reshape(out.shape)  # read batch-major


@mutant("objective", "test_batch_is_a_sum_over_its_samples", "test_each_prediction_depends_on_its_block_alone")
class TorchPredictorRowsMisordered(TorchBackend):
    """The torch backend whose grouped predictor output is read batch-major instead of mask-major.

    Equal-size target blocks share one predictor call; reading its rows in the wrong
    order hands each block another block's (or another sample's) predictions.
    """

    name = "mutant: torch predictor rows misordered"

    def model(self, seed: int, num_tokens: int, input_dim: int) -> JEPA:
        model = super().model(seed, num_tokens, input_dim)
        model.predictor.__class__ = _RowsMisordered
        return model


@mutant("objective_parts", "test_objective_parts_have_the_documented_shapes")
class PartsInGroupOrder(TorchBackend):
    """objective_parts returns the predictions in the order of the predictor's size groups, not of the blocks."""

    name = "mutant: parts in group order"

    def objective_parts(self, tokens: Tensor, context_indices: Tensor, target_blocks: Sequence[Tensor],
                        seed: int, context_lengths: Any = None) -> ObjectiveParts:
        model, groups, _, context, members = self._forward(tokens, context_indices, target_blocks, seed,
                                                           context_lengths)
        predictions = [chunk for group, idx in zip(groups, members, strict=True) for chunk in group.chunk(len(idx))]
        with torch.no_grad():
            raw = model.target_encoder(tokens)
        return ObjectiveParts(context, raw, layer_norm_targets(raw), predictions)


class _TargetsBatchMajor(JEPA):
    def forward_target(self, x: Tensor, context_masks: list[Tensor],
                       target_groups: list[list[Tensor]]) -> list[Tensor]:
        with torch.no_grad():
            h = layer_norm_targets(self.target_encoder(x))  # (B, N, D)
            return [torch.cat([apply_masks(h[b:b + 1], [m[b:b + 1] for m in group]) for b in range(h.size(0))])
                    for group in target_groups]  # rows (sample, mask): the predictions' are (mask, sample)


@mutant("objective", "test_objective_is_the_spec_loss_of_its_parts", "test_batch_is_a_sum_over_its_samples")
class TrainingTargetsBatchMajor(TorchBackend):
    """The trainer's JEPA gathers a group's targets sample by sample, so its rows are batch-major while the
    grouped predictor's are mask-major: each prediction is compared with another block's targets."""

    name = "mutant: training targets batch-major"

    def model(self, seed: int, num_tokens: int, input_dim: int) -> JEPA:
        model = super().model(seed, num_tokens, input_dim)
        model.__class__ = _TargetsBatchMajor
        return model


class _PaddingAttended(JEPA):
    def forward(self, x: Tensor, context_masks: list[Tensor], target_masks: list[Tensor],
                context_valid: Tensor | None = None) -> tuple[list[Tensor], list[Tensor], Tensor]:
        return super().forward(x, context_masks, target_masks)  # the padding mask is dropped


@mutant("objective", "test_padded_contexts_equal_each_sample_alone")
class TorchPaddingAttended(TorchBackend):
    """Whole contexts padded into one batch, but the padding is not masked out of attention: every token
    of a padded row also attends to the padding's tokens."""

    name = "mutant: torch padding attended"

    def model(self, seed: int, num_tokens: int, input_dim: int) -> JEPA:
        model = super().model(seed, num_tokens, input_dim)
        model.__class__ = _PaddingAttended
        return model


@mutant("objective", "test_padded_contexts_equal_each_sample_alone")
class PaddingPooled(ReferenceBackend):
    """The reference predictor pools the padded context rows whole, padding included."""

    name = "mutant: padding pooled"

    def objective_parts(self, tokens: FloatArray, context_indices: IndexArray, target_blocks: Sequence[IndexArray],
                        seed: int, context_lengths: Any = None) -> ObjectiveParts:
        return super().objective_parts(tokens, context_indices, target_blocks, seed)


__getattr__ = backend_getter(__name__)  # ``tests.mutants.model:<key>`` names a backend
