"""LeJEPA (Balestriero & LeCun, 2025): multi-view prediction plus SIGReg, no EMA, no stop-gradient.

    images (B,C,H,W) -> V views (global first, then local; ``jepa_torch.data.views.MultiCrop``)
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

import torch
from torch import Tensor, nn

from jepa_torch.models.heads import Projector
from jepa_torch.models.vit import TransformerEncoder

__all__ = ["LeJEPA", "Projector"]


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
