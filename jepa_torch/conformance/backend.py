"""The torch backend of the law suite: ``pytest properties --jepa-backend=jepa_torch.conformance.backend:backend``.

Every member runs the code that training runs: the losses of ``jepa_torch.objectives.loss`` and ``jepa_torch.objectives.representation``, the
regularisers of ``jepa_torch.objectives.regularisers``, the fused EMA kernel of ``jepa_torch.models.ema``, and,
in :meth:`TorchBackend.objective`, the training forward itself: a :class:`~jepa_torch.models.jepa.JEPA`
of the real transformer encoder (with the sequence front end), its EMA target encoder and the
I-JEPA predictor, in float64, called as ``train_step`` calls it, and the training loss
``grouped_prediction_loss``. Schedules are the spec's own pure functions, which the trainer
also uses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from jepa_core.backend import ObjectiveParts, Schedule
from jepa_core.loss import Reduction
from jepa_core.representation import LossKind
from jepa_core.schedules import CosineWeightDecay, MomentumSchedule, WarmupCosineLR

from jepa_torch.objectives import regularisers
from jepa_torch.models.ema import ema_update_
from jepa_torch.objectives.loss import grouped_prediction_loss, jepa_loss_blocks
from jepa_torch.models.jepa import JEPA
from jepa_torch.models.predictor import Predictor
from jepa_torch.objectives.representation import elementwise_loss, layer_norm_targets
from jepa_torch.models.tokens import SequenceTransformer
from jepa_torch.models.vit import context_valid

__all__ = ["TorchBackend", "backend", "cuda_backend"]


class TorchBackend:
    """The PyTorch implementation of :class:`jepa_core.backend.Backend`.

    Args:
        device: where arrays live (``"cpu"`` by default; ``"cuda"`` runs the suite on a GPU).
    """

    name = "torch"

    @property
    def mask_sampler(self) -> Any:
        """The spec's sampler, :mod:`jepa_core.masks`, which the trainer calls (``jepa_torch.training.loop.masks_for_step``)."""
        import jepa_core.masks

        return jepa_core.masks

    def __init__(self, device: str = "cpu") -> None:
        self.device = torch.device(device)

    def asarray(self, x: NDArray[Any], /) -> Tensor:
        return torch.from_numpy(np.array(x, copy=True)).to(self.device)

    def to_numpy(self, x: Any, /) -> NDArray[Any]:
        if isinstance(x, Tensor):
            return x.detach().cpu().numpy()
        return np.asarray(x)

    def rep_loss(self, target: Tensor, prediction: Tensor, kind: LossKind) -> Tensor:
        return elementwise_loss(target, prediction, kind).sum(dim=-1)

    def layer_norm(self, x: Tensor) -> Tensor:
        return layer_norm_targets(x)

    def jepa_loss(self, predictions: Sequence[Tensor], targets: Tensor, target_blocks: Sequence[Tensor],
                  kind: LossKind, reduction: Reduction) -> float:
        return float(jepa_loss_blocks(predictions, targets, target_blocks, kind, reduction))

    def model(self, seed: int, num_tokens: int, input_dim: int) -> JEPA:
        """The small float64 JEPA of the laws: a 1-block sequence transformer (width 24, 3 heads), its EMA
        copy and a 1-block predictor (width 12), drawn from ``seed``."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            encoder = SequenceTransformer(input_dim, num_tokens, embed_dim=24, depth=1, num_heads=3)
            predictor = Predictor(grid=(num_tokens,), embed_dim=24, predictor_embed_dim=12, depth=1, num_heads=3)
        return JEPA(encoder, predictor).to(self.device, torch.float64)

    @torch.no_grad()
    def _forward(self, tokens: Tensor, context_indices: Tensor, target_blocks: Sequence[Tensor], seed: int,
                 context_lengths: Tensor | None) -> tuple[JEPA, list[Tensor], list[Tensor], Tensor, list[list[int]]]:
        """The training forward: ``(model, prediction groups, target groups, context, block indices per group)``.

        ``JEPA.forward`` groups target blocks of equal size into one predictor call (in order of
        first appearance), as in training; each group's rows are mask-major.
        """
        model = self.model(seed, tokens.shape[1], tokens.shape[2])
        valid = None if context_lengths is None else context_valid([context_lengths], context_indices.shape[1])
        predictions, targets, context = model(tokens, [context_indices], list(target_blocks), valid)
        members: dict[int, list[int]] = {}
        for i, block in enumerate(target_blocks):
            members.setdefault(int(block.shape[1]), []).append(i)
        return model, predictions, targets, context, list(members.values())

    def objective(self, tokens: Tensor, context_indices: Tensor, target_blocks: Sequence[Tensor],
                  seed: int, kind: LossKind, reduction: Reduction, context_lengths: Tensor | None = None) -> float:
        """The training loss of the training forward on a small float64 model (see :meth:`model`).

        With no target block the loss is 0 (training always has one).
        """
        if not target_blocks:
            return 0.0
        _, predictions, targets, _, _ = self._forward(tokens, context_indices, target_blocks, seed, context_lengths)
        return float(grouped_prediction_loss(predictions, targets, kind, reduction))

    def objective_parts(self, tokens: Tensor, context_indices: Tensor, target_blocks: Sequence[Tensor],
                        seed: int, context_lengths: Tensor | None = None) -> ObjectiveParts:
        """The context tokens, the target encoder's tokens (raw and layer-normed) and each block's prediction,
        split back out of the grouped predictor calls."""
        model, groups, _, context, members = self._forward(tokens, context_indices, target_blocks, seed,
                                                           context_lengths)
        predictions: list[Tensor] = [tokens.new_empty(0)] * len(target_blocks)
        for group, indices in zip(groups, members, strict=True):
            for i, chunk in zip(indices, group.chunk(len(indices)), strict=True):  # (B, K, D) each
                predictions[i] = chunk
        with torch.no_grad():
            target_tokens = model.target_encoder(tokens)  # (B, N, D)
        return ObjectiveParts(context, target_tokens, layer_norm_targets(target_tokens), predictions)

    def vicreg_variance(self, embeddings: Tensor, gamma: float, eps: float) -> float:
        return float(regularisers.vicreg_variance(embeddings, gamma, eps))

    def vicreg_covariance(self, embeddings: Tensor) -> float:
        return float(regularisers.vicreg_covariance(embeddings))

    def sigreg(self, embeddings: Tensor, directions: Tensor, knots: Tensor) -> float:
        return float(regularisers.sigreg(embeddings, directions, knots))

    def sigreg_directions(self, dim: int, num: int, seed: int) -> Tensor:
        """The directions training uses, the spec's draw, in float64 on the backend's device."""
        return regularisers.sigreg_directions(dim, num, seed, self.device, torch.float64)

    def ema_update(self, context: Mapping[str, Tensor], target: Mapping[str, Tensor],
                   momentum: float) -> dict[str, Tensor]:
        names = list(target)
        if set(context) != set(names):
            raise KeyError(f"context and target parameter names differ: {sorted(context)} vs {sorted(names)}")
        out = [target[k].clone() for k in names]
        ema_update_(out, [context[k] for k in names], momentum)
        return dict(zip(names, out, strict=True))

    def momentum_schedule(self, start: float, end: float, total_steps: int) -> Schedule:
        return MomentumSchedule(start, end, total_steps)

    def lr_schedule(self, start_lr: float, ref_lr: float, final_lr: float, warmup_steps: int,
                    total_steps: int) -> Schedule:
        return WarmupCosineLR(start_lr, ref_lr, final_lr, warmup_steps, total_steps)

    def wd_schedule(self, start: float, end: float, total_steps: int) -> Schedule:
        return CosineWeightDecay(start, end, total_steps)


backend = TorchBackend()
"""The CPU torch backend instance."""

cuda_backend = TorchBackend("cuda")
"""The same backend on the GPU: ``--jepa-backend=jepa_torch.conformance.backend:cuda_backend``."""
