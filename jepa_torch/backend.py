"""The torch backend of the law suite: ``pytest properties --jepa-backend=jepa_torch.backend:backend``.

Every member runs the code that training runs: the losses of ``jepa_torch.losses``, the
regularisers of ``jepa_torch.regularisers``, the fused EMA kernel of ``jepa_torch.ema``, and,
in :meth:`TorchBackend.objective`, the real transformer encoder, EMA target encoder and
I-JEPA predictor (with the sequence front end, in float64). Schedules are the spec's own pure functions, which the trainer also uses.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from jepa_core.backend import Schedule
from jepa_core.loss import Reduction
from jepa_core.losses import LossKind
from jepa_core.schedules import CosineWeightDecay, MomentumSchedule, WarmupCosineLR

from . import regularisers
from .ema import ema_update_
from .losses import elementwise_loss, jepa_loss_blocks, layer_norm_targets
from .models import make_target_encoder
from .predictor import Predictor
from .tokens import SequenceTransformer

__all__ = ["TorchBackend", "backend", "cuda_backend"]


class TorchBackend:
    """The PyTorch implementation of :class:`jepa_core.backend.Backend`.

    Args:
        device: where arrays live (``"cpu"`` by default; ``"cuda"`` runs the suite on a GPU).
    """

    name = "torch"

    @property
    def mask_sampler(self) -> Any:
        """The spec's sampler, :mod:`jepa_core.masks`, which the torch collate calls."""
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

    @torch.no_grad()
    def objective(self, tokens: Tensor, context_indices: Tensor, target_blocks: Sequence[Tensor],
                  seed: int, kind: LossKind, reduction: Reduction) -> float:
        """The I-JEPA objective with a 1-block transformer encoder and predictor, in float64.

        Target blocks of equal size go through the predictor together, as the official masks
        list (one row group per block): the laws then also check that rows of one predictor
        call do not leak into each other and come back in the documented order.
        """
        _, n, input_dim = tokens.shape
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            encoder = SequenceTransformer(input_dim, n, embed_dim=24, depth=1, num_heads=3)
            predictor = Predictor(grid=(n,), embed_dim=24, predictor_embed_dim=12, depth=1, num_heads=3)
        encoder, predictor = encoder.to(self.device, torch.float64), predictor.to(self.device, torch.float64)
        target_encoder = make_target_encoder(encoder)
        context = encoder(tokens, [context_indices])  # (B, Kc, D)
        targets = layer_norm_targets(target_encoder(tokens))  # (B, N, D)
        predictions: list[Tensor | None] = [None] * len(target_blocks)
        by_size: dict[int, list[int]] = defaultdict(list)
        for i, block in enumerate(target_blocks):
            by_size[block.shape[1]].append(i)
        for members in by_size.values():
            out = predictor(context, [context_indices], [target_blocks[i] for i in members])  # (M*B, K, D)
            for j, chunk in enumerate(out.chunk(len(members))):
                predictions[members[j]] = chunk
        ready = [p for p in predictions if p is not None]
        return float(jepa_loss_blocks(ready, targets, target_blocks, kind, reduction))

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
"""The same backend on the GPU: ``--jepa-backend=jepa_torch.backend:cuda_backend``."""
