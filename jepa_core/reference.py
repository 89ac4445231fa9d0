"""The numpy reference backend: the oracle every other backend is compared with.

It computes a whole JEPA objective on token arrays with a deliberately small
model, written for clarity rather than speed:

- context encoder: ``h = tanh((x + pos) @ W_in) @ W_out`` on the visible tokens;
- target encoder: the same network (an EMA copy at initialisation) on all
  tokens, then :func:`~jepa_core.representation.layer_norm`;
- predictor: for each target block, ``tanh((mean(context) + q[idx]) @ P_in) @ P_out``
  where ``q`` is a learned query per position. A block's prediction depends on
  the context and that block alone, as the formal objective requires.

Use it as ``pytest properties --jepa-backend=jepa_core.reference:backend``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .backend import ObjectiveParts, Schedule
from .ema import ema_update
from .loss import Reduction, gather_tokens, jepa_loss_blocks
from .protocols import FloatArray, IndexArray
from .regularisers import sigreg, sigreg_directions, vicreg_covariance, vicreg_variance
from .representation import LossKind, elementwise_loss, layer_norm
from .schedules import CosineWeightDecay, MomentumSchedule, WarmupCosineLR

__all__ = ["ReferenceBackend", "ReferenceModel", "backend"]


@dataclass(frozen=True)
class ReferenceModel:
    """A tiny JEPA in numpy: encoder weights, predictor weights, position tables.

    Attributes:
        pos: ``(N, d_in)`` position embedding added to the input tokens.
        w_in, w_out: encoder weights ``(d_in, H)`` and ``(H, D)``.
        queries: ``(N, D)`` predictor queries, one per position.
        p_in, p_out: predictor weights ``(D, H)`` and ``(H, D)``.
    """

    pos: FloatArray
    w_in: FloatArray
    w_out: FloatArray
    queries: FloatArray
    p_in: FloatArray
    p_out: FloatArray

    @classmethod
    def init(cls, seed: int, num_tokens: int, input_dim: int, dim: int = 8, hidden: int = 16) -> ReferenceModel:
        """Draw weights from ``seed`` (scaled normal, so activations stay O(1))."""
        rng = np.random.default_rng(seed)

        def w(*shape: int) -> FloatArray:
            out: FloatArray = rng.standard_normal(shape) / np.sqrt(shape[0])
            return out

        return cls(
            pos=0.1 * rng.standard_normal((num_tokens, input_dim)),
            w_in=w(input_dim, hidden),
            w_out=w(hidden, dim),
            queries=rng.standard_normal((num_tokens, dim)),
            p_in=w(dim, hidden),
            p_out=w(hidden, dim),
        )

    def encode(self, tokens: FloatArray, indices: IndexArray | None = None) -> FloatArray:
        """Encode ``(B, N, d_in)`` tokens, keeping ``indices`` ``(B, K)`` if given: ``-> (B, K, D)``."""
        x: FloatArray = tokens + self.pos[None]  # (B, N, d_in)
        if indices is not None:
            x = gather_tokens(x, indices)  # (B, K, d_in)
        out: FloatArray = np.tanh(x @ self.w_in) @ self.w_out
        return out

    def encode_target(self, tokens: FloatArray) -> FloatArray:
        """All tokens, layer-normed: ``(B, N, d_in) -> (B, N, D)``."""
        return layer_norm(self.encode(tokens))

    def predict(self, context: FloatArray, block: IndexArray, lengths: IndexArray | None = None) -> FloatArray:
        """Predict one target block from the context: ``(B, Kc, D), (B, K) -> (B, K, D)``.

        ``lengths`` ``(B,)``: row ``b`` of the context is its first ``lengths[b]`` tokens (the rest padding).
        """
        if lengths is None:
            pooled = context.mean(axis=1, keepdims=True)  # (B, 1, D)
        else:
            real = (np.arange(context.shape[1]) < np.asarray(lengths)[:, None])[..., None]  # (B, Kc, 1)
            pooled = (context * real).sum(axis=1, keepdims=True) / real.sum(axis=1, keepdims=True)  # (B, 1, D)
        q = self.queries[block]  # (B, K, D)
        out: FloatArray = np.tanh((pooled + q) @ self.p_in) @ self.p_out
        return out


class ReferenceBackend:
    """The numpy implementation of :class:`jepa_core.backend.Backend`."""

    name = "numpy-reference"

    @property
    def mask_sampler(self) -> Any:
        """The spec's own sampler, :mod:`jepa_core.masks`."""
        from . import masks

        return masks

    def asarray(self, x: NDArray[Any], /) -> NDArray[Any]:
        return np.array(x, copy=True)

    def to_numpy(self, x: Any, /) -> NDArray[Any]:
        return np.asarray(x)

    def rep_loss(self, target: FloatArray, prediction: FloatArray, kind: LossKind) -> FloatArray:
        out: FloatArray = elementwise_loss(target, prediction, kind).sum(axis=-1)
        return out

    def layer_norm(self, x: FloatArray) -> FloatArray:
        return layer_norm(x)

    def jepa_loss(
        self,
        predictions: Sequence[FloatArray],
        targets: FloatArray,
        target_blocks: Sequence[IndexArray],
        kind: LossKind,
        reduction: Reduction,
    ) -> float:
        return jepa_loss_blocks(predictions, targets, target_blocks, kind, reduction)

    def objective(
        self,
        tokens: FloatArray,
        context_indices: IndexArray,
        target_blocks: Sequence[IndexArray],
        seed: int,
        kind: LossKind,
        reduction: Reduction,
        context_lengths: IndexArray | None = None,
    ) -> float:
        parts = self.objective_parts(tokens, context_indices, target_blocks, seed, context_lengths)
        return jepa_loss_blocks(parts.predictions, parts.targets, target_blocks, kind, reduction)

    def objective_parts(
        self,
        tokens: FloatArray,
        context_indices: IndexArray,
        target_blocks: Sequence[IndexArray],
        seed: int,
        context_lengths: IndexArray | None = None,
    ) -> ObjectiveParts:
        _, num_tokens, input_dim = tokens.shape
        model = ReferenceModel.init(seed, num_tokens, input_dim)
        context = model.encode(tokens, context_indices)  # tokens are encoded one by one: padding reaches none
        target_tokens = model.encode(tokens)
        predictions = [model.predict(context, block, context_lengths) for block in target_blocks]
        return ObjectiveParts(context, target_tokens, layer_norm(target_tokens), predictions)

    def ema_update(
        self, context: Mapping[str, FloatArray], target: Mapping[str, FloatArray], momentum: float
    ) -> dict[str, FloatArray]:
        return ema_update(context, target, momentum)

    def momentum_schedule(self, start: float, end: float, total_steps: int) -> Schedule:
        return MomentumSchedule(start, end, total_steps)

    def lr_schedule(
        self, start_lr: float, ref_lr: float, final_lr: float, warmup_steps: int, total_steps: int
    ) -> Schedule:
        return WarmupCosineLR(start_lr, ref_lr, final_lr, warmup_steps, total_steps)

    def wd_schedule(self, start: float, end: float, total_steps: int) -> Schedule:
        return CosineWeightDecay(start, end, total_steps)

    def vicreg_variance(self, embeddings: FloatArray, gamma: float, eps: float) -> float:
        return vicreg_variance(embeddings, gamma, eps)

    def vicreg_covariance(self, embeddings: FloatArray) -> float:
        return vicreg_covariance(embeddings)

    def sigreg(self, embeddings: FloatArray, directions: FloatArray, knots: FloatArray) -> float:
        return sigreg(embeddings, directions, knots)

    def sigreg_directions(self, dim: int, num: int, seed: int) -> FloatArray:
        return sigreg_directions(dim, num, seed)


backend = ReferenceBackend()
"""The reference backend instance: ``--jepa-backend=jepa_core.reference:backend``."""
