"""Weights in and out by the official state-dict names.

A module's state dict is ``{name: numpy array}`` with the names of the official I-JEPA code (and of
``jepa_torch``): each name is the module's attribute path (``blocks.0.attn.qkv.weight``), because the
JAX modules are built with those attribute names and torch's ``(out, in)`` layout. Moving weights is
therefore a strict match of names and shapes, with no table of renamings and no transposes; the
``module.`` (DDP) and ``_orig_mod.`` (``torch.compile``) prefixes of saved checkpoints are stripped.

    from jepa_torch.io.checkpoint import read_official
    ckpt = read_official("in1k-vit_h14.pth.tar")
    sd = {k: {n: v.float().numpy() for n, v in ckpt[k].items()} for k in ("encoder", "predictor", "target_encoder")}
    model = from_state_dicts(sd["encoder"], sd["predictor"], sd["target_encoder"], num_heads=16, grid=(16, 16))
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import NDArray

from .models import JEPA, EncoderConfig, JEPAConfig, PredictorConfig, build, path_names

__all__ = ["StateDictError", "from_state_dicts", "infer_config", "load_state_dict", "state_dict", "state_dicts",
           "strip_prefixes"]

M = TypeVar("M")
PREFIXES = ("module.", "_orig_mod.")


class StateDictError(ValueError):
    """A state dict that does not fit the module: the message names the key and what to do."""


def strip_prefixes(state: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``state`` with any leading ``module.`` / ``_orig_mod.`` removed from their names."""
    out = {}
    for key, value in state.items():
        name = key
        while name.startswith(PREFIXES):
            name = name.split(".", 1)[1]
        out[name] = value
    return out


def state_dict(module: Any) -> dict[str, NDArray[Any]]:
    """``{official name: numpy array}`` of every array in ``module`` (an encoder, a predictor)."""
    leaves = jax.tree_util.tree_leaves_with_path(module)
    return {".".join(path_names(path)): np.asarray(leaf) for path, leaf in leaves if eqx.is_array(leaf)}


def state_dicts(model: JEPA) -> dict[str, dict[str, NDArray[Any]]]:
    """The three state dicts of an official checkpoint: ``encoder``, ``predictor``, ``target_encoder``."""
    return {"encoder": state_dict(model.encoder), "predictor": state_dict(model.predictor),
            "target_encoder": state_dict(model.target_encoder)}


def load_state_dict(module: M, state: Mapping[str, Any], what: str = "module") -> M:
    """``module`` with every array replaced by the entry of ``state`` of the same name (strict).

    Args:
        module: a template of the right shapes: a built module, or ``eqx.filter_eval_shape`` of one.
        state: ``{name: array}`` (numpy, or anything ``np.asarray`` reads), prefixes allowed.
        what: the module's role, for error messages.

    Returns:
        The module with the loaded values, each in the template leaf's dtype.

    Raises:
        StateDictError: a missing or unexpected name, or a shape that differs.
    """
    sd = strip_prefixes(state)
    leaves, treedef = jax.tree_util.tree_flatten_with_path(module)
    names = [".".join(path_names(path)) for path, _ in leaves]
    missing = [n for n in names if n not in sd]
    unexpected = sorted(set(sd) - set(names))
    if missing or unexpected:
        raise StateDictError(f"{what}: missing keys {missing}, unexpected keys {unexpected}; "
                             "is this an official I-JEPA state dict of this architecture?")
    values = []
    for name, (_, leaf) in zip(names, leaves, strict=True):
        value = np.asarray(sd[name])
        if value.shape != tuple(leaf.shape):
            raise StateDictError(f"{what}: {name!r} has shape {value.shape}, this model expects {tuple(leaf.shape)}")
        values.append(jnp.asarray(value, leaf.dtype))
    loaded: M = jax.tree_util.tree_unflatten(treedef, values)
    return loaded


def _count(sd: Mapping[str, Any], prefix: str) -> int:
    return len({k[len(prefix):].split(".", 1)[0] for k in sd if k.startswith(prefix)})


def _shape(sd: Mapping[str, Any], key: str, what: str) -> tuple[int, ...]:
    if key not in sd:
        raise StateDictError(f"{what}: missing key {key!r}; is this an official I-JEPA {what} state dict?")
    return tuple(np.shape(sd[key]))


def infer_config(encoder: Mapping[str, Any], predictor: Mapping[str, Any], *, num_heads: int,
                 predictor_num_heads: int | None = None, grid: tuple[int, ...] | None = None) -> JEPAConfig:
    """The model config of official-layout encoder and predictor state dicts, read from their shapes.

    Heads are not in the tensors: pass the encoder's (``num_heads``); the predictor's default to them, as
    the official ``init_model`` builds it. An image grid defaults to the square of the position count.
    """
    enc, pred = strip_prefixes(encoder), strip_prefixes(predictor)
    proj = _shape(enc, "patch_embed.proj.weight", "encoder")
    _, n, dim = _shape(enc, "pos_embed", "encoder")
    patch: tuple[int, ...]
    if len(proj) == 2:  # a sequence front end: Linear(F, D)
        in_chans, patch, token_grid = proj[1], (), (n,) if grid is None else grid
    else:  # an image front end: Conv2d(C, D, patch)
        side = math.isqrt(n)
        if grid is None and side * side != n:
            raise StateDictError(f"encoder: {n} positions are not a square grid; pass grid=(rows, cols)")
        in_chans, patch, token_grid = proj[1], proj[2:], (side, side) if grid is None else grid
    if math.prod(token_grid) != n:
        raise StateDictError(f"encoder: grid {token_grid} does not hold its {n} positions")
    enc_config = EncoderConfig(dim, _count(enc, "blocks."), num_heads,
                               _shape(enc, "blocks.0.mlp.fc1.weight", "encoder")[0], in_chans, patch, token_grid)
    pred_dim = _shape(pred, "predictor_embed.weight", "predictor")[0]
    pred_config = PredictorConfig(dim, pred_dim, _count(pred, "predictor_blocks."),
                                  num_heads if predictor_num_heads is None else predictor_num_heads,
                                  _shape(pred, "predictor_blocks.0.mlp.fc1.weight", "predictor")[0], token_grid)
    return JEPAConfig(enc_config, pred_config)


def from_state_dicts(encoder: Mapping[str, Any], predictor: Mapping[str, Any],
                     target_encoder: Mapping[str, Any] | None = None, *, num_heads: int,
                     predictor_num_heads: int | None = None, grid: tuple[int, ...] | None = None,
                     dtype: jnp.dtype = jnp.float64) -> JEPA:
    """A :class:`JEPA` holding the given official-layout weights (the target encoder defaults to the encoder's).

    The config is :func:`infer_config`'s; the template is shapes only (``eqx.filter_eval_shape``), so
    nothing is drawn at random.
    """
    config = infer_config(encoder, predictor, num_heads=num_heads, predictor_num_heads=predictor_num_heads, grid=grid)
    template = eqx.filter_eval_shape(build, config, jax.random.key(0), dtype)
    context = load_state_dict(template.encoder, encoder, "encoder")
    target = context if target_encoder is None else load_state_dict(template.target_encoder, target_encoder,
                                                                     "target_encoder")
    return JEPA(context, load_state_dict(template.predictor, predictor, "predictor"), target)
