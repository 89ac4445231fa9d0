"""LeJEPA's objective: the views' prediction of their global centre plus SIGReg (``jepa_torch.models.lejepa``).

The prediction term is ``jepa_core.jepa_loss`` over the views, mean-normalised
(:func:`prediction_term_as_spec` restates it literally; docs/spec.md, "LeJEPA as an instance").
"""

from __future__ import annotations

import torch
from torch import Tensor

from jepa_torch.objectives.regularisers import sigreg

__all__ = ["lejepa_loss", "prediction_term_as_spec"]


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
