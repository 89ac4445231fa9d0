"""Video models to and from the official V-JEPA 2 checkpoint layout and Hugging Face's ``VJEPA2Model``.

- **Official layout.** The official trainer saves ``torch.save({"encoder", "predictor", "target_encoder",
  "opt", "scaler", "epoch", "loss", "batch_size", "world_size", "lr"})``, each network's state dict
  under ``module.backbone.`` (``DistributedDataParallel`` around its multi-sequence wrapper).
  :func:`read_official_video` takes such a file (or dict), with or without those prefixes, and
  rebuilds our modules from the tensors' shapes; :func:`official_video_state` writes the layout back.
- **Hugging Face** (``transformers.VJEPA2Model``, RoPE models only) splits the fused ``qkv`` into
  ``query``, ``key``, ``value`` and renames the rest; its ``last_hidden_state`` is our encoder's output,
  and its predictor reads the *whole-clip* encoder output at the context positions, with mask token 1
  (``mask_index=1``) unless told otherwise. :func:`to_hf_vjepa2` and :func:`from_hf_vjepa2` carry
  weights exactly both ways.

transformers is optional (``pip install 'jepa-reference[interop]'``); it is imported when called.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from jepa_core.presets import HEADS_BY_WIDTH
from jepa_torch.io.checkpoint import CheckpointError, load_strict, strip_prefixes
from jepa_torch.io.files import atomic_write
from jepa_torch.io.interop import _optional
from jepa_torch.models.positions import sincos_3d
from jepa_torch.models.video import Positions, RoPEAttention, VideoPredictor, VideoTransformer

__all__ = ["from_hf_vjepa2", "hf_vjepa2_state_dict", "official_video_state", "read_official_video",
           "save_official_video", "to_hf_vjepa2"]

OFFICIAL_PREFIX = "module.backbone."
_PREFIXES = ("module.", "backbone.", "_orig_mod.")
V_JEPA2_PREDICTOR_HEADS = 12


def _strip(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Keys without leading ``module.`` / ``backbone.`` / ``_orig_mod.`` (in any nesting)."""
    return strip_prefixes(state, _PREFIXES)


def _depth(state: Mapping[str, Tensor], prefix: str) -> int:
    ids = {int(m.group(1)) for k in state if (m := re.match(rf"{prefix}\.(\d+)\.", k))}
    return max(ids) + 1 if ids else 0


def _need(state: Mapping[str, Tensor], key: str, what: str) -> Tensor:
    if key not in state:
        raise CheckpointError(f"{what}: missing key {key!r}; is this a V-JEPA {what} state dict?")
    return state[key]


def video_encoder_from_state(state: Mapping[str, Tensor], *, num_heads: int | None = None, num_frames: int = 16,
                             img_size: int = 256) -> VideoTransformer:
    """Our encoder for an official V-JEPA encoder state dict (prefixes stripped), loaded strictly.

    Width, depth, tubelet and patch come from the tensors; heads from ``num_heads`` or the official
    preset of that width; RoPE when there is no ``pos_embed``. A sin-cos table's grid and split
    (``uniform_power``) are recognised from the stored table given ``num_frames`` (its length fixes the
    frame side, which must be square as the official tables are).
    """
    sd = _strip(state)
    w = _need(sd, "patch_embed.proj.weight", "encoder")
    if w.dim() != 5:
        raise CheckpointError(f"encoder: patch_embed.proj.weight has shape {tuple(w.shape)}; a video encoder's is "
                              "(D, C, tubelet, patch, patch)")
    dim, chans, tubelet, patch = int(w.shape[0]), int(w.shape[1]), int(w.shape[2]), int(w.shape[3])
    heads = num_heads if num_heads is not None else HEADS_BY_WIDTH.get(dim)
    if heads is None:
        raise CheckpointError(f"encoder: no official preset has width {dim}; pass num_heads")
    hidden = int(_need(sd, "blocks.0.mlp.fc1.weight", "encoder").shape[0])
    positions: Positions = "rope" if "pos_embed" not in sd else "sincos"
    uniform, size = False, img_size
    if positions == "sincos":
        n = int(sd["pos_embed"].shape[1])
        t = num_frames // tubelet
        side = int(round((n / t) ** 0.5))
        if t * side * side != n:
            raise CheckpointError(f"encoder: pos_embed holds {n} positions, not {t} frames of a square grid; "
                                  "pass the num_frames it was trained with")
        size = side * patch
        uniform = not torch.allclose(sd["pos_embed"][0], sincos_3d(dim, (t, side, side)), atol=1e-5)
    encoder = VideoTransformer(size, patch, num_frames, tubelet, chans, dim, _depth(sd, "blocks"), heads,
                               hidden / dim, positions=positions, uniform_power=uniform)
    load_strict(encoder, sd, "V-JEPA encoder")
    return encoder.eval()


def video_predictor_from_state(state: Mapping[str, Tensor], encoder: VideoTransformer, *,
                               num_heads: int = V_JEPA2_PREDICTOR_HEADS) -> VideoPredictor:
    """Our predictor for an official V-JEPA predictor state dict (prefixes stripped), loaded strictly."""
    sd = _strip(state)
    embed = _need(sd, "predictor_embed.weight", "predictor")
    pred_dim = int(embed.shape[0])
    tokens = sum(1 for k in sd if re.fullmatch(r"mask_tokens\.\d+", k))
    hidden = int(_need(sd, "predictor_blocks.0.mlp.fc1.weight", "predictor").shape[0])
    predictor = VideoPredictor(encoder.grid, embed_dim=encoder.embed_dim, pred_emb_dim=pred_dim,
                               depth=_depth(sd, "predictor_blocks"), num_heads=num_heads,
                               mlp_ratio=hidden / pred_dim, num_mask_tokens=max(tokens, 1),
                               positions=encoder.positions, uniform_power=encoder.uniform_power)
    load_strict(predictor, sd, "V-JEPA predictor")
    return predictor.eval()


def read_official_video(source: str | Path | Mapping[str, Any], *, which: str = "target_encoder",
                        num_heads: int | None = None, num_frames: int = 16, img_size: int = 256,
                        predictor_heads: int = V_JEPA2_PREDICTOR_HEADS) -> tuple[VideoTransformer, VideoPredictor | None]:
    """An official V-JEPA (2) checkpoint as our encoder (``which``: ``target_encoder`` or ``encoder``) and
    predictor (None when the file has none).

    A RoPE model's weights do not say its clip size: ``num_frames`` and ``img_size`` (V-JEPA 2's 16 and
    256 by default) set the grid its predictor places tokens on; a sin-cos model's table says it.

    Raises:
        CheckpointError: one line naming what is missing or mis-shaped.
    """
    ckpt = source if isinstance(source, Mapping) else torch.load(source, map_location="cpu", weights_only=True)
    if which not in ckpt:
        raise CheckpointError(f"{source if not isinstance(source, Mapping) else 'checkpoint'}: no {which!r} entry "
                              f"(it has {sorted(ckpt)}); is it an official V-JEPA checkpoint?")
    encoder = video_encoder_from_state(ckpt[which], num_heads=num_heads, num_frames=num_frames, img_size=img_size)
    predictor = None
    if "predictor" in ckpt:
        predictor = video_predictor_from_state(ckpt["predictor"], encoder, num_heads=predictor_heads)
    return encoder, predictor


def official_video_state(encoder: VideoTransformer, predictor: VideoPredictor,
                         target_encoder: VideoTransformer | None = None, *, epoch: int = 0,
                         opt: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The dict the official V-JEPA 2 trainer saves, networks under ``module.backbone.``."""
    def prefixed(module: torch.nn.Module) -> dict[str, Tensor]:
        return {OFFICIAL_PREFIX + k: v.detach().cpu() for k, v in module.state_dict().items()}

    return {"encoder": prefixed(encoder), "predictor": prefixed(predictor),
            "target_encoder": prefixed(target_encoder if target_encoder is not None else encoder),
            "opt": dict(opt) if opt is not None else None, "scaler": None, "epoch": epoch, "loss": 0.0,
            "batch_size": 0, "world_size": 1, "lr": 0.0}


def save_official_video(path: str | Path, encoder: VideoTransformer, predictor: VideoPredictor,
                        target_encoder: VideoTransformer | None = None, *, epoch: int = 0) -> None:
    """Write :func:`official_video_state` to ``path`` atomically (no optimiser state: the official
    trainer would restart its optimiser from it)."""
    state = official_video_state(encoder, predictor, target_encoder, epoch=epoch)
    atomic_write(path, lambda f: torch.save(state, f))


# --- Hugging Face --------------------------------------------------------------------

_HF_ENC = {"patch_embed.proj": "encoder.embeddings.patch_embeddings.proj", "norm": "encoder.layernorm"}
_HF_PRED = {"predictor_embed": "predictor.embeddings.predictor_embeddings", "predictor_norm": "predictor.layernorm",
            "predictor_proj": "predictor.proj"}
_BLOCK = ("norm1", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2")
_HF_BLOCK = {"attn.proj": "attention.proj"}


def _rope_only(encoder: VideoTransformer) -> None:
    attn = encoder.blocks[0].attn if len(encoder.blocks) else None
    if encoder.positions != "rope" or (isinstance(attn, RoPEAttention) and attn.interleave):
        raise ValueError(f"VJEPA2Model is a RoPE model with the official pairing; this encoder has "
                         f"positions={encoder.positions!r}" + (" and rope_interleave" if encoder.positions == "rope" else ""))
    if encoder.img_size[0] != encoder.img_size[1]:
        raise ValueError(f"VJEPA2Model takes square frames; this encoder is built for {encoder.img_size}")


def hf_vjepa2_state_dict(encoder: VideoTransformer, predictor: VideoPredictor) -> dict[str, Tensor]:
    """Our weights under ``VJEPA2Model``'s names (``qkv`` split into query, key, value)."""
    out: dict[str, Tensor] = {}

    def blocks(sd: Mapping[str, Tensor], ours: str, theirs: str, depth: int) -> None:
        for i in range(depth):
            for name in _BLOCK:
                for kind in ("weight", "bias"):
                    out[f"{theirs}.{i}.{_HF_BLOCK.get(name, name)}.{kind}"] = sd[f"{ours}.{i}.{name}.{kind}"]
            for kind in ("weight", "bias"):
                q, k, v = sd[f"{ours}.{i}.attn.qkv.{kind}"].chunk(3, dim=0)
                for part, t in zip(("query", "key", "value"), (q, k, v)):
                    out[f"{theirs}.{i}.attention.{part}.{kind}"] = t

    enc, pred = encoder.state_dict(), predictor.state_dict()
    for mapping, sd in ((_HF_ENC, enc), (_HF_PRED, pred)):
        for ours, theirs in mapping.items():
            for kind in ("weight", "bias"):
                out[f"{theirs}.{kind}"] = sd[f"{ours}.{kind}"]
    blocks(enc, "blocks", "encoder.layer", len(encoder.blocks))
    blocks(pred, "predictor_blocks", "predictor.layer", len(predictor.predictor_blocks))
    out["predictor.embeddings.mask_tokens"] = torch.stack([t for t in predictor.mask_tokens])  # (M, 1, 1, Dp)
    return {k: v.detach().clone() for k, v in out.items()}


def to_hf_vjepa2(encoder: VideoTransformer, predictor: VideoPredictor) -> Any:
    """A Hugging Face ``VJEPA2Model`` holding our encoder's and predictor's weights (RoPE models)."""
    transformers = _optional("transformers")
    _rope_only(encoder)
    config = transformers.VJEPA2Config(
        patch_size=encoder.patch_size, crop_size=encoder.img_size[0], frames_per_clip=encoder.num_frames,
        tubelet_size=encoder.tubelet_size, hidden_size=encoder.embed_dim, in_chans=encoder.in_chans,
        num_attention_heads=encoder.num_heads, num_hidden_layers=len(encoder.blocks),
        mlp_ratio=encoder.mlp_ratio, layer_norm_eps=1e-6, qkv_bias=True,
        hidden_act="gelu", pred_hidden_size=predictor.pred_emb_dim, pred_num_attention_heads=predictor.num_heads,
        pred_num_hidden_layers=len(predictor.predictor_blocks), pred_num_mask_tokens=predictor.num_mask_tokens,
        pred_mlp_ratio=predictor.mlp_ratio,
        drop_path_rate=0.0, attention_probs_dropout_prob=0.0)
    model = transformers.VJEPA2Model(config)
    model.load_state_dict(hf_vjepa2_state_dict(encoder, predictor), strict=True)
    return model.eval()


def from_hf_vjepa2(model: Any) -> tuple[VideoTransformer, VideoPredictor]:
    """Our encoder and predictor from a Hugging Face ``VJEPA2Model``, loaded strictly.

    Raises:
        CheckpointError: the model's activation is not exact GELU, or its LayerNorm eps is not 1e-6.
    """
    c = model.config
    if c.hidden_act != "gelu" or abs(float(c.layer_norm_eps) - 1e-6) > 1e-12:
        raise CheckpointError(f"VJEPA2Config hidden_act={c.hidden_act!r}, layer_norm_eps={c.layer_norm_eps}: our "
                              "blocks compute exact GELU with eps 1e-6; this model would give other outputs")
    encoder = VideoTransformer(c.crop_size, c.patch_size, c.frames_per_clip, c.tubelet_size, c.in_chans,
                               c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.mlp_ratio,
                               qkv_bias=c.qkv_bias, positions="rope")
    predictor = VideoPredictor(encoder.grid, embed_dim=c.hidden_size, pred_emb_dim=c.pred_hidden_size,
                               depth=c.pred_num_hidden_layers, num_heads=c.pred_num_attention_heads,
                               mlp_ratio=c.pred_mlp_ratio, num_mask_tokens=c.pred_num_mask_tokens, positions="rope")
    theirs = model.state_dict()
    inverse = _inverse_names(encoder, predictor)
    needed = {k for key, chunk in inverse.values() for k in (chunk or (key,))} | {"predictor.embeddings.mask_tokens"}
    missing = sorted(needed - set(theirs))
    if missing:
        raise CheckpointError(f"VJEPA2Model state dict lacks {missing[0]!r} ({len(missing)} keys in all)")
    back = {ours: theirs[key] if chunk is None else torch.cat([theirs[k] for k in chunk], dim=0)
            for ours, (key, chunk) in inverse.items()}
    load_strict(encoder, {k: back[k] for k in encoder.state_dict()}, "VJEPA2Model encoder")
    pred_state = {k: back[k] for k in predictor.state_dict() if k in back}
    for i, token in enumerate(theirs["predictor.embeddings.mask_tokens"]):
        pred_state[f"mask_tokens.{i}"] = token  # (1, 1, Dp)
    load_strict(predictor, pred_state, "VJEPA2Model predictor")
    return encoder.eval(), predictor.eval()


def _inverse_names(encoder: VideoTransformer, predictor: VideoPredictor) -> dict[str, tuple[str, tuple[str, ...] | None]]:
    """Our key -> (theirs, or the query/key/value keys whose concatenation it is)."""
    out: dict[str, tuple[str, tuple[str, ...] | None]] = {}
    for ours, theirs in (_HF_ENC | _HF_PRED).items():
        for kind in ("weight", "bias"):
            out[f"{ours}.{kind}"] = (f"{theirs}.{kind}", None)
    for ours_prefix, theirs_prefix, depth in (("blocks", "encoder.layer", len(encoder.blocks)),
                                              ("predictor_blocks", "predictor.layer", len(predictor.predictor_blocks))):
        for i in range(depth):
            for kind in ("weight", "bias"):
                for name in _BLOCK:
                    out[f"{ours_prefix}.{i}.{name}.{kind}"] = (f"{theirs_prefix}.{i}.{_HF_BLOCK.get(name, name)}.{kind}", None)
                parts = tuple(f"{theirs_prefix}.{i}.attention.{p}.{kind}" for p in ("query", "key", "value"))
                out[f"{ours_prefix}.{i}.attn.qkv.{kind}"] = (parts[0], parts)
    return out
