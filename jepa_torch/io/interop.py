"""Our encoders to and from timm's and Hugging Face's I-JEPA models, weights carried exactly.

- **timm** (``timm.models.vision_transformer.VisionTransformer`` with ``class_token=False``,
  ``global_pool="avg"``, ``fc_norm=False``: the architecture of ``vit_huge_patch14_gap_224.in1k_ijepa``
  and its siblings) uses the official names, so the state dicts are the same keys; its
  ``forward_features`` is our ``forward``.
- **Hugging Face** (``transformers.IJepaModel``) splits the fused ``qkv`` projection into ``q``, ``k``,
  ``v`` and renames every tensor; its ``last_hidden_state`` is our ``forward``. Both key schemes of
  transformers are read and written: 5.x (``layers.N.attention.q_proj``) and 4.x
  (``encoder.layer.N.attention.attention.query``); which one is chosen from the model it goes into.

timm and transformers are optional (``pip install jepa-reference[interop]``); the functions import them when
called and say how to install them when they are missing. Only image encoders convert.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import torch
from torch import Tensor, nn

from jepa_torch.io.checkpoint import CheckpointError, infer_vit_config, load_strict, strip_prefixes
from jepa_torch.models.jepa import make_image_encoder
from jepa_torch.models.vit import Block, PatchEmbed, TransformerEncoder

__all__ = ["from_hf", "from_timm", "hf_state_dict", "our_state_dict_from_hf", "to_hf", "to_timm"]

# Hugging Face names of one block's tensors, per transformers generation: ours -> theirs.
_HF_BLOCK = {
    5: {"norm1": "layernorm_before", "attn.proj": "attention.o_proj", "norm2": "layernorm_after",
        "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2", "q": "attention.q_proj", "k": "attention.k_proj",
        "v": "attention.v_proj", "prefix": "layers"},
    4: {"norm1": "layernorm_before", "attn.proj": "attention.output.dense", "norm2": "layernorm_after",
        "mlp.fc1": "intermediate.dense", "mlp.fc2": "output.dense", "q": "attention.attention.query",
        "k": "attention.attention.key", "v": "attention.attention.value", "prefix": "encoder.layer"},
}
_HF_TOP = {"pos_embed": "embeddings.position_embeddings", "patch_embed.proj": "embeddings.patch_embeddings.projection",
           "norm": "layernorm"}


def _optional(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ImportError(f"{name} is not installed; pip install 'jepa-reference[interop]' (or pip install {name})") from None


@dataclass(frozen=True)
class _Shape:
    img: tuple[int, int]
    patch: tuple[int, int]
    in_chans: int
    hidden: int
    qkv_bias: bool
    eps: float


def _image_encoder(encoder: TransformerEncoder) -> _Shape:
    front = encoder.patch_embed
    if not isinstance(front, PatchEmbed):
        raise ValueError("only image encoders (ViTs) convert; this one has a sequence front end")
    blk = encoder.blocks[0]
    assert isinstance(blk, Block)
    patch = front.patch_size
    return _Shape((encoder.grid[0] * patch[0], encoder.grid[1] * patch[1]), patch, front.in_chans,
                  blk.mlp.fc1.out_features, blk.attn.qkv.bias is not None, blk.norm1.eps)


def to_timm(encoder: TransformerEncoder) -> Any:
    """A timm ``VisionTransformer`` (no class token, average pool, no head) holding ``encoder``'s weights."""
    vit = _optional("timm.models.vision_transformer")
    shape = _image_encoder(encoder)
    model = vit.VisionTransformer(
        img_size=shape.img, patch_size=shape.patch, in_chans=shape.in_chans, embed_dim=encoder.embed_dim,
        depth=len(encoder.blocks), num_heads=encoder.num_heads, mlp_ratio=shape.hidden / encoder.embed_dim,
        qkv_bias=shape.qkv_bias, class_token=False, global_pool="avg", fc_norm=False, num_classes=0)
    model.load_state_dict(encoder.state_dict(), strict=True)
    return model.eval()


def from_timm(model: Any, num_heads: int | None = None) -> TransformerEncoder:
    """Our encoder from a timm I-JEPA ViT (or its state dict): the same keys, loaded strictly."""
    state = model if isinstance(model, Mapping) else model.state_dict()
    state = {k: v for k, v in strip_prefixes(state).items() if not k.startswith(("head.", "fc_norm."))}
    if "cls_token" in state:
        raise CheckpointError("this timm ViT has a class token; I-JEPA encoders have none")
    if num_heads is None and not isinstance(model, Mapping):
        num_heads = int(model.blocks[0].attn.num_heads)
    encoder = make_image_encoder(infer_vit_config(state, num_heads=num_heads))
    load_strict(encoder, state, "timm state dict")
    return encoder.eval()


def _generation(keys: Mapping[str, Any] | None) -> int:
    if keys is None:
        version = int(_optional("transformers").__version__.split(".")[0])
        return 5 if version >= 5 else 4
    return 5 if any(k.startswith("layers.") for k in keys) else 4


def hf_state_dict(encoder: TransformerEncoder, generation: int = 5) -> dict[str, Tensor]:
    """``encoder``'s weights under Hugging Face ``IJepaModel`` names (``qkv`` split into ``q``, ``k``, ``v``)."""
    names, sd = _HF_BLOCK[generation], strip_prefixes(encoder.state_dict())
    out: dict[str, Tensor] = {}
    for ours, theirs in _HF_TOP.items():
        for suffix in ("", ".weight", ".bias"):
            if ours + suffix in sd:
                out[theirs + suffix] = sd[ours + suffix]
    for i in range(len(encoder.blocks)):
        src, dst = f"blocks.{i}.", f"{names['prefix']}.{i}."
        for kind in ("weight", "bias"):
            for ours in ("norm1", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2"):
                out[dst + names[ours] + "." + kind] = sd[src + ours + "." + kind]
            if src + "attn.qkv." + kind in sd:
                q, k, v = sd[src + "attn.qkv." + kind].chunk(3, dim=0)  # rows q | k | v
                for part, t in (("q", q), ("k", k), ("v", v)):
                    out[dst + names[part] + "." + kind] = t.clone()
    return out


def our_state_dict_from_hf(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The inverse of :func:`hf_state_dict`: Hugging Face ``IJepaModel`` tensors under our names."""
    sd = {k.removeprefix("ijepa."): v for k, v in state.items() if not k.startswith("pooler.")}
    names = _HF_BLOCK[_generation(sd)]
    out: dict[str, Tensor] = {}
    for ours, theirs in _HF_TOP.items():
        for suffix in ("", ".weight", ".bias"):
            if theirs + suffix in sd:
                out[ours + suffix] = sd[theirs + suffix]
    depth = len({k.split(".")[len(names["prefix"].split("."))] for k in sd if k.startswith(names["prefix"] + ".")})
    for i in range(depth):
        src, dst = f"{names['prefix']}.{i}.", f"blocks.{i}."
        for kind in ("weight", "bias"):
            for ours in ("norm1", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2"):
                out[dst + ours + "." + kind] = sd[src + names[ours] + "." + kind]
            parts = [src + names[p] + "." + kind for p in ("q", "k", "v")]
            if all(p in sd for p in parts):
                out[dst + "attn.qkv." + kind] = torch.cat([sd[p] for p in parts], dim=0)
    return out


def to_hf(encoder: TransformerEncoder) -> Any:
    """A Hugging Face ``IJepaModel`` (no pooler) holding ``encoder``'s weights."""
    transformers = _optional("transformers")
    shape = _image_encoder(encoder)
    if shape.img[0] != shape.img[1] or shape.patch[0] != shape.patch[1]:
        raise ValueError(f"IJepaModel takes square images and patches; this encoder has {shape.img} and {shape.patch}")
    config = transformers.IJepaConfig(
        hidden_size=encoder.embed_dim, num_hidden_layers=len(encoder.blocks), num_attention_heads=encoder.num_heads,
        intermediate_size=shape.hidden, hidden_act="gelu", layer_norm_eps=shape.eps, image_size=shape.img[0],
        patch_size=shape.patch[0], num_channels=shape.in_chans, qkv_bias=shape.qkv_bias,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = transformers.IJepaModel(config, add_pooling_layer=False)
    model.load_state_dict(hf_state_dict(encoder, _generation(model.state_dict())), strict=True)
    return model.eval()


def from_hf(model: Any, num_heads: int | None = None) -> TransformerEncoder:
    """Our encoder from a Hugging Face ``IJepaModel`` (or its state dict), loaded strictly.

    From a model, its config's ``layer_norm_eps`` is kept on every LayerNorm (``IJepaConfig``'s default
    is 1e-12, the I-JEPA networks' 1e-6: at the default, a model built by ``transformers`` differs from
    ours by about 3e-5 in its output unless the eps comes along). A state dict alone carries no eps:
    the encoder then has ours, 1e-6.

    Raises:
        CheckpointError: the model's activation is not exact GELU, the one our blocks compute.
    """
    state = model if isinstance(model, Mapping) else model.state_dict()
    eps = None
    if not isinstance(model, Mapping):
        config = model.config
        if num_heads is None:
            num_heads = int(config.num_attention_heads)
        if config.hidden_act != "gelu":
            raise CheckpointError(f"IJepaConfig.hidden_act={config.hidden_act!r}: our blocks compute exact GELU "
                                  "('gelu'); this model would give other outputs")
        eps = float(config.layer_norm_eps)
    ours = our_state_dict_from_hf(state)
    encoder = make_image_encoder(infer_vit_config(ours, num_heads=num_heads))
    load_strict(encoder, ours, "Hugging Face state dict")
    if eps is not None:
        for module in encoder.modules():
            if isinstance(module, nn.LayerNorm):
                module.eps = eps
    return encoder.eval()
