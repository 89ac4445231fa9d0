"""An independent, purely functional statement of the official I-JEPA forward passes.

Written from the semantics of facebookresearch/ijepa (``src/models/vision_transformer.py``,
``src/masks/utils.py``, ``src/utils/tensors.py``), not from our modules: it reads weights straight
from a state dict and uses plain torch ops, deliberately in the official style (explicit
``softmax(q k^T * scale) v`` attention, index tensors repeated over the feature axis for the gather,
``x.repeat`` and the chunk-by-chunk batch interleave, normalising all predictor tokens before
dropping the context ones). Our modules must agree with it within 1e-5 in float32.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

EPS = 1e-6
StateDict = Mapping[str, torch.Tensor]


def gather_masks(x: torch.Tensor, masks: Sequence[torch.Tensor]) -> torch.Tensor:
    """Official ``apply_masks``: per mask, gather with the index repeated over features; cat on batch."""
    out = []
    for m in masks:
        index = m.unsqueeze(-1).repeat(1, 1, x.size(-1))  # (B, K, D)
        out.append(torch.gather(x, 1, index))  # (B, K, D)
    return torch.cat(out, 0)  # (M*B, K, D)


def interleave_chunks(x: torch.Tensor, batch: int, repeat: int) -> torch.Tensor:
    """Official ``repeat_interleave_batch``: each chunk of ``batch`` rows, ``repeat`` times in a row."""
    chunks = len(x) // batch
    parts = []
    for i in range(chunks):
        for _ in range(repeat):
            parts.append(x[i * batch : (i + 1) * batch])
    return torch.cat(parts, 0)


def _layer_norm(x: torch.Tensor, sd: StateDict, name: str) -> torch.Tensor:
    return F.layer_norm(x, (x.size(-1),), sd[f"{name}.weight"], sd[f"{name}.bias"], EPS)


def _linear(x: torch.Tensor, sd: StateDict, name: str) -> torch.Tensor:
    return x @ sd[f"{name}.weight"].t() + sd[f"{name}.bias"]


def block(x: torch.Tensor, sd: StateDict, prefix: str, num_heads: int) -> torch.Tensor:
    """One official pre-norm block with explicit softmax attention."""
    B, N, C = x.shape
    h = _layer_norm(x, sd, f"{prefix}.norm1")
    qkv = _linear(h, sd, f"{prefix}.attn.qkv")  # (B, N, 3C)
    qkv = qkv.reshape(B, N, 3, num_heads, C // num_heads).permute(2, 0, 3, 1, 4)  # (3, B, h, N, hd)
    q, k, v = qkv[0], qkv[1], qkv[2]
    scale = (C // num_heads) ** -0.5
    attn = ((q @ k.transpose(-2, -1)) * scale).softmax(dim=-1)  # (B, h, N, N)
    y = (attn @ v).transpose(1, 2).reshape(B, N, C)  # (B, N, C)
    x = x + _linear(y, sd, f"{prefix}.attn.proj")
    h = _layer_norm(x, sd, f"{prefix}.norm2")
    h = _linear(F.gelu(_linear(h, sd, f"{prefix}.mlp.fc1")), sd, f"{prefix}.mlp.fc2")
    return x + h


def _depth(sd: StateDict, prefix: str) -> int:
    return len({k.split(".")[1] for k in sd if k.startswith(prefix + ".")})


def encoder_forward(
    sd: StateDict, images: torch.Tensor, masks: Sequence[torch.Tensor] | None, num_heads: int
) -> torch.Tensor:
    """Official ``VisionTransformer.forward`` from a state dict: ``(B,C,H,W) -> (M*B, K, D)``."""
    w = sd["patch_embed.proj.weight"]
    x = F.conv2d(images, w, sd["patch_embed.proj.bias"], stride=tuple(w.shape[2:]))  # (B, D, h, w)
    x = x.flatten(2).transpose(1, 2)  # (B, N, D)
    x = x + sd["pos_embed"]
    if masks is not None:
        x = gather_masks(x, masks)
    for i in range(_depth(sd, "blocks")):
        x = block(x, sd, f"blocks.{i}", num_heads)
    return _layer_norm(x, sd, "norm")


def sequence_encoder_forward(
    sd: StateDict, seqs: torch.Tensor, masks: Sequence[torch.Tensor] | None, num_heads: int
) -> torch.Tensor:
    """The same encoder with a linear token projection instead of the conv: ``(B,T,F) -> (M*B, K, D)``."""
    x = _linear(seqs, sd, "patch_embed.proj") + sd["pos_embed"]  # (B, T, D)
    if masks is not None:
        x = gather_masks(x, masks)
    for i in range(_depth(sd, "blocks")):
        x = block(x, sd, f"blocks.{i}", num_heads)
    return _layer_norm(x, sd, "norm")


def predictor_forward(
    sd: StateDict,
    x: torch.Tensor,
    masks_x: Sequence[torch.Tensor],
    masks: Sequence[torch.Tensor],
    num_heads: int,
) -> torch.Tensor:
    """Official ``VisionTransformerPredictor.forward`` from a state dict."""
    batch = len(x) // len(masks_x)
    x = _linear(x, sd, "predictor_embed")  # (Mx*B, Kc, Dp)
    pos_all = sd["predictor_pos_embed"].repeat(batch, 1, 1)  # (B, N, Dp)
    x = x + gather_masks(pos_all, masks_x)
    n_ctxt = x.shape[1]
    pos = gather_masks(pos_all, masks)  # (Mt*B, Kt, Dp)
    pos = interleave_chunks(pos, batch, len(masks_x))  # (Mt*Mx*B, Kt, Dp)
    tokens = sd["mask_token"].repeat(pos.size(0), pos.size(1), 1) + pos
    x = x.repeat(len(masks), 1, 1)  # (Mt*Mx*B, Kc, Dp)
    x = torch.cat([x, tokens], 1)
    for i in range(_depth(sd, "predictor_blocks")):
        x = block(x, sd, f"predictor_blocks.{i}", num_heads)
    x = _layer_norm(x, sd, "predictor_norm")
    return _linear(x[:, n_ctxt:], sd, "predictor_proj")


def randomize_(module: torch.nn.Module, seed: int, scale: float = 0.1) -> None:
    """Perturb every parameter (fixed ones included) so that comparisons exercise all of them."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen))


def random_masks(batch: int, n: int, k: int, count: int, seed: int) -> list[torch.Tensor]:
    """``count`` masks ``(batch, k)`` of distinct random indices in ``[0, n)``."""
    gen = torch.Generator().manual_seed(seed)
    return [
        torch.stack([torch.randperm(n, generator=gen)[:k] for _ in range(batch)]) for _ in range(count)
    ]
