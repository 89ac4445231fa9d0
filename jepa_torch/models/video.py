"""The V-JEPA video encoder and predictor: tubelet embedding, 3-D sin-cos positions or 3-D RoPE.

State-dict names and numerics follow the official V-JEPA 2 code (``src/models/vision_transformer.py``
and ``src/models/predictor.py``), so its checkpoints load strictly:

- encoder: ``patch_embed.proj`` (a ``Conv3d`` with kernel = stride = ``(tubelet, patch, patch)``),
  ``pos_embed`` (sin-cos models only; a non-trainable parameter), ``blocks.N.{norm1, attn.qkv,
  attn.proj, norm2, mlp.fc1, mlp.fc2}``, ``norm``;
- predictor: ``predictor_embed``, ``mask_tokens.K`` (one learned token per mask configuration,
  zero-initialised), ``predictor_pos_embed`` (sin-cos only), ``predictor_blocks.N...``,
  ``predictor_norm``, ``predictor_proj``.

Tokens are numbered ``t * H * W + row * W + col`` over the ``(T, H, W)`` tubelet grid (the order of
``Conv3d(...).flatten(2)``), the index space of :mod:`jepa_core.video_masks`. Masks follow the
image encoder's convention (``jepa_torch.models.vit``): a list of ``(B, K)`` index tensors, outputs
mask-major.

**Positions.** ``positions="sincos"``: the fixed 3-D table of :func:`jepa_torch.models.positions.sincos_3d`
(``uniform_power`` as the official flag). ``positions="rope"``: no table; in every attention the
first three ``2 * (head_dim // 6)`` channel groups of queries and keys are rotated by the token's
frame, row and column. The official rotation pairs channels ``(2i, 2i+1)`` but gives them the
frequencies of channels ``i mod (d/2)`` and ``(i + d/2) mod (d/2)``: its sines and cosines are
tiled, not interleaved (a known defect its authors kept for their checkpoints). ``rope_interleave``
(default False, the official form) gives each pair one frequency, the textbook rotation.

**An image** ``(B, C, H, W)`` is a still clip of one tubelet: it is repeated ``tubelet_size`` times
along time, so a video model embeds it as one frame of tokens. With ``num_frames = tubelet_size = 1``
the module is an image ViT whose patch embedding is a ``Conv3d`` of temporal size 1; official image
checkpoints (``Conv2d`` weights ``(D, C, p, p)``) load into it, their weight gaining the unit time
axis (see ``load_state_dict``). Their sin-cos table is the 2-D layout of I-JEPA, which the 3-D
layout at ``T = 1`` is not: build such a model with ``positions="sincos2d"``.

Differences from the official modules (docs/fidelity.md lists them with the official behaviour):
other input sizes get sin-cos positions computed for their own grid (rows and columns spread over
the built grid, frames at integer positions) where the official resamples its table trilinearly
(equal at the built size, and for shorter clips); the predictor's RoPE reads the real grid where the
official assumes a square one; the predictor does not sort tokens by position (attention does not
depend on order; outputs agree to rounding); the attention dropout the official ties to
``proj_drop`` is absent (both 0 in every official config).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from jepa_core.presets import get_preset
from jepa_torch.models.positions import sincos_2d, sincos_3d
from jepa_torch.models.vit import (LN_EPS, Attention, MaskArg, Mlp, _pair, apply_masks, as_mask_list,
                                   init_weights_, rescale_residual_, run_block)

__all__ = ["PatchEmbed3D", "Positions", "RoPEAttention", "RotaryAngles", "VideoBlock", "VideoPredictor", "VideoTransformer",
           "build_video_encoder", "build_video_predictor", "rope_rotate", "token_positions"]

Positions = Literal["sincos", "rope", "sincos2d"]
POSITIONS: tuple[Positions, ...] = ("sincos", "rope", "sincos2d")


def token_positions(ids: torch.Tensor, grid: Sequence[int]) -> torch.Tensor:
    """Flat token indices -> ``(..., 3)`` float ``(frame, row, col)`` on a ``(T, H, W)`` grid."""
    _, rows, cols = grid
    frame = torch.div(ids, rows * cols, rounding_mode="floor")
    rest = ids - frame * rows * cols
    row = torch.div(rest, cols, rounding_mode="floor")
    return torch.stack([frame, row, rest - row * cols], dim=-1).float()


def _cos_sin(pos: torch.Tensor, d: int, interleave: bool, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """``cos`` and ``sin`` ``(..., N, d)`` of the angles ``pos * omega`` of one group of ``d`` channels."""
    omega = 1.0 / 10000.0 ** (torch.arange(d // 2, dtype=dtype, device=pos.device) / (d / 2.0))  # (d/2,)
    freq = pos.to(dtype)[..., None] * omega  # (..., N, d/2)
    if interleave:  # (..., d): omega_0, omega_0, omega_1, omega_1, ...
        return freq.cos().repeat_interleave(2, dim=-1), freq.sin().repeat_interleave(2, dim=-1)
    # (..., d): omega_0 .. omega_{d/2-1}, then the same again (the official tiling)
    return torch.cat([freq.cos()] * 2, dim=-1), torch.cat([freq.sin()] * 2, dim=-1)


def _turn(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """``x * cos + rot90(x) * sin``, each channel pair ``(2i, 2i+1)`` turned by its angle."""
    pairs = x.reshape(*x.shape[:-1], x.size(-1) // 2, 2)  # (..., d/2, 2)
    turned = torch.stack([-pairs[..., 1], pairs[..., 0]], dim=-1).flatten(-2)  # (..., d)
    return x * cos + turned * sin


def rope_rotate(x: torch.Tensor, pos: torch.Tensor, interleave: bool = False) -> torch.Tensor:
    """Rotate channel pairs ``(2i, 2i+1)`` of ``x: (B, h, N, d)`` by angles ``pos * omega``.

    Args:
        x: queries or keys, ``d`` even.
        pos: positions ``(B, N)`` or ``(N,)``.
        interleave: False: the official tiling (pair ``i`` gets the frequencies of channels ``2i`` and
            ``2i + 1`` of ``[omega, omega]``); True: pair ``i`` gets ``omega_i`` on both channels.
    """
    cos, sin = _cos_sin(pos, x.size(-1), interleave, x.dtype)
    if pos.dim() == 2:
        cos, sin = cos[:, None], sin[:, None]  # (B, 1, N, d): the same for every head
    return _turn(x, cos, sin)


@dataclass(frozen=True)
class RotaryAngles:
    """The rotations of 3-D RoPE for one forward: ``cos`` and ``sin`` ``(1 or B, 1, N, head_dim)`` over a head's
    channels (three groups turned by frame, row and column; ones and zeros on the channels left as they
    are), computed once in float32 and shared by every block's queries and keys.

    Turning a head with them is :func:`rope_rotate` of each group, channel for channel: the same products
    and sums, so the same numbers in float32.
    """

    cos: torch.Tensor
    sin: torch.Tensor

    @classmethod
    def of(cls, pos: torch.Tensor, head_dim: int, interleave: bool = False) -> RotaryAngles:
        """The angles of positions ``pos`` ``(N, 3)`` or ``(B, N, 3)`` (frame, row, col) for heads of ``head_dim``."""
        r = 2 * ((head_dim // 3) // 2)
        cos, sin = zip(*(_cos_sin(pos[..., axis], r, interleave, torch.float32) for axis in range(3)))
        rest = head_dim - 3 * r
        ones = pos.new_ones((*pos.shape[:-1], rest), dtype=torch.float32)
        c, s = torch.cat([*cos, ones], dim=-1), torch.cat([*sin, torch.zeros_like(ones)], dim=-1)  # (..., N, hd)
        if pos.dim() == 2:
            return cls(c[None, None], s[None, None])
        return cls(c[:, None], s[:, None])

    def turn(self, x: torch.Tensor, queries_from: int | None = None) -> torch.Tensor:
        """``x`` ``(B, h, N', d)`` turned by the angles of its tokens (the last ``N'`` with ``queries_from``)."""
        cos, sin = self.cos, self.sin
        if queries_from is not None:
            cos, sin = cos[..., queries_from:, :], sin[..., queries_from:, :]
        return _turn(x, cos.to(x.dtype), sin.to(x.dtype))


class RoPEAttention(Attention):
    """Self-attention whose queries and keys are rotated by each token's ``(frame, row, col)``.

    The head's first ``3 * r`` channels, ``r = 2 * (head_dim // 6)``, are three groups rotated by frame,
    row and column; the rest pass unrotated (the official split). Same parameters as ``Attention``.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, interleave: bool = False) -> None:
        super().__init__(dim, num_heads, qkv_bias)
        self.rot = 2 * ((self.head_dim // 3) // 2)
        self.interleave = interleave

    def forward(self, x: torch.Tensor, queries_from: int | None = None, valid: torch.Tensor | None = None,
                pos: torch.Tensor | RotaryAngles | None = None) -> torch.Tensor:
        """As ``Attention.forward``, with ``pos``: each token's (frame, row, col), ``(B, N, 3)`` or ``(N, 3)``,
        or their :class:`RotaryAngles` (which the encoder and predictor compute once for all their blocks)."""
        if pos is None:
            raise ValueError("RoPEAttention needs the tokens' positions (pos)")
        angles = pos if isinstance(pos, RotaryAngles) else RotaryAngles.of(pos, self.head_dim, self.interleave)
        B, N, D = x.shape
        qkv = self.qkv(x).view(B, N, 3, self.num_heads, self.head_dim)  # (B, N, 3, h, hd)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, h, N, hd)
        k = angles.turn(k)
        if queries_from is not None:
            q = q[:, :, queries_from:]
        q = angles.turn(q, queries_from)
        nq = q.size(2)
        keys = None if valid is None else valid[:, None, None, :]  # (B, 1, 1, N)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=keys)  # (B, h, Nq, hd)
        out: torch.Tensor = self.proj(y.transpose(1, 2).reshape(B, nq, D))
        return out


def _angles_of(blocks: Iterable[nn.Module], pos: torch.Tensor) -> RotaryAngles | None:
    """The :class:`RotaryAngles` of ``pos`` for the rotary attention of ``blocks`` (None without blocks)."""
    for blk in blocks:
        attn = getattr(blk, "attn", None)
        if isinstance(attn, RoPEAttention):
            return RotaryAngles.of(pos, attn.head_dim, attn.interleave)
    return None


class VideoBlock(nn.Module):
    """Pre-norm block whose attention is plain (sin-cos models) or rotary (RoPE models).

    Args:
        dim, num_heads, mlp_hidden_dim, qkv_bias: as ``jepa_torch.models.vit.Block``.
        rope: rotary attention.
        interleave: the textbook RoPE pairing (see ``rope_rotate``).
    """

    def __init__(self, dim: int, num_heads: int, mlp_hidden_dim: int, qkv_bias: bool = True, rope: bool = False,
                 interleave: bool = False) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = RoPEAttention(dim, num_heads, qkv_bias, interleave) if rope else Attention(dim, num_heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = Mlp(dim, mlp_hidden_dim)

    def forward(self, x: torch.Tensor, keep_from: int | None = None, valid: torch.Tensor | None = None,
                pos: torch.Tensor | RotaryAngles | None = None) -> torch.Tensor:
        """``(B, N, D) -> (B, N, D)``, or ``(B, N - keep_from, D)`` with ``keep_from`` (as ``Block``)."""
        kwargs: dict[str, Any] = {"valid": valid, "queries_from": keep_from}
        if isinstance(self.attn, RoPEAttention):
            kwargs["pos"] = pos
        y = self.attn(self.norm1(x), **kwargs)
        x = (x if keep_from is None else x[:, keep_from:]) + y
        out: torch.Tensor = x + self.mlp(self.norm2(x))
        return out


class PatchEmbed3D(nn.Module):
    """Clips ``(B, C, T, H, W)`` to tubelet tokens ``(B, N, D)`` through a Conv3d, kernel = stride.

    Args:
        img_size: frame side or ``(height, width)`` the model is built for.
        patch_size: spatial patch side.
        num_frames: frames per clip the model is built for.
        tubelet_size: frames per tubelet.
        in_chans, embed_dim: channels in, token width out.
    """

    def __init__(self, img_size: int | Sequence[int] = 224, patch_size: int = 16, num_frames: int = 16,
                 tubelet_size: int = 2, in_chans: int = 3, embed_dim: int = 768) -> None:
        super().__init__()
        self.img_size = _pair(img_size, "img_size")
        self.patch_size, self.tubelet_size, self.in_chans = patch_size, tubelet_size, in_chans
        self.num_frames, self.embed_dim = num_frames, embed_dim
        if patch_size <= 0 or tubelet_size <= 0 or num_frames % tubelet_size or any(s % patch_size for s in self.img_size):
            raise ValueError(f"a {num_frames}x{self.img_size[0]}x{self.img_size[1]} clip is not whole tubelets of "
                             f"{tubelet_size}x{patch_size}x{patch_size}; choose sizes the tubelet divides")
        self.grid = (num_frames // tubelet_size, self.img_size[0] // patch_size, self.img_size[1] // patch_size)
        kernel = (tubelet_size, patch_size, patch_size)
        self.proj = nn.Conv3d(in_chans, embed_dim, kernel_size=kernel, stride=kernel)

    @property
    def num_patches(self) -> int:
        return math.prod(self.grid)

    def as_clip(self, x: torch.Tensor) -> torch.Tensor:
        """A clip ``(B, C, T, H, W)`` as is; an image ``(B, C, H, W)`` as a still clip of one tubelet."""
        if x.dim() == 4:
            x = x.unsqueeze(2).expand(-1, -1, self.tubelet_size, -1, -1)  # (B, C, t, H, W)
        return x

    def grid_of(self, x: torch.Tensor) -> tuple[int, int, int]:
        """The tubelet grid of a clip (or image); any size the tubelet divides is accepted."""
        t, p = self.tubelet_size, self.patch_size
        if x.dim() == 4:
            x = self.as_clip(x)
        if x.dim() != 5 or x.shape[1] != self.in_chans or x.shape[2] % t or x.shape[3] % p or x.shape[4] % p:
            raise ValueError(
                f"clips have shape {tuple(x.shape)} but the encoder expects (B, {self.in_chans}, T, H, W) (or images "
                f"(B, {self.in_chans}, H, W)) with T a multiple of the tubelet {t} and H, W of the patch {p}; "
                "resample them or build the model with matching num_frames/img_size/in_chans")
        return x.shape[2] // t, x.shape[3] // p, x.shape[4] // p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Tubelets: ``(B, C, T, H, W)`` (or an image) -> ``(B, N, D)`` in ``(t, row, col)`` raster order."""
        self.grid_of(x)
        out: torch.Tensor = self.proj(self.as_clip(x))  # (B, D, T', H', W')
        return out.flatten(2).transpose(1, 2)  # (B, N, D)


def _table(kind: Positions, dim: int, grid: tuple[int, int, int], uniform_power: bool,
           span: tuple[int, int, int] | None = None) -> torch.Tensor:
    """The fixed position table ``(1, N, dim)`` of a sin-cos model on ``grid``."""
    if kind == "sincos2d":
        if grid[0] != 1:
            raise ValueError(f"positions='sincos2d' is the image layout: one tubelet frame, got a grid {grid}")
        emb = sincos_2d(dim, grid[1], grid[2], None if span is None else (span[1], span[2]))
    else:
        emb = sincos_3d(dim, grid, uniform_power, span)
    return emb.unsqueeze(0)


def _check_positions(positions: str) -> None:
    if positions not in POSITIONS:
        raise ValueError(f"positions={positions!r}: must be one of {', '.join(POSITIONS)}")


def _conv2d_to_3d(state_dict: dict[str, Any], key: str) -> None:
    """An official image checkpoint's ``Conv2d`` patch weight ``(D, C, p, p)`` gains a unit time axis."""
    w = state_dict.get(key)
    if isinstance(w, torch.Tensor) and w.dim() == 4:
        state_dict[key] = w.unsqueeze(2)


class VideoTransformer(nn.Module):
    """The V-JEPA encoder (official ``VisionTransformer`` with ``num_frames > 1``), no class token.

    Args:
        img_size: frame side or ``(height, width)``.
        patch_size: spatial patch side.
        num_frames: frames per clip (sets the sin-cos table; RoPE models take any length).
        tubelet_size: frames per tubelet.
        in_chans: channels.
        embed_dim, depth, num_heads, mlp_ratio, qkv_bias: the transformer (``int(D * mlp_ratio)`` hidden).
        init_std: std of the truncated-normal init.
        depth_rescale: the official constructor's residual rescaling after init.
        positions: ``"sincos"``, ``"rope"`` (V-JEPA 2) or ``"sincos2d"`` (an image model, T = 1).
        uniform_power: the official 3-D sin-cos split into equal thirds.
        rope_interleave: the textbook RoPE pairing instead of the official one.
    """

    def __init__(self, img_size: int | Sequence[int] = 224, patch_size: int = 16, num_frames: int = 16,
                 tubelet_size: int = 2, in_chans: int = 3, embed_dim: int = 768, depth: int = 12,
                 num_heads: int = 12, mlp_ratio: float = 4.0, qkv_bias: bool = True, init_std: float = 0.02,
                 depth_rescale: bool = True, positions: Positions = "sincos", uniform_power: bool = False,
                 rope_interleave: bool = False) -> None:
        super().__init__()
        _check_positions(positions)
        self.patch_embed = PatchEmbed3D(img_size, patch_size, num_frames, tubelet_size, in_chans, embed_dim)
        self.grid = self.patch_embed.grid
        self.num_patches = self.patch_embed.num_patches
        self.embed_dim = self.num_features = embed_dim
        self.num_heads, self.positions, self.uniform_power = num_heads, positions, uniform_power
        self.img_size, self.patch_size, self.in_chans = self.patch_embed.img_size, patch_size, in_chans
        self.num_frames, self.tubelet_size, self.mlp_ratio = num_frames, tubelet_size, mlp_ratio
        rope = positions == "rope"
        self.pos_embed: nn.Parameter | None = None
        if not rope:
            self.pos_embed = nn.Parameter(_table(positions, embed_dim, self.grid, uniform_power), requires_grad=False)
        hidden = int(embed_dim * mlp_ratio)
        self.blocks = nn.ModuleList([VideoBlock(embed_dim, num_heads, hidden, qkv_bias, rope, rope_interleave)
                                     for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim, eps=LN_EPS)
        self.recompute = False
        self._other: dict[tuple[Any, ...], torch.Tensor] = {}
        init_weights_(self, init_std)
        if depth_rescale:
            rescale_residual_(self.blocks)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        _conv2d_to_3d(state_dict, prefix + "patch_embed.proj.weight")
        super()._load_from_state_dict(state_dict, prefix, *args)

    def table(self, grid: tuple[int, int, int]) -> torch.Tensor:
        """Sin-cos positions ``(1, N, D)`` of a tubelet grid: ``pos_embed`` at the built grid, else computed."""
        assert self.pos_embed is not None
        if grid == self.grid:
            return self.pos_embed
        key = (grid, self.pos_embed.device, self.pos_embed.dtype)
        if key not in self._other:
            emb = _table(self.positions, self.embed_dim, grid, self.uniform_power, self.grid)
            self._other[key] = emb.to(self.pos_embed.device, self.pos_embed.dtype)
        return self._other[key]

    def _angles(self, pos: torch.Tensor) -> RotaryAngles | None:
        return _angles_of(self.blocks, pos)

    def embed(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
        """Tokens ``(B, N, D)`` with sin-cos positions added (none for RoPE), and the clip's grid."""
        grid = self.patch_embed.grid_of(x)
        tokens = self.patch_embed(x)  # (B, N, D)
        if self.pos_embed is not None:
            tokens = tokens + self.table(grid)
        return tokens, grid

    def forward(self, x: torch.Tensor, masks: MaskArg | None = None,
                valid: torch.Tensor | None = None) -> torch.Tensor:
        """Encode a clip (or image), keeping only the tokens each mask names.

        Args:
            x: ``(B, C, T, H, W)``, or an image ``(B, C, H, W)``.
            masks: None for all tokens, or ``M`` index tensors ``(B, K)`` into the flat tubelet grid.
            valid: with ``masks``, ``(M * B, K)`` booleans, False at padding (as the image encoder).

        Returns:
            ``(B, N, D)``, or ``(M * B, K, D)`` mask-major.
        """
        tokens, grid = self.embed(x)
        n = tokens.size(1)
        if masks is None:
            ids = torch.arange(n, device=tokens.device)  # (N,)
        else:
            ms = as_mask_list(masks)
            tokens = apply_masks(tokens, ms)  # (M*B, K, D)
            ids = torch.cat(ms) if len(ms) > 1 else ms[0]  # (M*B, K)
        if valid is not None and valid.shape != tokens.shape[:2]:
            raise ValueError(f"valid has shape {tuple(valid.shape)} but the masked tokens are {tuple(tokens.shape[:2])}")
        pos = self._angles(token_positions(ids, grid)) if self.positions == "rope" else None
        for blk in self.blocks:
            tokens = run_block(blk, tokens, self.recompute, None, valid, pos)
        out: torch.Tensor = self.norm(tokens)
        return out

    def layer_outputs(self, x: torch.Tensor, last: int = 1) -> list[torch.Tensor]:
        """The tokens after each of the last ``last`` blocks, each through ``norm`` (as the image encoder)."""
        if not 1 <= last <= len(self.blocks):
            raise ValueError(f"layer_outputs: last={last}; this encoder has {len(self.blocks)} blocks")
        tokens, grid = self.embed(x)
        pos = self._angles(token_positions(torch.arange(tokens.size(1), device=tokens.device), grid)) \
            if self.positions == "rope" else None
        outs = []
        for i, blk in enumerate(self.blocks):
            tokens = blk(tokens, None, None, pos)
            if i >= len(self.blocks) - last:
                outs.append(self.norm(tokens))
        return outs


class VideoPredictor(nn.Module):
    """The V-JEPA predictor: context tokens plus a mask token per configuration at the target positions.

    Args:
        grid: the ``(T, H, W)`` tubelet grid the model is built for.
        embed_dim: encoder width ``D``.
        pred_emb_dim: predictor width ``Dp``.
        depth, num_heads, mlp_ratio, qkv_bias: the predictor's transformer.
        num_mask_tokens: learned mask tokens, one per mask configuration (``mask_index`` picks one).
        zero_init_mask_tokens: start them at zero (the official default) instead of trunc-normal.
        init_std, depth_rescale, positions, uniform_power, rope_interleave: as ``VideoTransformer``.
    """

    def __init__(self, grid: Sequence[int] = (8, 14, 14), *, embed_dim: int = 768, pred_emb_dim: int = 384,
                 depth: int = 6, num_heads: int = 12, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 num_mask_tokens: int = 2, zero_init_mask_tokens: bool = True, init_std: float = 0.02,
                 depth_rescale: bool = True, positions: Positions = "sincos", uniform_power: bool = False,
                 rope_interleave: bool = False) -> None:
        super().__init__()
        _check_positions(positions)
        if len(grid) != 3 or any(int(g) <= 0 for g in grid):
            raise ValueError(f"grid={tuple(grid)!r}: must be (T, H, W) tubelets")
        if num_mask_tokens < 1:
            raise ValueError(f"num_mask_tokens={num_mask_tokens}: must be >= 1 (one per mask configuration)")
        self.grid = (int(grid[0]), int(grid[1]), int(grid[2]))
        self.embed_dim, self.pred_emb_dim, self.num_heads = embed_dim, pred_emb_dim, num_heads
        self.positions, self.uniform_power, self.mlp_ratio = positions, uniform_power, mlp_ratio
        rope = positions == "rope"
        self.predictor_embed = nn.Linear(embed_dim, pred_emb_dim)
        self.mask_tokens = nn.ParameterList([nn.Parameter(torch.zeros(1, 1, pred_emb_dim))
                                             for _ in range(num_mask_tokens)])
        self.predictor_pos_embed: nn.Parameter | None = None
        if not rope:
            self.predictor_pos_embed = nn.Parameter(_table(positions, pred_emb_dim, self.grid, uniform_power),
                                                    requires_grad=False)
        hidden = int(pred_emb_dim * mlp_ratio)
        self.predictor_blocks = nn.ModuleList([VideoBlock(pred_emb_dim, num_heads, hidden, qkv_bias, rope,
                                                          rope_interleave) for _ in range(depth)])
        self.predictor_norm = nn.LayerNorm(pred_emb_dim, eps=LN_EPS)
        self.predictor_proj = nn.Linear(pred_emb_dim, embed_dim)
        self.recompute = False
        init_weights_(self, init_std)
        if depth_rescale:
            rescale_residual_(self.predictor_blocks)
        if not zero_init_mask_tokens:
            for token in self.mask_tokens:
                nn.init.trunc_normal_(token, std=init_std)

    @property
    def num_mask_tokens(self) -> int:
        return len(self.mask_tokens)

    def forward(self, x: torch.Tensor, masks_x: MaskArg, masks: MaskArg, mask_index: int = 0,
                valid: torch.Tensor | None = None, target_valid: torch.Tensor | None = None,
                grid: Sequence[int] | None = None) -> torch.Tensor:
        """Predict the target tokens of one mask configuration from its context.

        Args:
            x: context tokens ``(B, Kc, D)`` (the encoder's output for ``masks_x``).
            masks_x: the context mask ``(B, Kc)`` (one, as V-JEPA draws one context per configuration).
            masks: ``Mt`` target masks ``(B, Kt)``; V-JEPA passes one, the union of the blocks.
            mask_index: which mask token (the configuration's index, modulo ``num_mask_tokens``).
            valid: ``(B, Kc)`` booleans, False at context padding (``trim="none"``).
            target_valid: ``(Mt * B, Kt)`` booleans, False at target padding: padded targets give no keys
                to any token, so every real prediction equals the one made without them.
            grid: the clip's tubelet grid when it is not the built one (sizes the RoPE positions and the
                sin-cos table).

        Returns:
            ``(Mt * B, Kt, D)``; row ``t * B + b`` predicts ``masks[t][b]``.
        """
        ctx_masks = as_mask_list(masks_x, "masks_x")
        if len(ctx_masks) != 1:
            raise ValueError(f"masks_x holds {len(ctx_masks)} masks; VideoPredictor takes one context mask per "
                             "call (one per mask configuration)")
        ctx_mask = ctx_masks[0]
        tgt_masks = as_mask_list(masks, "masks")
        mt = len(tgt_masks)
        B, kc = ctx_mask.shape
        kt = tgt_masks[0].shape[1]
        if x.shape[:2] != (B, kc):
            raise ValueError(f"context tokens {tuple(x.shape)} do not match the context mask {tuple(ctx_mask.shape)}")
        g = self.grid if grid is None else (int(grid[0]), int(grid[1]), int(grid[2]))
        tgt_idx = torch.cat(tgt_masks) if mt > 1 else tgt_masks[0]  # (Mt*B, Kt)
        ctx = self.predictor_embed(x)  # (B, Kc, Dp)
        tgt = self.mask_tokens[mask_index % len(self.mask_tokens)].expand(mt * B, kt, -1)  # (Mt*B, Kt, Dp)
        if self.predictor_pos_embed is not None:
            table = self.predictor_pos_embed[0] if g == self.grid else _table(
                self.positions, self.pred_emb_dim, g, self.uniform_power, self.grid)[0].to(ctx)
            ctx = ctx + F.embedding(ctx_mask, table)
            tgt = tgt + F.embedding(tgt_idx, table)
        dp = ctx.size(-1)
        ctx = ctx.unsqueeze(0).expand(mt, B, kc, dp).reshape(mt * B, kc, dp)  # (Mt*B, Kc, Dp)
        z = torch.cat([ctx, tgt], dim=1)  # (Mt*B, Kc+Kt, Dp)
        ids = torch.cat([ctx_mask.repeat(mt, 1), tgt_idx], dim=1)  # (Mt*B, Kc+Kt)
        pos = _angles_of(self.predictor_blocks, token_positions(ids, g)) if self.positions == "rope" else None
        keys = None
        if valid is not None or target_valid is not None:
            cv = x.new_ones(B, kc, dtype=torch.bool) if valid is None else valid
            tv = x.new_ones(mt * B, kt, dtype=torch.bool) if target_valid is None else target_valid
            if cv.shape != (B, kc) or tv.shape != (mt * B, kt):
                raise ValueError(f"valid {tuple(cv.shape)} / target_valid {tuple(tv.shape)} do not match the "
                                 f"masks ({B}, {kc}) / ({mt * B}, {kt})")
            keys = torch.cat([cv.repeat(mt, 1), tv], dim=1)  # (Mt*B, Kc+Kt)
        blocks = list(self.predictor_blocks)
        for blk in blocks[:-1]:
            z = run_block(blk, z, self.recompute, None, keys, pos)
        z = run_block(blocks[-1], z, self.recompute, kc, keys, pos) if blocks else z[:, kc:]  # (Mt*B, Kt, Dp)
        out: torch.Tensor = self.predictor_proj(self.predictor_norm(z))  # (Mt*B, Kt, D)
        return out


def build_video_encoder(preset: str = "large", *, img_size: int | Sequence[int] = 256, patch_size: int = 16,
                        num_frames: int = 16, tubelet_size: int = 2, in_chans: int = 3,
                        positions: Positions = "rope", uniform_power: bool = True, rope_interleave: bool = False,
                        depth_rescale: bool = True) -> VideoTransformer:
    """A video encoder of an official preset; the defaults are V-JEPA 2's (256 px, 16 frames, tubelets
    2x16x16, RoPE). V-JEPA 2 released ``large`` (ViT-L), ``huge`` (ViT-H) and ``giant_xformers`` (ViT-g)."""
    p = get_preset(preset)
    return VideoTransformer(img_size, patch_size, num_frames, tubelet_size, in_chans, p.embed_dim, p.depth,
                            p.num_heads, p.mlp_ratio, depth_rescale=depth_rescale, positions=positions,
                            uniform_power=uniform_power, rope_interleave=rope_interleave)


def build_video_predictor(encoder: VideoTransformer, *, pred_emb_dim: int = 384, depth: int = 12,
                          num_heads: int = 12, num_mask_tokens: int = 2, zero_init_mask_tokens: bool = True,
                          depth_rescale: bool = True) -> VideoPredictor:
    """The V-JEPA 2 predictor of an encoder (defaults: 12 blocks of width 384, 12 heads, two mask tokens for
    its two mask configurations), sharing the encoder's grid and positions."""
    return VideoPredictor(encoder.grid, embed_dim=encoder.embed_dim, pred_emb_dim=pred_emb_dim, depth=depth,
                          num_heads=num_heads, num_mask_tokens=num_mask_tokens,
                          zero_init_mask_tokens=zero_init_mask_tokens, depth_rescale=depth_rescale,
                          positions=encoder.positions, uniform_power=encoder.uniform_power,
                          rope_interleave=bool(getattr(encoder.blocks[0].attn, "interleave", False)))
