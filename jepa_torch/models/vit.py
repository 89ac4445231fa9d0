"""The I-JEPA Vision Transformer encoder: patch embedding, sin-cos positions, pre-norm blocks.

State-dict names and numerics follow the official I-JEPA code (``src/models/vision_transformer.py``)
so that its checkpoints load strictly (see ``jepa_torch.io.checkpoint``): ``patch_embed.proj``,
``pos_embed`` (a non-trainable parameter), ``blocks.N.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1,
mlp.fc2}``, ``norm``; LayerNorm eps 1e-6; exact (erf) GELU; no class token; no dropout or drop-path
(the official defaults are all 0). Presets (tiny .. giant) and builders are in ``jepa_torch.models.jepa``.

Difference from the official module: an image of another size (a multiple of the patch) gets
sin-cos positions computed for its own patch grid, spread over the trained grid's range
(``jepa_torch.models.positions.sincos_2d`` with ``span``): the multi-crop views of LeJEPA use this. The
official ``interpolate_pos_encoding`` resamples the stored table instead, and treats its first
position as a class token that this model does not have; at the trained size both are the identity.

Masks follow the official convention: a list of ``M`` index tensors ``(B, K)`` of kept tokens, and a
masked forward returns the kept tokens of every mask concatenated along the batch, mask-major:
``(M * B, K, D)``, row ``m * B + b`` holding mask ``m`` of sample ``b``.

Initialisation (``init_weights_`` then ``rescale_residual_``) is what the official module constructors
do: truncated normal (std 0.02, cut at +-2 absolute) for every Linear and Conv2d weight, zero biases,
LayerNorm weight 1 / bias 0, then ``blocks[i].attn.proj.weight`` and ``blocks[i].mlp.fc2.weight`` divided
by ``sqrt(2 * (i + 1))``. **The official training script does not keep that rescaling**:
``src/helper.py:init_model`` builds the encoder and predictor (whose constructors run
``apply(_init_weights)`` and then ``fix_init_weight()``) and afterwards re-draws every ``nn.Linear``
weight (truncated normal 0.02, zero bias) and resets every ``nn.LayerNorm`` in both modules. Since
``attn.proj`` and ``mlp.fc2`` are Linear layers, the depth rescaling is overwritten everywhere; only
the Conv2d patch embedding and the predictor's ``mask_token`` keep their constructor draws (both
plain truncated normal 0.02). Officially trained models therefore start *without* depth rescaling.
Our constructors take ``depth_rescale`` (default True, as the official modules); the builders in
``jepa_torch.models.jepa`` default to False, as the official training does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from jepa_torch.models.positions import sincos_pos_embed

__all__ = [
    "Attention",
    "Block",
    "FrontEnd",
    "Mlp",
    "PatchEmbed",
    "TransformerEncoder",
    "VisionTransformer",
    "apply_masks",
    "as_mask_list",
    "context_valid",
    "init_weights_",
    "repeat_interleave_batch",
    "rescale_residual_",
    "run_block",
]

LN_EPS = 1e-6

MaskArg = torch.Tensor | Sequence[torch.Tensor]


def _pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    """``7 -> (7, 7)``; ``(7, 5) -> (7, 5)``; rejects anything else with a message naming ``name``."""
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or any(not isinstance(v, int) or v <= 0 for v in pair):
        raise ValueError(f"{name} must be a positive int or a pair of them, got {value!r}")
    return pair[0], pair[1]


def as_mask_list(masks: MaskArg, name: str = "masks") -> list[torch.Tensor]:
    """Normalise a mask argument to a non-empty list of equally shaped ``(B, K)`` index tensors.

    Args:
        masks: one index tensor ``(B, K)`` or a sequence of them.
        name: the argument's name, for error messages.

    Returns:
        The masks as a list.

    Raises:
        ValueError: for an empty list, a tensor that is not 2-D integer, or unequal shapes.
    """
    lst = [masks] if isinstance(masks, torch.Tensor) else list(masks)
    if not lst:
        raise ValueError(f"{name} is empty; pass at least one (B, K) index tensor")
    for i, m in enumerate(lst):
        if m.dim() != 2 or m.dtype not in (torch.int64, torch.int32):
            raise ValueError(
                f"{name}[{i}] must be an integer index tensor (B, K), got {m.dtype} {tuple(m.shape)}"
            )
        if m.shape != lst[0].shape:
            raise ValueError(
                f"{name}[{i}] has shape {tuple(m.shape)} but {name}[0] has {tuple(lst[0].shape)}; "
                "all masks of one list must keep the same number of tokens"
            )
    return lst


def apply_masks(x: torch.Tensor, masks: MaskArg) -> torch.Tensor:
    """Keep the tokens named by each mask; concatenate the results along the batch, mask-major.

    Same result as the official ``apply_masks``, with one index-select and no repeated index.

    Args:
        x: tokens ``(B, N, D)``.
        masks: ``M`` index tensors ``(B, K)`` with values in ``[0, N)``.

    Returns:
        ``(M * B, K, D)``; row ``m * B + b`` holds ``x[b, masks[m][b]]``.
    """
    ms = as_mask_list(masks)
    B, N, D = x.shape
    if ms[0].size(0) != B:
        raise ValueError(f"masks have batch size {ms[0].size(0)} but the tokens have {B}")
    M, K = len(ms), ms[0].size(1)
    idx = (torch.cat(ms) if M > 1 else ms[0]).long()  # (M*B, K)
    offsets = torch.arange(B, device=idx.device) * N  # (B,)
    flat = (idx.view(M, B, K) + offsets.view(1, B, 1)).reshape(-1)  # (M*B*K,)
    out = x.reshape(B * N, D).index_select(0, flat)  # (M*B*K, D)
    return out.view(M * B, K, D)  # (M*B, K, D)


def context_valid(lengths: Sequence[torch.Tensor], size: int) -> torch.Tensor:
    """Which entries of padded masks are real: ``(M * B, K)`` booleans, mask-major like ``apply_masks``.

    Args:
        lengths: one ``(B,)`` integer tensor per mask: the real entries of each row (>= 1).
        size: the padded length ``K``.

    Returns:
        ``valid[m * B + b, k] = k < lengths[m][b]``.
    """
    n = torch.cat(list(lengths)) if len(lengths) > 1 else lengths[0]  # (M*B,)
    return torch.arange(size, device=n.device) < n[:, None]  # (M*B, K)


def repeat_interleave_batch(x: torch.Tensor, batch: int, repeat: int) -> torch.Tensor:
    """Repeat each consecutive chunk of ``batch`` rows ``repeat`` times (the official helper).

    Args:
        x: ``(C * batch, ...)``: ``C`` chunks of ``batch`` rows.
        batch: chunk length ``B``.
        repeat: copies of each chunk.

    Returns:
        ``(C * repeat * batch, ...)``: chunk 0 ``repeat`` times, then chunk 1, ...
    """
    chunks = x.size(0) // batch
    rest = x.shape[1:]
    y = x.view(chunks, 1, batch, *rest).expand(chunks, repeat, batch, *rest)  # (C, R, B, ...)
    return y.reshape(chunks * repeat * batch, *rest)  # (C*R*B, ...)


class Attention(nn.Module):
    """Multi-head self-attention with a fused qkv projection, through SDPA.

    Args:
        dim: token width; must be divisible by ``num_heads``.
        num_heads: number of heads; the scale is ``head_dim ** -0.5`` (the official default).
        qkv_bias: whether ``qkv`` has a bias (True in every official preset).
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        if num_heads <= 0 or dim % num_heads != 0:
            raise ValueError(f"width {dim} is not divisible by num_heads={num_heads}; choose heads dividing it")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, queries_from: int | None = None,
                valid: torch.Tensor | None = None) -> torch.Tensor:
        """Attend over the tokens: ``(B, N, D) -> (B, N, D)``.

        Args:
            x: tokens ``(B, N, D)``.
            queries_from: if given, only tokens ``queries_from:`` ask queries (all ``N`` still give
                keys and values) and the result is ``(B, N - queries_from, D)``: the same rows as
                ``forward(x)[:, queries_from:]``, without computing the others.
            valid: ``(B, N)`` booleans, False at padding: padded tokens give no keys or values, so
                every other row equals its row computed without the padding. Each row *must* keep
                at least one valid token. Padded rows still get (meaningless) outputs.
        """
        B, N, D = x.shape
        if queries_from is None:
            qkv = self.qkv(x).view(B, N, 3, self.num_heads, self.head_dim)  # (B, N, 3, h, hd)
            q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, h, N, hd)
            nq = N
        else:
            w, b = self.qkv.weight, self.qkv.bias  # (3D, D), (3D,): rows q | k | v
            nq = N - queries_from
            q = F.linear(x[:, queries_from:], w[:D], None if b is None else b[:D])  # (B, Nq, D)
            q = q.view(B, nq, self.num_heads, self.head_dim).transpose(1, 2)  # (B, h, Nq, hd)
            kv = F.linear(x, w[D:], None if b is None else b[D:])  # (B, N, 2D)
            kv = kv.view(B, N, 2, self.num_heads, self.head_dim)  # (B, N, 2, h, hd)
            k, v = kv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, h, N, hd)
        keys = None if valid is None else valid[:, None, None, :]  # (B, 1, 1, N): which keys take part
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=keys)  # (B, h, Nq, hd)
        y = y.transpose(1, 2).reshape(B, nq, D)  # (B, Nq, D)
        out: torch.Tensor = self.proj(y)
        return out


class Mlp(nn.Module):
    """Two-layer perceptron with exact GELU: ``fc2(gelu(fc1(x)))``.

    Args:
        dim: input and output width.
        hidden_dim: hidden width.
    """

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, N, D) -> (B, N, D)``."""
        out: torch.Tensor = self.fc2(F.gelu(self.fc1(x)))
        return out


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``.

    Args:
        dim: token width.
        num_heads: attention heads.
        mlp_hidden_dim: MLP hidden width (officially ``int(dim * mlp_ratio)``).
        qkv_bias: bias on the fused qkv projection.
    """

    def __init__(self, dim: int, num_heads: int, mlp_hidden_dim: int, qkv_bias: bool = True) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = Attention(dim, num_heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = Mlp(dim, mlp_hidden_dim)

    def forward(self, x: torch.Tensor, keep_from: int | None = None,
                valid: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, N, D) -> (B, N, D)``, or ``(B, N - keep_from, D)`` with ``keep_from``.

        ``keep_from`` returns only tokens ``keep_from:``, equal to ``forward(x)[:, keep_from:]``:
        every token still gives keys and values, but queries, the attention projection and the
        MLP run on the kept tokens only (a last block whose other outputs are discarded).
        ``valid`` ``(B, N)`` marks padding (False) that no other token attends to (see ``Attention``).
        """
        if keep_from is None:
            x = x + self.attn(self.norm1(x), valid=valid)
        else:
            x = x[:, keep_from:] + self.attn(self.norm1(x), queries_from=keep_from, valid=valid)  # (B, N-keep_from, D)
        out: torch.Tensor = x + self.mlp(self.norm2(x))
        return out


def run_block(block: nn.Module, x: torch.Tensor, recompute: bool, keep_from: int | None = None,
              valid: torch.Tensor | None = None, *extra: object) -> torch.Tensor:
    """``block(x, keep_from, valid, *extra)``; with ``recompute`` (and autograd recording) under activation
    checkpointing. ``extra``: further block arguments (the video blocks' rotary angles).

    Checkpointing keeps only the block's input for the backward and runs the block again there: the
    same values and gradients, less memory, about one more forward of the block in time.
    """
    if recompute and torch.is_grad_enabled():
        out: torch.Tensor = checkpoint(block, x, keep_from, valid, *extra, use_reentrant=False)
        return out
    result: torch.Tensor = block(x, keep_from, valid, *extra)
    return result


def init_weights_(module: nn.Module, std: float = 0.02) -> None:
    """Official per-layer init, in place: trunc-normal Linear/Conv2d/Conv3d weights, zero biases, unit LayerNorms.

    The truncation is at +-2 absolute (the official ``trunc_normal_`` default), i.e. none in practice.
    """
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.Conv3d)):
            nn.init.trunc_normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def rescale_residual_(blocks: nn.ModuleList) -> None:
    """Divide block ``i``'s ``attn.proj`` and ``mlp.fc2`` weights by ``sqrt(2 * (i + 1))``, in place."""
    with torch.no_grad():
        for i, blk in enumerate(blocks):  # image Blocks and video VideoBlocks share these names
            proj, fc2 = blk.get_submodule("attn.proj"), blk.get_submodule("mlp.fc2")
            assert isinstance(proj, nn.Linear) and isinstance(fc2, nn.Linear), type(blk)
            proj.weight.div_(math.sqrt(2.0 * (i + 1)))
            fc2.weight.div_(math.sqrt(2.0 * (i + 1)))


def _hidden(dim: int, mlp_ratio: float, mlp_hidden_dim: int | None) -> int:
    return int(dim * mlp_ratio) if mlp_hidden_dim is None else mlp_hidden_dim


class FrontEnd(nn.Module):
    """Turns raw inputs into tokens ``(B, N, D)`` laid out on ``grid`` (``prod(grid) == N``).

    Subclasses set ``grid`` (``(length,)`` or ``(rows, cols)``) and ``embed_dim``, and hold their
    projection as ``self.proj`` (so the state-dict name is ``patch_embed.proj``).
    """

    grid: tuple[int, ...]
    embed_dim: int

    @property
    def num_patches(self) -> int:
        """Number of tokens ``N``."""
        return math.prod(self.grid)

    def grid_of(self, x: torch.Tensor) -> tuple[int, ...]:
        """The token grid of input ``x``: ``self.grid`` unless the front end takes other sizes."""
        return self.grid


class PatchEmbed(FrontEnd):
    """Image to patch tokens through a Conv2d with kernel = stride = patch.

    Args:
        img_size: image side, or ``(height, width)``.
        patch_size: patch side, or ``(height, width)``; remainder pixels are dropped, as Conv2d does.
        in_chans: image channels.
        embed_dim: token width.
    """

    def __init__(
        self,
        img_size: int | Sequence[int] = 224,
        patch_size: int | Sequence[int] = 16,
        in_chans: int = 3,
        embed_dim: int = 768,
    ) -> None:
        super().__init__()
        self.img_size = _pair(img_size, "img_size")
        self.patch_size = _pair(patch_size, "patch_size")
        self.in_chans = in_chans
        self.embed_dim = embed_dim
        rows, cols = (s // p for s, p in zip(self.img_size, self.patch_size))
        if rows == 0 or cols == 0:
            raise ValueError(f"patch_size {self.patch_size} is larger than img_size {self.img_size}")
        self.grid = (rows, cols)
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=self.patch_size, stride=self.patch_size)

    def grid_of(self, x: torch.Tensor) -> tuple[int, ...]:
        """The patch grid of images ``x``; any size that is a multiple of the patch is accepted."""
        ph, pw = self.patch_size
        if x.dim() != 4 or x.shape[1] != self.in_chans or x.shape[2] % ph or x.shape[3] % pw:
            raise ValueError(
                f"images have shape {tuple(x.shape)} but the encoder expects (B, {self.in_chans}, H, W) with H, W "
                f"multiples of the patch {self.patch_size} (built for {self.img_size[0]}x{self.img_size[1]}); "
                "resize them or build it with matching img_size/in_chans"
            )
        return x.shape[2] // ph, x.shape[3] // pw

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Patchify: images ``(B, C, H, W)`` -> tokens ``(B, N, D)`` in raster order."""
        self.grid_of(x)
        out: torch.Tensor = self.proj(x)  # (B, D, h, w)
        return out.flatten(2).transpose(1, 2)  # (B, N, D)


class TransformerEncoder(nn.Module):
    """Front end + fixed sin-cos positions + pre-norm blocks + final LayerNorm.

    Shared by the image encoder (``VisionTransformer``) and the sequence encoder
    (``jepa_torch.models.tokens.SequenceTransformer``).

    Args:
        patch_embed: the front end; its ``grid`` sets the position embedding (1-D or 2-D).
        depth: number of blocks.
        num_heads: attention heads.
        mlp_ratio: MLP hidden width over ``D`` when ``mlp_hidden_dim`` is None.
        mlp_hidden_dim: explicit MLP hidden width (checkpoints give it exactly).
        qkv_bias: bias on the fused qkv projections.
        init_std: std of the truncated-normal init.
        depth_rescale: apply the residual rescaling after init (the official constructor does; see
            the module docstring for why official training ends up without it).
    """

    def __init__(
        self,
        patch_embed: FrontEnd,
        *,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        mlp_hidden_dim: int | None = None,
        qkv_bias: bool = True,
        init_std: float = 0.02,
        depth_rescale: bool = True,
    ) -> None:
        super().__init__()
        dim = patch_embed.embed_dim
        self.patch_embed = patch_embed
        self.embed_dim = self.num_features = dim
        self.num_heads = num_heads
        self.grid = patch_embed.grid
        self.num_patches = patch_embed.num_patches
        self.pos_embed = nn.Parameter(sincos_pos_embed(dim, self.grid), requires_grad=False)  # (1, N, D)
        self._other_positions: dict[tuple[tuple[int, ...], torch.device, torch.dtype], torch.Tensor] = {}
        hidden = _hidden(dim, mlp_ratio, mlp_hidden_dim)
        self.blocks = nn.ModuleList([Block(dim, num_heads, hidden, qkv_bias) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=LN_EPS)
        self.recompute = False  # activation checkpointing per block (``run.activation_checkpointing``)
        init_weights_(self, init_std)
        if depth_rescale:
            rescale_residual_(self.blocks)

    def positions(self, grid: tuple[int, ...]) -> torch.Tensor:
        """Position embedding ``(1, N, D)`` of a token grid: ``pos_embed`` for the built grid; for another
        2-D grid, sin-cos positions spread over the built grid's range (cached per grid and device)."""
        if grid == self.grid:
            return self.pos_embed
        key = (grid, self.pos_embed.device, self.pos_embed.dtype)
        if key not in self._other_positions:
            emb = sincos_pos_embed(self.embed_dim, grid, span=self.grid)
            self._other_positions[key] = emb.to(self.pos_embed.device, self.pos_embed.dtype)
        return self._other_positions[key]

    def forward(self, x: torch.Tensor, masks: MaskArg | None = None,
                valid: torch.Tensor | None = None) -> torch.Tensor:
        """Encode, keeping only the tokens each mask names (positions are added before masking).

        Args:
            x: raw inputs for the front end (images ``(B, C, H, W)``, any multiple of the patch; sequences
                ``(B, T, F)``).
            masks: None for all ``N`` tokens, or ``M`` index tensors ``(B, K)``.
            valid: with ``masks``, ``(M * B, K)`` booleans, False where a row is padding
                (``context_valid``): padding takes no part in attention, so each row's valid tokens
                equal those of the row encoded alone, unpadded. Padded outputs are meaningless.

        Returns:
            ``(B, N, D)`` without masks, else ``(M * B, K, D)`` mask-major.
        """
        x = self.patch_embed(x) + self.positions(self.patch_embed.grid_of(x))  # (B, N, D)
        if masks is not None:
            x = apply_masks(x, masks)  # (M*B, K, D)
        if valid is not None and valid.shape != x.shape[:2]:
            raise ValueError(f"valid has shape {tuple(valid.shape)} but the masked tokens are {tuple(x.shape[:2])}")
        for blk in self.blocks:
            x = run_block(blk, x, self.recompute, valid=valid)
        out: torch.Tensor = self.norm(x)
        return out

    def layer_outputs(self, x: torch.Tensor, last: int = 1) -> list[torch.Tensor]:
        """The tokens after each of the last ``last`` blocks, each through the final ``norm``.

        The evaluation's multi-layer probes read these; the last entry equals ``forward(x)``.

        Args:
            x: raw inputs for the front end, as in ``forward``.
            last: how many blocks, counted from the end (1 .. depth).

        Returns:
            ``last`` tensors ``(B, N, D)``, the deepest last.
        """
        if not 1 <= last <= len(self.blocks):
            raise ValueError(f"layer_outputs: last={last}; this encoder has {len(self.blocks)} blocks")
        x = self.patch_embed(x) + self.positions(self.patch_embed.grid_of(x))  # (B, N, D)
        outs = []
        for i, blk in enumerate(self.blocks):
            x = blk(x)
            if i >= len(self.blocks) - last:
                outs.append(self.norm(x))
        return outs


class VisionTransformer(TransformerEncoder):
    """The I-JEPA image encoder (official ``VisionTransformer``), no class token.

    Args:
        img_size: image side or ``(height, width)``.
        patch_size: patch side or ``(height, width)``.
        in_chans: image channels.
        embed_dim: token width ``D`` (a multiple of 4 for the 2-D positions).
        depth, num_heads, mlp_ratio, mlp_hidden_dim, qkv_bias, init_std, depth_rescale: as in
            ``TransformerEncoder``.
    """

    def __init__(
        self,
        img_size: int | Sequence[int] = 224,
        patch_size: int | Sequence[int] = 16,
        in_chans: int = 3,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        mlp_hidden_dim: int | None = None,
        qkv_bias: bool = True,
        init_std: float = 0.02,
        depth_rescale: bool = True,
    ) -> None:
        front = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        super().__init__(
            front,
            depth=depth,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
            mlp_hidden_dim=mlp_hidden_dim,
            qkv_bias=qkv_bias,
            init_std=init_std,
            depth_rescale=depth_rescale,
        )
        self.img_size = front.img_size
        self.patch_size = front.patch_size
        self.in_chans = in_chans
