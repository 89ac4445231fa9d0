"""Broken backends that the law suite must reject (see tests/test_mutants.py).

Each mutant is the reference backend with one plausible bug. If the suite
passed any of them, it would not be testing the law the bug breaks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from jepa_core.loss import Reduction, jepa_loss_blocks
from jepa_core.losses import LossKind, elementwise_loss
from jepa_core.protocols import FloatArray, IndexArray
from jepa_core.reference import ReferenceBackend, ReferenceModel
from jepa_core.regularisers import epps_pulley, vicreg_variance


class MeanInsteadOfSum(ReferenceBackend):
    """Reports the mean where the objective is the sum."""

    name = "mutant: mean instead of sum"

    def jepa_loss(self, predictions: Sequence[FloatArray], targets: FloatArray,
                  target_blocks: Sequence[IndexArray], kind: LossKind, reduction: Reduction) -> float:
        return jepa_loss_blocks(predictions, targets, target_blocks, kind, "mean")


class ReadsLeadingTokens(ReferenceBackend):
    """Compares each block with the first K target tokens instead of the selected ones."""

    name = "mutant: reads targets by slicing"

    def jepa_loss(self, predictions: Sequence[FloatArray], targets: FloatArray,
                  target_blocks: Sequence[IndexArray], kind: LossKind, reduction: Reduction) -> float:
        sliced = [np.broadcast_to(np.arange(b.shape[1]), b.shape) for b in target_blocks]
        return jepa_loss_blocks(predictions, targets, sliced, kind, reduction)


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


class SwappedMomentum(ReferenceBackend):
    """EMA with the roles of m and 1 - m exchanged."""

    name = "mutant: EMA momentum swapped"

    def ema_update(self, context: Mapping[str, FloatArray], target: Mapping[str, FloatArray],
                   momentum: float) -> dict[str, FloatArray]:
        return {k: momentum * context[k] + (1.0 - momentum) * target[k] for k in target}


class PredictorSeesAllBlocks(ReferenceBackend):
    """A predictor whose output for one block depends on the other blocks of the list."""

    name = "mutant: predictor sees all blocks"

    def objective(self, tokens: FloatArray, context_indices: IndexArray, target_blocks: Sequence[IndexArray],
                  seed: int, kind: LossKind, reduction: Reduction) -> float:
        model = ReferenceModel.init(seed, tokens.shape[1], tokens.shape[2])
        context = model.encode(tokens, context_indices)
        targets = model.encode_target(tokens)
        shared = sum((model.queries[b].mean(axis=1, keepdims=True) for b in target_blocks), np.zeros(1))
        predictions = [model.predict(context, b) + shared for b in target_blocks]
        return jepa_loss_blocks(predictions, targets, target_blocks, kind, reduction)


class DecreasingMomentum(ReferenceBackend):
    """A momentum schedule that runs from end back to start."""

    name = "mutant: momentum decreases"

    def momentum_schedule(self, start: float, end: float, total_steps: int):  # type: ignore[no-untyped-def]
        return lambda step: end - min(step, total_steps) * (end - start) / total_steps


def _epps_pulley_variant(projections: FloatArray, knots: FloatArray, window: bool, sine: bool) -> FloatArray:
    """The Epps-Pulley statistic of each column, with the window or the sine part optionally dropped."""
    angles = projections[:, :, None] * knots  # (N, M, T)
    normal = np.exp(-0.5 * knots**2)  # (T,)
    distance = (np.cos(angles).mean(axis=0) - normal) ** 2  # (M, T)
    if sine:
        distance = distance + np.sin(angles).mean(axis=0) ** 2
    integrand = normal * distance if window else distance
    out: FloatArray = projections.shape[0] * 0.5 * ((integrand[:, 1:] + integrand[:, :-1]) * np.diff(knots)).sum(-1)
    return out


class SigregWithoutBatchFactor(ReferenceBackend):
    """SIGReg as the mean distance between characteristic functions, without the factor N."""

    name = "mutant: SIGReg without the factor N"

    def sigreg(self, embeddings: FloatArray, directions: FloatArray, knots: FloatArray) -> float:
        return float(np.mean(epps_pulley(embeddings @ directions, knots)) / len(embeddings))


class SigregWithoutWindow(ReferenceBackend):
    """SIGReg integrating |phi_N - phi|² without the window exp(-t²/2)."""

    name = "mutant: SIGReg without the window"

    def sigreg(self, embeddings: FloatArray, directions: FloatArray, knots: FloatArray) -> float:
        return float(np.mean(_epps_pulley_variant(embeddings @ directions, knots, window=False, sine=True)))


class SigregCosineOnly(ReferenceBackend):
    """SIGReg comparing only the real (cosine) part of the characteristic functions."""

    name = "mutant: SIGReg cosine part only"

    def sigreg(self, embeddings: FloatArray, directions: FloatArray, knots: FloatArray) -> float:
        return float(np.mean(_epps_pulley_variant(embeddings @ directions, knots, window=True, sine=False)))


class UnnormalisedDirections(ReferenceBackend):
    """Draws SIGReg's directions as standard normal vectors and forgets to normalise them."""

    name = "mutant: SIGReg directions not normalised"

    def sigreg_directions(self, dim: int, num: int, seed: int) -> FloatArray:
        out: FloatArray = np.random.default_rng(seed).standard_normal((dim, num))
        return out


class VicregWithoutEps(ReferenceBackend):
    """VICReg's standard deviation taken as sqrt(var), without the epsilon."""

    name = "mutant: VICReg std without eps"

    def vicreg_variance(self, embeddings: FloatArray, gamma: float, eps: float) -> float:
        return vicreg_variance(embeddings, gamma, eps=0.0)


mean_instead_of_sum = MeanInsteadOfSum()
reads_leading_tokens = ReadsLeadingTokens()
masks_by_multiplication = MasksByMultiplication()
swapped_momentum = SwappedMomentum()
predictor_sees_all_blocks = PredictorSeesAllBlocks()
decreasing_momentum = DecreasingMomentum()
sigreg_without_batch_factor = SigregWithoutBatchFactor()
sigreg_without_window = SigregWithoutWindow()
sigreg_cosine_only = SigregCosineOnly()
unnormalised_directions = UnnormalisedDirections()
vicreg_without_eps = VicregWithoutEps()


class TorchPredictorRowsMisordered:
    """The torch backend whose predictor output is read batch-major instead of mask-major.

    Equal-size target blocks share one predictor call; reading its rows in the wrong
    order hands each block another block's predictions.
    """

    name = "mutant: torch predictor rows misordered"

    def __getattr__(self, attr: str) -> object:
        from jepa_torch.backend import backend as torch_backend

        return getattr(torch_backend, attr)

    def objective(self, tokens, context_indices, target_blocks, seed, kind, reduction):  # type: ignore[no-untyped-def]
        from jepa_torch import backend as module

        original = module.Predictor.forward

        def misordered(self_, x, masks_x, masks):  # type: ignore[no-untyped-def]
            out = original(self_, x, masks_x, masks)  # (M*B, K, D), mask-major
            m, b = len(masks), masks[0].shape[0]
            return out.view(b, m, *out.shape[1:]).transpose(0, 1).reshape(out.shape)

        module.Predictor.forward = misordered  # type: ignore[method-assign]
        try:
            return module.backend.objective(tokens, context_indices, target_blocks, seed, kind, reduction)
        finally:
            module.Predictor.forward = original  # type: ignore[method-assign]


torch_predictor_rows_misordered = TorchPredictorRowsMisordered()
