"""The narrow I-JEPA predictor in JAX: context tokens plus mask tokens at target positions, through blocks.

Attribute paths are the official state-dict names: ``predictor_embed`` (D -> Dp), ``mask_token``
``(1, 1, Dp)``, ``predictor_pos_embed`` ``(1, N, Dp)`` (fixed sin-cos), ``predictor_blocks.N...``,
``predictor_norm``, ``predictor_proj`` (Dp -> D). Row order is the official one: with ``Mx`` context
masks, ``Mt`` target masks and batch ``B``, row ``t * Mx * B + c * B + b`` of the output predicts
target mask ``t`` of sample ``b`` from its context mask ``c``. As in ``jepa_torch.models.predictor``, the last
block computes only the target rows (the context rows still give its keys and values).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from .pos_embed import sincos_pos_embed
from .loss import take_rows
from .vit import Block, LayerNorm, Linear, trunc_normal

__all__ = ["Predictor", "init_predictor"]


def _stack(masks: Sequence[Array], name: str) -> Array:
    """``M x (B, K)`` -> ``(M * B, K)``, checking there is one mask at least and that all share a shape."""
    if not masks:
        raise ValueError(f"{name} is empty; pass at least one (B, K) index array")
    if any(m.ndim != 2 or m.shape != masks[0].shape for m in masks):
        raise ValueError(f"{name} must be index arrays (B, K) of one shape, got {[tuple(m.shape) for m in masks]}")
    return jnp.concatenate(list(masks), axis=0)  # (M*B, K)


class Predictor(eqx.Module):
    """Predict target-token representations from context tokens (the official I-JEPA predictor)."""

    predictor_embed: Linear
    mask_token: Array
    predictor_pos_embed: Array
    predictor_blocks: tuple[Block, ...]
    predictor_norm: LayerNorm
    predictor_proj: Linear

    def __call__(self, x: Array, masks_x: Sequence[Array], masks: Sequence[Array],
                 valid: Array | None = None, target_valid: Array | None = None) -> Array:
        """Predict the tokens of every target mask from every context mask.

        Args:
            x: context tokens ``(Mx * B, Kc, D)``, mask-major (the encoder's masked output).
            masks_x: the ``Mx`` context masks ``(B, Kc)`` that produced ``x``.
            masks: the ``Mt`` target masks ``(B, Kt)``.
            valid: ``(Mx * B, Kc)`` booleans, False where a context entry is padding: it takes no part
                in any attention, so each prediction equals the one made from that row's context alone.
            target_valid: ``(Mt * B, Kt)`` booleans (mask-major, like the target masks), False where a
                target entry is padding (masks padded to a static size): its mask token gives no key or
                value, so every real prediction equals the one of its unpadded mask; its own output is
                meaningless.

        Returns:
            ``(Mt * Mx * B, Kt, D)``; row ``t * Mx * B + c * B + b`` predicts ``masks[t][b]`` from ``masks_x[c][b]``.
        """
        ctx_idx = _stack(masks_x, "masks_x")  # (Mx*B, Kc)
        tgt_idx = _stack(masks, "masks")  # (Mt*B, Kt)
        mx, mt = len(masks_x), len(masks)
        rows, kc, _ = x.shape
        batch, kt = masks[0].shape
        if rows != mx * batch or masks_x[0].shape != (batch, kc):
            raise ValueError(f"context tokens {tuple(x.shape)} do not match {mx} context masks of shape "
                             f"{tuple(masks_x[0].shape)} and target masks of batch {batch}; expected ({mx * batch}, {kc}, D)")
        pos = jax.lax.stop_gradient(self.predictor_pos_embed[0])  # (N, Dp)
        dp = pos.shape[1]
        ctx = self.predictor_embed(x) + take_rows(pos, ctx_idx)  # (Mx*B, Kc, Dp)
        tgt = take_rows(pos, tgt_idx) + self.mask_token  # (Mt*B, Kt, Dp)
        ctx = jnp.broadcast_to(ctx.reshape(1, mx, batch, kc, dp), (mt, mx, batch, kc, dp))  # (Mt, Mx, B, Kc, Dp)
        tgt = jnp.broadcast_to(tgt.reshape(mt, 1, batch, kt, dp), (mt, mx, batch, kt, dp))  # (Mt, Mx, B, Kt, Dp)
        z = jnp.concatenate([ctx, tgt], axis=3).reshape(mt * rows, kc + kt, dp)  # (Mt*Mx*B, Kc+Kt, Dp)
        keys = None
        if valid is not None or target_valid is not None:
            if valid is not None and valid.shape != (rows, kc):
                raise ValueError(f"valid has shape {tuple(valid.shape)} but the context tokens are {(rows, kc)}")
            if target_valid is not None and target_valid.shape != (mt * batch, kt):
                raise ValueError(f"target_valid has shape {tuple(target_valid.shape)}, expected {(mt * batch, kt)}")
            ctx_keys = jnp.ones((rows, kc), bool) if valid is None else valid  # (Mx*B, Kc)
            tgt_keys = jnp.ones((mt * batch, kt), bool) if target_valid is None else target_valid  # (Mt*B, Kt)
            keys = jnp.concatenate([jnp.broadcast_to(ctx_keys.reshape(1, mx, batch, kc), (mt, mx, batch, kc)),
                                    jnp.broadcast_to(tgt_keys.reshape(mt, 1, batch, kt), (mt, mx, batch, kt))],
                                   axis=3).reshape(mt * rows, kc + kt)  # (Mt*Mx*B, Kc+Kt)
        blocks = self.predictor_blocks
        for block in blocks[:-1]:
            z = block(z, valid=keys)
        # Only the target rows leave the predictor: the last block computes just those.
        z = blocks[-1](z, keep_from=kc, valid=keys) if blocks else z[:, kc:]  # (Mt*Mx*B, Kt, Dp)
        return self.predictor_proj(self.predictor_norm(z))  # (Mt*Mx*B, Kt, D)


def init_predictor(key: Array, grid: tuple[int, ...], embed_dim: int, pred_emb_dim: int, depth: int,
                   num_heads: int, mlp_hidden_dim: int, std: float, depth_rescale: bool,
                   dtype: jnp.dtype) -> Predictor:
    """A predictor at the official init: truncated-normal Linear weights and ``mask_token``, zero biases,
    unit LayerNorms, block ``i`` rescaled by ``sqrt(2 (i + 1))`` when ``depth_rescale``."""
    k_embed, k_token, k_blocks, k_proj = jax.random.split(key, 4)
    dp = pred_emb_dim
    block_keys = jax.random.split(k_blocks, max(depth, 1))
    blocks = tuple(Block.init(block_keys[i], dp, num_heads, mlp_hidden_dim, std, dtype,
                              math.sqrt(2.0 * (i + 1)) if depth_rescale else 1.0) for i in range(depth))
    return Predictor(
        predictor_embed=Linear.init(k_embed, embed_dim, dp, std, dtype),
        mask_token=trunc_normal(k_token, (1, 1, dp), std, dtype),
        predictor_pos_embed=jnp.asarray(sincos_pos_embed(dp, grid), dtype),
        predictor_blocks=blocks,
        predictor_norm=LayerNorm.init(dp, dtype),
        predictor_proj=Linear.init(k_proj, dp, embed_dim, std, dtype),
    )
