"""The one build path of the JAX networks: a model config, :func:`build`, a :class:`JEPA`.

    JEPAConfig(encoder=EncoderConfig(...), predictor=PredictorConfig(...))  -> build(config, key) -> JEPA

The model config is the framework-free one of ``jepa_core.model_config``, the very classes
``jepa_torch`` builds from, so a config describes the same networks in both frameworks; :func:`jepa_jax.state_dict.infer_config` reads one from
official-layout state dicts. :class:`JEPA` holds the context encoder, the predictor and the EMA
target encoder as one pytree, and its forward is the training forward of ``jepa_torch.models.JEPA``:
target masks of equal length share one predictor call, rows are target-mask-major, then context
mask, then batch, and the target branch is read through ``stop_gradient``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from jepa_core.loss import Reduction
from jepa_core.model_config import EncoderConfig, JEPAConfig, PredictorConfig
from jepa_core.representation import LossKind

from .loss import grouped_prediction_loss
from .predictor import Predictor, init_predictor
from .representation import layer_norm
from .vit import PatchEmbed, TokenEmbed, TransformerEncoder, apply_masks, init_encoder

__all__ = ["FIXED", "JEPA", "EncoderConfig", "JEPAConfig", "PredictorConfig", "build", "group_by_length",
           "make_encoder", "make_predictor", "path_names", "rows_valid", "trainable"]

FIXED = frozenset({"pos_embed", "predictor_pos_embed"})
"""The fixed sin-cos tables: state-dict entries, never trained (torch's ``requires_grad=False``)."""


def make_encoder(config: EncoderConfig, key: Array, init_std: float = 0.02, depth_rescale: bool = False,
                 dtype: jnp.dtype = jnp.float64) -> TransformerEncoder:
    """A freshly initialised encoder of ``config``'s shape, drawn from ``key``."""
    k_front, k_blocks = jax.random.split(key)
    front: TokenEmbed | PatchEmbed
    if not config.patch_size:
        front = TokenEmbed.init(k_front, config.in_chans, config.grid[0], config.embed_dim, init_std, dtype)
    else:
        img = (config.grid[0] * config.patch_size[0], config.grid[1] * config.patch_size[1])
        front = PatchEmbed.init(k_front, img, (config.patch_size[0], config.patch_size[1]), config.in_chans,
                                config.embed_dim, init_std, dtype)
    return init_encoder(k_blocks, front, config.depth, config.num_heads, config.mlp_hidden_dim, init_std,
                        depth_rescale, dtype)


def make_predictor(config: PredictorConfig, key: Array, init_std: float = 0.02, depth_rescale: bool = False,
                   dtype: jnp.dtype = jnp.float64) -> Predictor:
    """A freshly initialised predictor of ``config``'s shape, drawn from ``key``."""
    return init_predictor(key, config.grid, config.embed_dim, config.pred_emb_dim, config.depth, config.num_heads,
                          config.mlp_hidden_dim, init_std, depth_rescale, dtype)


def group_by_length(masks: Sequence[Array]) -> list[list[int]]:
    """The positions of ``(B, K)`` masks grouped by equal ``K``, in order of first appearance."""
    groups: dict[int, list[int]] = {}
    for i, m in enumerate(masks):
        groups.setdefault(int(m.shape[-1]), []).append(i)
    return list(groups.values())


def _repeat_contexts(x: Array, groups: int, contexts: int) -> Array:
    """``(Mg * B, ...)`` -> ``(Mg * Mx * B, ...)``: each target mask's rows repeated for each context mask."""
    rest = x.shape[1:]
    batch = x.shape[0] // groups
    y = jnp.broadcast_to(x.reshape(groups, 1, batch, *rest), (groups, contexts, batch, *rest))  # (Mg, Mx, B, ...)
    return y.reshape(groups * contexts * batch, *rest)


class JEPA(eqx.Module):
    """The three networks of I-JEPA: context encoder, predictor, and its EMA target encoder.

    Target masks may be padded to a static size (the shapes a jitted step compiles for), with
    ``target_valid``, one ``(B, K)`` boolean array per target mask, False at padding: padded entries
    are no keys in the predictor and count for nothing in the loss. Padded context entries are
    marked by ``context_valid`` ``(Mx * B, Kc)`` (:func:`jepa_jax.vit.context_valid`).
    """

    encoder: TransformerEncoder
    predictor: Predictor
    target_encoder: TransformerEncoder

    def forward_target(self, x: Array, context_masks: Sequence[Array],
                       target_groups: Sequence[Sequence[Array]]) -> list[Array]:
        """Layer-normed target tokens, one ``(Mg * Mx * B, Kg, D)`` array per target group, no gradient."""
        h = jax.lax.stop_gradient(layer_norm(self.target_encoder(x)))  # (B, N, D)
        return [_repeat_contexts(apply_masks(h, group), len(group), len(context_masks))  # (Mg*Mx*B, Kg, D)
                for group in target_groups]

    def forward_context(self, x: Array, context_masks: Sequence[Array], target_groups: Sequence[Sequence[Array]],
                        context_valid: Array | None = None,
                        target_valid: Sequence[Sequence[Array]] | None = None) -> tuple[Array, list[Array]]:
        """Context tokens ``(Mx * B, Kc, D)`` and one prediction array per target group."""
        z = self.encoder(x, context_masks, valid=context_valid)  # (Mx*B, Kc, D)
        keys: list[Array | None] = ([None] * len(target_groups) if target_valid is None
                                    else [jnp.concatenate(list(v)) for v in target_valid])  # each (Mg*B, Kg)
        return z, [self.predictor(z, context_masks, group, context_valid, k)
                   for group, k in zip(target_groups, keys, strict=True)]

    def __call__(self, x: Array, context_masks: Sequence[Array], target_masks: Sequence[Array],
                 context_valid: Array | None = None,
                 target_valid: Sequence[Array] | None = None) -> tuple[list[Array], list[Array], Array]:
        """``(predictions, targets, context tokens)`` for one batch: one aligned ``(Mg * Mx * B, Kg, D)`` pair
        per group of equal-length target masks, in order of first appearance."""
        groups = group_by_length(target_masks)
        masks = [[target_masks[i] for i in g] for g in groups]
        valid = None if target_valid is None else [[target_valid[i] for i in g] for g in groups]
        targets = self.forward_target(x, context_masks, masks)
        context, predictions = self.forward_context(x, context_masks, masks, context_valid, valid)
        return predictions, targets, context

    def loss(self, x: Array, context_masks: Sequence[Array], target_masks: Sequence[Array],
             kind: LossKind = "smooth_l1", reduction: Reduction = "mean", context_valid: Array | None = None,
             target_valid: Sequence[Array] | None = None) -> Array:
        """The training loss: :func:`~jepa_jax.loss.grouped_prediction_loss` of the forward (0 with no target mask)."""
        if not target_masks:
            return jnp.zeros((), x.dtype)
        predictions, targets, _ = self(x, context_masks, target_masks, context_valid, target_valid)
        return grouped_prediction_loss(predictions, targets, kind, reduction,
                                       rows_valid(target_masks, target_valid, len(context_masks)))


def rows_valid(target_masks: Sequence[Array], target_valid: Sequence[Array] | None,
               contexts: int) -> list[Array] | None:
    """The validity of the prediction rows of each group, ``(Mg * Mx * B, Kg)``, or None without padding."""
    if target_valid is None:
        return None
    return [_repeat_contexts(jnp.concatenate([target_valid[i] for i in g]), len(g), contexts)
            for g in group_by_length(target_masks)]


def build(config: JEPAConfig, key: Array, dtype: jnp.dtype = jnp.float64) -> JEPA:
    """The networks of ``config`` drawn from ``key``; the target encoder starts equal to the context encoder."""
    k_encoder, k_predictor = jax.random.split(key)
    if config.predictor is None:
        raise ValueError("this model config has no predictor; jepa_jax builds I-JEPA models")
    encoder = make_encoder(config.encoder, k_encoder, config.init_std, config.depth_rescale, dtype)
    predictor = make_predictor(config.predictor, k_predictor, config.init_std, config.depth_rescale, dtype)
    return JEPA(encoder, predictor, encoder)


def path_names(path: Sequence[Any]) -> list[str]:
    """The parts of a pytree key path as state-dict name parts: ``.blocks[0].attn`` -> ``["blocks", "0", "attn"]``."""
    parts = []
    for key in path:
        if isinstance(key, jax.tree_util.GetAttrKey):
            parts.append(key.name)
        elif isinstance(key, jax.tree_util.SequenceKey):
            parts.append(str(key.idx))
        elif isinstance(key, jax.tree_util.DictKey):
            parts.append(str(key.key))
        else:
            raise TypeError(f"cannot name the pytree key {key!r}")
    return parts


def trainable(model: JEPA) -> Any:
    """The filter spec of what the optimiser trains: every array of the encoder and predictor but the fixed
    position tables. The target encoder moves by EMA only. Use with ``eqx.partition(model, trainable(model))``."""
    def keep(path: Sequence[Any], leaf: Any) -> bool:
        names = path_names(path)
        return eqx.is_array(leaf) and names[0] in ("encoder", "predictor") and names[-1] not in FIXED

    return jax.tree_util.tree_map_with_path(keep, model)
