"""The I-JEPA transformer encoder in JAX: front ends, sin-cos positions, pre-norm blocks.

Equinox modules whose attribute paths *are* the official state-dict names: ``patch_embed.proj``,
``pos_embed``, ``blocks.N.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}``, ``norm``. Linear
weights keep torch's ``(out, in)`` layout, so a state dict moves in by name alone, with no
transposes (:mod:`jepa_jax.state_dict`). Numerics follow ``jepa_torch.models.vit`` and the official code:
LayerNorm eps 1e-6, exact (erf) GELU, a fused qkv projection with bias, attention scale
``head_dim ** -0.5``, no class token, no dropout.

Modules take batched arrays (leading axes ride along), as the torch modules do. Masks follow the
official convention: a list of ``M`` index arrays ``(B, K)`` of kept tokens, and a masked forward
returns the kept tokens of every mask concatenated along the batch, mask-major: ``(M * B, K, D)``.
``valid`` ``(rows, K)`` marks padded entries (False) that no token attends to (whole contexts of
unequal length, ``mask.context_trim: none``).

The fixed position tables are stored as leaves (they are part of the official state dict) and read
through ``stop_gradient``; :func:`jepa_jax.models.trainable` leaves them out of optimisation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from .loss import gather_tokens
from .pos_embed import sincos_pos_embed

__all__ = [
    "LN_EPS",
    "Attention",
    "Block",
    "LayerNorm",
    "Linear",
    "Mlp",
    "PatchEmbed",
    "TokenEmbed",
    "TransformerEncoder",
    "apply_masks",
    "context_valid",
    "trunc_normal",
]

LN_EPS = 1e-6


def trunc_normal(key: Array, shape: tuple[int, ...], std: float, dtype: jnp.dtype = jnp.float64) -> Array:
    """The official init: a normal of ``std`` truncated at +-2 *absolute* (``trunc_normal_``'s default)."""
    return std * jax.random.truncated_normal(key, -2.0 / std, 2.0 / std, shape, dtype)


class Linear(eqx.Module):
    """``x @ weight.T + bias``: ``(..., in) -> (..., out)``, torch's layout (``weight (out, in)``)."""

    weight: Array
    bias: Array | None

    @classmethod
    def init(cls, key: Array, in_features: int, out_features: int, std: float, dtype: jnp.dtype,
             bias: bool = True) -> Linear:
        """Truncated-normal weight, zero bias (the official per-layer init)."""
        return cls(trunc_normal(key, (out_features, in_features), std, dtype),
                   jnp.zeros(out_features, dtype) if bias else None)

    def __call__(self, x: Array) -> Array:
        y = x @ self.weight.T
        return y if self.bias is None else y + self.bias


class LayerNorm(eqx.Module):
    """LayerNorm over the last axis with an affine ``weight`` and ``bias``."""

    weight: Array
    bias: Array
    eps: float = eqx.field(static=True, default=LN_EPS)

    @classmethod
    def init(cls, dim: int, dtype: jnp.dtype) -> LayerNorm:
        """Weight 1, bias 0."""
        return cls(jnp.ones(dim, dtype), jnp.zeros(dim, dtype))

    def __call__(self, x: Array) -> Array:
        mean = jnp.mean(x, axis=-1, keepdims=True)  # (..., 1)
        var = jnp.mean((x - mean) ** 2, axis=-1, keepdims=True)  # (..., 1)
        return (x - mean) / jnp.sqrt(var + self.eps) * self.weight + self.bias


class Attention(eqx.Module):
    """Multi-head self-attention with a fused ``qkv`` projection (rows ``q | k | v``) and ``proj``."""

    qkv: Linear
    proj: Linear
    num_heads: int = eqx.field(static=True)

    @classmethod
    def init(cls, key: Array, dim: int, num_heads: int, std: float, dtype: jnp.dtype) -> Attention:
        if num_heads <= 0 or dim % num_heads:
            raise ValueError(f"width {dim} is not divisible by num_heads={num_heads}; choose heads dividing it")
        k1, k2 = jax.random.split(key)
        return cls(Linear.init(k1, dim, 3 * dim, std, dtype), Linear.init(k2, dim, dim, std, dtype), num_heads)

    def __call__(self, x: Array, queries_from: int | None = None, valid: Array | None = None) -> Array:
        """Attend over the tokens: ``(B, N, D) -> (B, Nq, D)``.

        Args:
            x: tokens ``(B, N, D)``.
            queries_from: only tokens ``queries_from:`` ask queries (all ``N`` give keys and values),
                so ``Nq = N - queries_from``; None: every token, ``Nq = N``.
            valid: ``(B, N)`` booleans, False at padding: padded tokens give no keys or values. Each
                row *must* keep at least one valid token.
        """
        batch, n, dim = x.shape
        heads = self.num_heads
        hd = dim // heads
        start = 0 if queries_from is None else queries_from
        nq = n - start
        w, b = self.qkv.weight, self.qkv.bias  # (3D, D), (3D,)
        q = x[:, start:] @ w[:dim].T + (0.0 if b is None else b[:dim])  # (B, Nq, D)
        kv = x @ w[dim:].T + (0.0 if b is None else b[dim:])  # (B, N, 2D)
        q = q.reshape(batch, nq, heads, hd)  # (B, Nq, h, hd)
        kv = kv.reshape(batch, n, 2, heads, hd)  # (B, N, 2, h, hd)
        k, v = kv[:, :, 0], kv[:, :, 1]  # each (B, N, h, hd)
        scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) * hd**-0.5  # (B, h, Nq, N)
        if valid is not None:
            scores = jnp.where(valid[:, None, None, :], scores, np.finfo(scores.dtype).min)  # padding: weight 0
        weights = jax.nn.softmax(scores, axis=-1)  # (B, h, Nq, N)
        y = jnp.einsum("bhqk,bkhd->bqhd", weights, v).reshape(batch, nq, dim)  # (B, Nq, D)
        return self.proj(y)


class Mlp(eqx.Module):
    """``fc2(gelu(fc1(x)))`` with exact GELU."""

    fc1: Linear
    fc2: Linear

    @classmethod
    def init(cls, key: Array, dim: int, hidden_dim: int, std: float, dtype: jnp.dtype) -> Mlp:
        k1, k2 = jax.random.split(key)
        return cls(Linear.init(k1, dim, hidden_dim, std, dtype), Linear.init(k2, hidden_dim, dim, std, dtype))

    def __call__(self, x: Array) -> Array:
        return self.fc2(jax.nn.gelu(self.fc1(x), approximate=False))


class Block(eqx.Module):
    """Pre-norm transformer block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``."""

    norm1: LayerNorm
    attn: Attention
    norm2: LayerNorm
    mlp: Mlp

    @classmethod
    def init(cls, key: Array, dim: int, num_heads: int, mlp_hidden_dim: int, std: float, dtype: jnp.dtype,
             rescale: float = 1.0) -> Block:
        """A block at the official init; ``rescale`` divides ``attn.proj`` and ``mlp.fc2`` weights (depth rescaling)."""
        k1, k2 = jax.random.split(key)
        attn = Attention.init(k1, dim, num_heads, std, dtype)
        mlp = Mlp.init(k2, dim, mlp_hidden_dim, std, dtype)
        attn = eqx.tree_at(lambda a: a.proj.weight, attn, attn.proj.weight / rescale)
        mlp = eqx.tree_at(lambda m: m.fc2.weight, mlp, mlp.fc2.weight / rescale)
        return cls(LayerNorm.init(dim, dtype), attn, LayerNorm.init(dim, dtype), mlp)

    def __call__(self, x: Array, keep_from: int | None = None, valid: Array | None = None) -> Array:
        """``(B, N, D) -> (B, N, D)``, or only tokens ``keep_from:`` (``(B, N - keep_from, D)``), which still
        attend to every valid token."""
        start = 0 if keep_from is None else keep_from
        x = x[:, start:] + self.attn(self.norm1(x), queries_from=keep_from, valid=valid)
        return x + self.mlp(self.norm2(x))


class TokenEmbed(eqx.Module):
    """Sequences ``(B, T, F)`` (or feature rows ``(B, T)`` when ``F == 1``) to tokens through ``proj``."""

    proj: Linear
    grid: tuple[int, ...] = eqx.field(static=True)

    @classmethod
    def init(cls, key: Array, input_dim: int, seq_len: int, embed_dim: int, std: float,
             dtype: jnp.dtype) -> TokenEmbed:
        if input_dim <= 0 or seq_len <= 0:
            raise ValueError(f"input_dim and seq_len must be positive, got input_dim={input_dim}, seq_len={seq_len}")
        return cls(Linear.init(key, input_dim, embed_dim, std, dtype), (seq_len,))

    def __call__(self, x: Array) -> Array:
        input_dim = self.proj.weight.shape[1]
        if x.ndim == 2 and input_dim == 1:
            x = x[..., None]  # (B, T, 1)
        if x.ndim != 3 or tuple(x.shape[1:]) != (self.grid[0], input_dim):
            raise ValueError(f"inputs have shape {tuple(x.shape)} but the encoder expects (B, {self.grid[0]}, "
                             f"{input_dim}); pad/crop the sequences or build it with matching seq_len/input_dim")
        return self.proj(x)  # (B, T, D)


class PatchEmbed(eqx.Module):
    """Images ``(B, C, H, W)`` to patch tokens in raster order: the official ``Conv2d`` with kernel = stride.

    ``proj.weight`` is the convolution's ``(D, C, ph, pw)``; remainder pixels are dropped, as ``Conv2d`` does.
    """

    proj: Linear
    grid: tuple[int, ...] = eqx.field(static=True)

    @classmethod
    def init(cls, key: Array, img_size: tuple[int, int], patch_size: tuple[int, int], in_chans: int,
             embed_dim: int, std: float, dtype: jnp.dtype) -> PatchEmbed:
        grid = (img_size[0] // patch_size[0], img_size[1] // patch_size[1])
        if min(grid) < 1:
            raise ValueError(f"img_size={img_size} is smaller than patch_size={patch_size}")
        weight = trunc_normal(key, (embed_dim, in_chans, *patch_size), std, dtype)  # (D, C, ph, pw)
        return cls(Linear(weight, jnp.zeros(embed_dim, dtype)), grid)

    def __call__(self, x: Array) -> Array:
        dim, chans, ph, pw = self.proj.weight.shape
        rows, cols = self.grid
        if x.ndim != 4 or x.shape[1] != chans:
            raise ValueError(f"images have shape {tuple(x.shape)}; expected (B, {chans}, H, W)")
        batch = x.shape[0]
        x = x[:, :, : rows * ph, : cols * pw].reshape(batch, chans, rows, ph, cols, pw)  # (B, C, gh, ph, gw, pw)
        patches = x.transpose(0, 2, 4, 1, 3, 5).reshape(batch, rows * cols, chans * ph * pw)  # (B, N, C*ph*pw)
        out = patches @ self.proj.weight.reshape(dim, -1).T  # (B, N, D)
        return out if self.proj.bias is None else out + self.proj.bias


def apply_masks(x: Array, masks: Sequence[Array]) -> Array:
    """Keep the tokens each mask names, mask-major: ``(B, N, D)``, ``M x (B, K)`` -> ``(M * B, K, D)``."""
    if not masks:
        raise ValueError("masks is empty; pass at least one (B, K) index array")
    return jnp.concatenate([gather_tokens(x, m) for m in masks], axis=0)  # (M*B, K, D)


def context_valid(lengths: Sequence[Array], size: int) -> Array:
    """Which entries of padded masks are real: ``(M * B, K)`` booleans, ``valid[m * B + b, k] = k < lengths[m][b]``."""
    n = jnp.concatenate([jnp.asarray(length) for length in lengths])  # (M*B,)
    return jnp.arange(size) < n[:, None]  # (M*B, K)


class TransformerEncoder(eqx.Module):
    """Front end + fixed sin-cos positions + pre-norm blocks + final ``norm``: the I-JEPA encoder."""

    patch_embed: TokenEmbed | PatchEmbed
    pos_embed: Array
    blocks: tuple[Block, ...]
    norm: LayerNorm

    @property
    def embed_dim(self) -> int:
        """The token width ``D``."""
        return int(self.pos_embed.shape[-1])

    @property
    def grid(self) -> tuple[int, ...]:
        """The token grid: ``(length,)`` or ``(rows, cols)``."""
        return self.patch_embed.grid

    def __call__(self, x: Array, masks: Sequence[Array] | None = None, valid: Array | None = None) -> Array:
        """Encode, keeping only the tokens each mask names (positions are added before masking).

        Args:
            x: raw inputs for the front end (sequences ``(B, T, F)``, images ``(B, C, H, W)``).
            masks: None for all ``N`` tokens, or ``M`` index arrays ``(B, K)``.
            valid: with ``masks``, ``(M * B, K)`` booleans, False where a row is padding
                (:func:`context_valid`); padded outputs are meaningless.

        Returns:
            ``(B, N, D)`` without masks, else ``(M * B, K, D)`` mask-major.
        """
        x = self.patch_embed(x) + jax.lax.stop_gradient(self.pos_embed)  # (B, N, D)
        if masks is not None:
            x = apply_masks(x, masks)  # (M*B, K, D)
        if valid is not None and valid.shape != x.shape[:2]:
            raise ValueError(f"valid has shape {tuple(valid.shape)} but the masked tokens are {tuple(x.shape[:2])}")
        for block in self.blocks:
            x = block(x, valid=valid)
        return self.norm(x)


def init_encoder(key: Array, patch_embed: TokenEmbed | PatchEmbed, depth: int, num_heads: int, mlp_hidden_dim: int,
                 std: float, depth_rescale: bool, dtype: jnp.dtype) -> TransformerEncoder:
    """An encoder around ``patch_embed`` at the official init (block ``i`` rescaled by ``sqrt(2 (i + 1))``
    when ``depth_rescale``)."""
    dim = patch_embed.proj.weight.shape[0]
    keys = jax.random.split(key, max(depth, 1))
    blocks = tuple(Block.init(keys[i], dim, num_heads, mlp_hidden_dim, std, dtype,
                              math.sqrt(2.0 * (i + 1)) if depth_rescale else 1.0) for i in range(depth))
    pos = jnp.asarray(sincos_pos_embed(dim, patch_embed.grid), dtype)  # (1, N, D)
    return TransformerEncoder(patch_embed, pos, blocks, LayerNorm.init(dim, dtype))
