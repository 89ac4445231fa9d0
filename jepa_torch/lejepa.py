"""LeJEPA (Balestriero & LeCun, 2025): multi-view prediction plus SIGReg, no EMA, no stop-gradient.

    images (B,C,H,W) -> V views (global first, then local; ``jepa_torch.views.MultiCrop``)
      -> encoder per view, tokens average-pooled, projector head -> z (V, B, K)
      -> centre = mean of the global views' z                           (B, K)
      -> prediction loss = mean over (v, b, k) of (z[v] - centre)^2
      -> SIGReg of each view's (B, K) embeddings, averaged over views
      -> loss = (1 - lambda) * prediction + lambda * SIGReg; backward; optimiser step

In the spec's terms (docs/spec.md, "LeJEPA as an instance"): the context encoder and the target
encoder are one network (projector after pooled encoder), the target of every view is the mean of
the global views' embeddings, the predictor is the identity, the representation loss is the
squared L2 distance, and the target indices are the views; the prediction term is
``jepa_core.jepa_loss`` over the views, mean-normalised (:func:`prediction_term_as_spec`).
Gradients flow through the centre too (no stop-gradient), and nothing is an EMA: SIGReg alone
keeps the embeddings from collapsing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .regularisers import sigreg
from .config import Precision
from .step import StepResult, autocast_for, backward_and_step
from .heads import Projector
from .vit import TransformerEncoder

__all__ = ["LeJEPA", "LeJEPAStepConfig", "Projector", "lejepa_loss", "lejepa_step", "prediction_term_as_spec"]


class LeJEPA(nn.Module):
    """An encoder and its projector head; the encoder's pooled tokens are the representation.

    Args:
        encoder: the ViT (or sequence transformer).
        projector_hidden: hidden width of the projector (when ``projector`` is not given).
        projector_dim: embedding width ``K`` (when ``projector`` is not given).
        projector: the head itself (built after the encoder, from the same torch seed, by default).
    """

    def __init__(self, encoder: TransformerEncoder, projector_hidden: int = 512, projector_dim: int = 128,
                 projector: Projector | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.projector = Projector(encoder.embed_dim, projector_hidden, projector_dim) if projector is None else projector

    @property
    def projector_dim(self) -> int:
        """The embedding width ``K`` that SIGReg shapes."""
        last = self.projector.net[-1]
        assert isinstance(last, nn.Linear)
        return int(last.out_features)

    def forward(self, views: list[Tensor]) -> Tensor:
        """Embeddings ``(V, B, K)`` of ``V`` views ``(B, ...)``; views of one size share one encoder call."""
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, view in enumerate(views):
            by_shape.setdefault(tuple(view.shape), []).append(i)
        out: list[Tensor | None] = [None] * len(views)
        batch = views[0].size(0)
        for members in by_shape.values():
            x = torch.cat([views[i] for i in members])  # (m*B, C, h, w)
            pooled = self.encoder(x).mean(dim=1)  # (m*B, D)
            z = self.projector(pooled).view(len(members), batch, -1)  # (m, B, K)
            for j, i in enumerate(members):
                out[i] = z[j]
        return torch.stack([z for z in out if z is not None])  # (V, B, K)


def lejepa_loss(z: Tensor, num_global: int, directions: Tensor, knots: Tensor,
                lam: float) -> tuple[Tensor, Tensor, Tensor]:
    """LeJEPA's objective of embeddings ``z`` ``(V, B, K)`` whose first ``num_global`` views are global.

    Args:
        z: the views' embeddings.
        num_global: how many leading views form the centre.
        directions: ``(K, M)`` SIGReg directions (unit columns).
        knots: ``(T,)`` SIGReg integration points.
        lam: the trade-off ``lambda`` in ``[0, 1]``.

    Returns:
        ``(loss, prediction term, SIGReg term)``, 0-d, in float32 or wider.
    """
    z = z if z.dtype == torch.float64 else z.float()
    centre = z[:num_global].mean(dim=0)  # (B, K)
    prediction = (z - centre).square().mean()
    regulariser = torch.stack([sigreg(view, directions, knots) for view in z]).mean()
    return (1.0 - lam) * prediction + lam * regulariser, prediction, regulariser


def prediction_term_as_spec(z: Tensor, num_global: int) -> float:
    """The prediction term through ``jepa_core.jepa_loss``: the views as target indices, the centre as
    every view's target, the identity as predictor, squared L2 as representation loss, mean-normalised.

    A slow, literal restatement used by the tests to check :func:`lejepa_loss` against the spec.
    """
    import numpy as np

    from jepa_core.loss import jepa_loss
    from jepa_core.representation import squared_l2

    emb = z.detach().double().cpu().numpy()  # (V, B, K)
    centre = emb[:num_global].mean(axis=0)  # (B, K)
    views = list(range(emb.shape[0]))
    total = jepa_loss(views, emb, lambda _v: centre, lambda context, v: context[v],
                      lambda target, prediction: float(np.sum(squared_l2(target, prediction))))
    return total / emb.size


@dataclass(frozen=True)
class LeJEPAStepConfig:
    """What one LeJEPA step computes.

    Attributes:
        num_global: how many of the views are global (the centre's).
        lam: SIGReg's trade-off ``lambda``: ``loss = (1 - lambda) * prediction + lambda * SIGReg``.
        grad_clip: clip the global gradient norm to this value (None: off).
        precision: ``"auto"`` (bf16 on CUDA, fp32 elsewhere), ``"fp32"`` or ``"bf16"``.
    """

    num_global: int = 2
    lam: float = 0.05
    grad_clip: float | None = None
    precision: Precision = "auto"

    def __post_init__(self) -> None:
        if self.num_global < 1:
            raise ValueError(f"num_global={self.num_global}: need at least one global view")
        if not 0.0 <= self.lam <= 1.0:
            raise ValueError(f"lam={self.lam}: must be in [0, 1]")


def lejepa_step(model: nn.Module, optimizer: torch.optim.Optimizer, views: list[Tensor], directions: Tensor,
                knots: Tensor, config: LeJEPAStepConfig = LeJEPAStepConfig()) -> StepResult:
    """One optimisation step of the encoder and projector on one batch's views (global first).

    ``model`` is a :class:`LeJEPA` or its DistributedDataParallel wrapper.
    """
    optimizer.zero_grad(set_to_none=True)
    with autocast_for(views[0].device, config.precision):
        z = model(views)  # (V, B, K)
    loss, prediction, regulariser = lejepa_loss(z, config.num_global, directions, knots, config.lam)
    grad_norm = backward_and_step(loss, optimizer, config.grad_clip)
    return StepResult(loss.detach(), prediction.detach(), regulariser.detach(), grad_norm)
