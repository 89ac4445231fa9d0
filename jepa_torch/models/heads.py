"""Heads on top of an encoder: LeJEPA's projector."""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["Projector"]


class Projector(nn.Module):
    """The projector head ``(N, D) -> (N, K)``: ``Linear -> BatchNorm -> GELU`` twice, then ``Linear``;
    with ``hidden=0`` one ``Linear`` alone.

    Args:
        dim: input width (the encoder's).
        hidden: hidden width (0: no hidden layer).
        out: embedding width ``K`` that SIGReg shapes.
    """

    def __init__(self, dim: int, hidden: int, out: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, out)) if hidden == 0 else nn.Sequential(
            nn.Linear(dim, hidden), nn.BatchNorm1d(hidden), nn.GELU(),
            nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.GELU(),
            nn.Linear(hidden, out),
        )

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.net(x)
        return out
