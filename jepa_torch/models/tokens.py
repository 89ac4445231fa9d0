"""Token front end for non-image inputs: sequences and feature rows through a linear projection.

A sequence of ``T`` steps with ``F`` features each, ``(B, T, F)``, becomes ``T`` tokens by one Linear
``F -> D`` (state-dict name ``patch_embed.proj``, so checkpoints read like the image encoder's) plus a
fixed 1-D sin-cos position embedding ``(1, T, D)``. The blocks, the final norm, the masking
convention (index tensors ``(B, K)`` over ``0 .. T-1``) and the predictor are the image model's
(``jepa_torch.models.vit.TransformerEncoder``, ``jepa_torch.models.predictor.Predictor`` with ``grid=(T,)``), so
the same JEPA step trains on time series or tabular rows.

A flat feature row ``(B, T)`` is accepted when ``input_dim == 1``: each feature is one token.
"""

from __future__ import annotations

from torch import Tensor, nn

from jepa_torch.models.vit import FrontEnd, TransformerEncoder

__all__ = ["SequenceTransformer", "TokenEmbed"]


class TokenEmbed(FrontEnd):
    """Linear projection of per-step features into tokens on a 1-D grid.

    Args:
        input_dim: features per step ``F``.
        seq_len: steps ``T`` (fixed: it sets the position embedding).
        embed_dim: token width ``D`` (even, for the 1-D positions).
    """

    def __init__(self, input_dim: int, seq_len: int, embed_dim: int) -> None:
        super().__init__()
        if input_dim <= 0 or seq_len <= 0:
            raise ValueError(f"input_dim and seq_len must be positive, got input_dim={input_dim}, seq_len={seq_len}")
        self.input_dim = input_dim
        self.seq_len = seq_len
        self.embed_dim = embed_dim
        self.grid = (seq_len,)
        self.proj = nn.Linear(input_dim, embed_dim)

    def forward(self, x: Tensor) -> Tensor:
        """Project: ``(B, T, F)`` (or ``(B, T)`` when ``F == 1``) -> tokens ``(B, T, D)``."""
        if x.dim() == 2 and self.input_dim == 1:
            x = x.unsqueeze(-1)  # (B, T, 1)
        if x.dim() != 3 or tuple(x.shape[1:]) != (self.seq_len, self.input_dim):
            raise ValueError(
                f"inputs have shape {tuple(x.shape)} but the encoder expects (B, {self.seq_len}, {self.input_dim}); "
                "pad/crop the sequences or build it with matching seq_len/input_dim"
            )
        out: Tensor = self.proj(x)  # (B, T, D)
        return out


class SequenceTransformer(TransformerEncoder):
    """JEPA encoder for sequences and feature rows: ``TokenEmbed`` + the shared transformer stack.

    Args:
        input_dim: features per step ``F``.
        seq_len: steps ``T``.
        embed_dim: token width ``D``.
        depth, num_heads, mlp_ratio, mlp_hidden_dim, qkv_bias, init_std, depth_rescale: as in
            ``jepa_torch.models.vit.TransformerEncoder``.
    """

    def __init__(
        self,
        input_dim: int,
        seq_len: int,
        embed_dim: int = 192,
        depth: int = 12,
        num_heads: int = 3,
        mlp_ratio: float = 4.0,
        mlp_hidden_dim: int | None = None,
        qkv_bias: bool = True,
        init_std: float = 0.02,
        depth_rescale: bool = True,
    ) -> None:
        super().__init__(
            TokenEmbed(input_dim, seq_len, embed_dim),
            depth=depth,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
            mlp_hidden_dim=mlp_hidden_dim,
            qkv_bias=qkv_bias,
            init_std=init_std,
            depth_rescale=depth_rescale,
        )
        self.input_dim = input_dim
        self.seq_len = seq_len
