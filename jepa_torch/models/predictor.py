"""The narrow I-JEPA predictor: context tokens plus mask tokens at target positions, through blocks.

State-dict names follow the official ``VisionTransformerPredictor``: ``predictor_embed`` (D -> Dp),
``mask_token`` (1, 1, Dp), ``predictor_pos_embed`` (1, N, Dp; fixed sin-cos, a non-trainable
parameter), ``predictor_blocks.N...``, ``predictor_norm``, ``predictor_proj`` (Dp -> D).

Ordering, as the official code: with ``Mx`` context masks, ``Mt`` target masks and batch ``B``, the
context tokens arrive as ``(Mx * B, Kc, D)`` (row ``c * B + b``, what the encoder returns) and the
predictions leave as ``(Mt * Mx * B, Kt, D)``, row ``t * Mx * B + c * B + b`` predicting target mask
``t`` of sample ``b`` from its context mask ``c`` (target-mask-major, then context mask, then batch).
The official code builds that with ``x.repeat(Mt, 1, 1)`` and ``repeat_interleave_batch``; here one
broadcasting concatenation makes the same tensor with one copy.

The official predictor runs every block on all tokens, normalises them all and then drops the
context ones. Only target rows leave, so the last block here computes only them (context tokens
still give its keys and values; see ``Block.forward(keep_from=...)``) and only they are normalised:
same values, less work (row-wise LayerNorm, MLP and projections).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from jepa_torch.models.positions import sincos_pos_embed
from jepa_torch.models.vit import LN_EPS, Block, MaskArg, as_mask_list, init_weights_, rescale_residual_, run_block

__all__ = ["Predictor"]


class Predictor(nn.Module):
    """Predict target-token representations from context tokens (official I-JEPA predictor).

    Args:
        num_patches: tokens ``N`` of a square grid (the official argument); ignored if ``grid`` given.
        grid: ``(rows, cols)`` for images or ``(length,)`` for sequences; sets the positions.
        embed_dim: encoder width ``D``.
        predictor_embed_dim: predictor width ``Dp``.
        depth: number of predictor blocks.
        num_heads: attention heads (officially the encoder's); must divide ``Dp``.
        mlp_ratio: MLP hidden width over ``Dp`` when ``mlp_hidden_dim`` is None.
        mlp_hidden_dim: explicit MLP hidden width.
        qkv_bias: bias on the fused qkv projections.
        init_std: std of the truncated-normal init (also of ``mask_token``).
        depth_rescale: residual rescaling after init, as the official constructor (see ``jepa_torch.models.vit``).
    """

    def __init__(
        self,
        num_patches: int | None = None,
        *,
        grid: Sequence[int] | None = None,
        embed_dim: int = 768,
        predictor_embed_dim: int = 384,
        depth: int = 6,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        mlp_hidden_dim: int | None = None,
        qkv_bias: bool = True,
        init_std: float = 0.02,
        depth_rescale: bool = True,
    ) -> None:
        super().__init__()
        if grid is None:
            side = math.isqrt(num_patches) if num_patches is not None and num_patches > 0 else 0
            if num_patches is None or side * side != num_patches:
                raise ValueError(
                    f"num_patches={num_patches} is not a square grid; pass grid=(rows, cols) or grid=(length,)"
                )
            grid = (side, side)
        self.grid = tuple(grid)
        self.num_patches = math.prod(self.grid)
        self.embed_dim = embed_dim
        self.predictor_embed_dim = predictor_embed_dim
        self.num_heads = num_heads
        dp = predictor_embed_dim
        self.predictor_embed = nn.Linear(embed_dim, dp)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dp))  # (1, 1, Dp)
        self.predictor_pos_embed = nn.Parameter(sincos_pos_embed(dp, self.grid), requires_grad=False)  # (1, N, Dp)
        hidden = int(dp * mlp_ratio) if mlp_hidden_dim is None else mlp_hidden_dim
        self.predictor_blocks = nn.ModuleList([Block(dp, num_heads, hidden, qkv_bias) for _ in range(depth)])
        self.predictor_norm = nn.LayerNorm(dp, eps=LN_EPS)
        self.predictor_proj = nn.Linear(dp, embed_dim)
        self.recompute = False  # activation checkpointing per block (``run.activation_checkpointing``)
        nn.init.trunc_normal_(self.mask_token, std=init_std)
        init_weights_(self, init_std)
        if depth_rescale:
            rescale_residual_(self.predictor_blocks)

    def forward(self, x: torch.Tensor, masks_x: MaskArg, masks: MaskArg,
                valid: torch.Tensor | None = None) -> torch.Tensor:
        """Predict the tokens of every target mask from every context mask.

        Args:
            x: context tokens ``(Mx * B, Kc, D)``, mask-major (the encoder's masked output).
            masks_x: the ``Mx`` context masks ``(B, Kc)`` that produced ``x``.
            masks: the ``Mt`` target masks ``(B, Kt)``.
            valid: ``(Mx * B, Kc)`` booleans, False where a context row is padding: padded context
                tokens are masked out of every attention, so each prediction equals the one made
                from that row's context alone, unpadded.

        Returns:
            ``(Mt * Mx * B, Kt, D)``; row ``t * Mx * B + c * B + b`` predicts ``masks[t][b]`` from
            ``masks_x[c][b]``.
        """
        ctx_masks = as_mask_list(masks_x, "masks_x")
        tgt_masks = as_mask_list(masks, "masks")
        mx, mt = len(ctx_masks), len(tgt_masks)
        rows, kc, _ = x.shape
        B, kt = tgt_masks[0].shape
        if rows != mx * B or ctx_masks[0].shape != (B, kc):
            raise ValueError(
                f"context tokens {tuple(x.shape)} do not match {mx} context masks of shape "
                f"{tuple(ctx_masks[0].shape)} and target masks of batch {B}; expected ({mx * B}, {kc}, D)"
            )
        pos = self.predictor_pos_embed[0]  # (N, Dp)
        dp = pos.size(1)
        ctx_idx = torch.cat(ctx_masks) if mx > 1 else ctx_masks[0]  # (Mx*B, Kc)
        tgt_idx = torch.cat(tgt_masks) if mt > 1 else tgt_masks[0]  # (Mt*B, Kt)
        ctx = self.predictor_embed(x) + F.embedding(ctx_idx, pos)  # (Mx*B, Kc, Dp)
        tgt = F.embedding(tgt_idx, pos) + self.mask_token  # (Mt*B, Kt, Dp)
        ctx = ctx.view(1, mx, B, kc, dp).expand(mt, mx, B, kc, dp)  # (Mt, Mx, B, Kc, Dp)
        tgt = tgt.view(mt, 1, B, kt, dp).expand(mt, mx, B, kt, dp)  # (Mt, Mx, B, Kt, Dp)
        z = torch.cat([ctx, tgt], dim=3).view(mt * mx * B, kc + kt, dp)  # (Mt*Mx*B, Kc+Kt, Dp)
        keys = None
        if valid is not None:
            if valid.shape != (rows, kc):
                raise ValueError(f"valid has shape {tuple(valid.shape)} but the context tokens are {(rows, kc)}")
            keys = torch.cat([valid.view(1, rows, kc).expand(mt, rows, kc),
                              valid.new_ones(mt, rows, kt)], dim=2).view(mt * rows, kc + kt)  # (Mt*Mx*B, Kc+Kt)
        blocks = list(self.predictor_blocks)
        for blk in blocks[:-1]:
            z = run_block(blk, z, self.recompute, valid=keys)
        # Only the target rows leave the predictor: the last block computes just those.
        if blocks:
            z = run_block(blocks[-1], z, self.recompute, keep_from=kc, valid=keys)
        else:
            z = z[:, kc:]  # (Mt*Mx*B, Kt, Dp)
        z = self.predictor_norm(z)  # (Mt*Mx*B, Kt, Dp)
        out: torch.Tensor = self.predictor_proj(z)  # (Mt*Mx*B, Kt, D)
        return out
