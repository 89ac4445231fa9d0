"""The JAX backend of the law suite: ``pytest properties --jepa-backend=jepa_jax.backend:backend``.

Every member runs this package's own JAX code in float64 (``jax_enable_x64``, turned on when
``jepa_jax`` is imported), jit-compiled but for the EMA, whose few operations run eagerly: the losses of :mod:`jepa_jax.loss` and
:mod:`jepa_jax.representation`, the regularisers of :mod:`jepa_jax.regularisers`, the pytree EMA of
:mod:`jepa_jax.ema`, the traceable schedules of :mod:`jepa_jax.schedules`, and in
:meth:`JaxBackend.objective` the training forward of :class:`jepa_jax.models.JEPA` (the transformer
encoder, its EMA target and the I-JEPA predictor) with the training loss
(:meth:`jepa_jax.models.JEPA.loss`'s ``grouped_prediction_loss``).

Static shapes, as a JAX trainer has them. ``jax.jit`` compiles one program per input shape, and
the suite draws a new shape for nearly every example (so does eager JAX, one small program per
operation and shape, about 35 ms each). The members therefore pad their ragged inputs on the host
(:mod:`jepa_jax.padding`) to a few power-of-two sizes and pass validity masks, exactly as a
jitted training step takes masks of changing length: the batch, the context and target lengths and
the number of target blocks of the objective (and its input width, with zero weights); the rows of the per-token losses; the width,
directions and knots of SIGReg. Padding is exact: padded entries are never attention keys and
count for nothing in a loss, so the real values equal the unpadded ones to rounding. Results come
back through numpy, so slicing costs no compilation either.

The mask sampler is the spec's (:mod:`jepa_core.masks`): masks are drawn on the host, in the data
pipeline, as JAX input pipelines do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache, partial
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from numpy.typing import NDArray

from jepa_core.backend import Backend, ObjectiveParts, Schedule
from jepa_core.loss import Reduction
from jepa_core.model_config import EncoderConfig, official_predictor
from jepa_core.representation import LossKind, check_loss_kind

from . import regularisers
from .ema import ema_update
from .loss import check_indices, grouped_prediction_loss, jepa_loss_blocks
from .models import JEPA, JEPAConfig, build, rows_valid
from .padding import bucket, pad_axis, pad_masks
from .representation import elementwise_loss, layer_norm
from .schedules import CosineWeightDecay, MomentumSchedule, WarmupCosineLR

__all__ = ["JaxBackend", "backend", "small_config", "small_model"]

KINDS: tuple[LossKind, ...] = ("smooth_l1", "l2", "l1")
REDUCTIONS: tuple[Reduction, ...] = ("sum", "mean")

# The floors of the static sizes: the law suite's shapes fit in one or two buckets.
ROWS, BATCH, CONTEXT, BLOCKS, BLOCK_LEN, TOKENS, FEATURES, WIDTH, DIRECTIONS, KNOTS = 8, 8, 16, 4, 4, 16, 4, 8, 8, 32


def small_config(num_tokens: int, input_dim: int) -> JEPAConfig:
    """The laws' model, the torch backend's shape: a 1-block sequence transformer (width 24, 3 heads, MLP 96)
    and a 1-block predictor (width 12, MLP 48), with the constructors' depth rescaling."""
    encoder = EncoderConfig(24, 1, 3, 96, input_dim, (), (num_tokens,))
    return JEPAConfig(encoder, official_predictor(encoder, depth=1, pred_emb_dim=12), depth_rescale=True)


@lru_cache(maxsize=256)
def small_model(seed: int, num_tokens: int, input_dim: int) -> JEPA:
    """:func:`small_config`'s networks drawn from ``jax.random.key(seed)``, float64 (cached: a model is immutable).

    Built eagerly: the draws' shapes depend on ``input_dim`` alone, so after the first model of each
    width a new seed costs a few milliseconds, where compiling the builder costs seconds per shape.
    """
    return build(small_config(num_tokens, input_dim), jax.random.key(seed))


def _feature_padded(model: JEPA, width: int) -> JEPA:
    """``model`` taking ``width`` input features: zero columns appended to both encoders'
    ``patch_embed.proj.weight`` meet the zero features appended to the tokens, so every token is unchanged
    and one compiled forward serves every input width of a bucket."""

    def padded(encoder: Any) -> Array:
        return jnp.asarray(pad_axis(_host(encoder.patch_embed.proj.weight), width, 1))  # (D, F_padded)

    out: JEPA = eqx.tree_at(lambda m: (m.encoder.patch_embed.proj.weight, m.target_encoder.patch_embed.proj.weight),
                            model, (padded(model.encoder), padded(model.target_encoder)))
    return out


# --- the jitted members: library code on static shapes ---------------------------------------


@partial(jax.jit, static_argnames=("kind",))
def _rep_loss(target: Array, prediction: Array, kind: LossKind) -> Array:
    return jnp.sum(elementwise_loss(target, prediction, kind), axis=-1)  # (R,)


_layer_norm = jax.jit(layer_norm)


@partial(jax.jit, static_argnames=("kind", "reduction"))
def _jepa_loss(predictions: Array, targets: Array, blocks: Array, valid: Array, kind: LossKind,
               reduction: Reduction) -> Array:
    return jepa_loss_blocks(list(predictions), targets, list(blocks), kind, reduction, list(valid))


@eqx.filter_jit
def _objective(model: JEPA, tokens: Array, context: Array, context_valid: Array, blocks: Array,
               target_valid: Array) -> tuple[Array, Array, Array, Array, Array]:
    """The training forward on padded inputs: ``(context tokens, predictions (Mt, B, K, D), target tokens,
    targets, losses)``, the losses for every kind and reduction (``KINDS x REDUCTIONS``, in order)."""
    masks, valid = list(blocks), list(target_valid)
    predictions, targets, ctx = model(tokens, [context], masks, context_valid, valid)
    rows = rows_valid(masks, valid, 1)
    losses = jnp.stack([grouped_prediction_loss(predictions, targets, k, r, rows) for k in KINDS for r in REDUCTIONS])
    target_tokens = model.target_encoder(tokens)  # (B, N, D)
    grouped = predictions[0].reshape(*blocks.shape, -1)  # one group: every block has the padded length
    return ctx, grouped, target_tokens, layer_norm(target_tokens), losses


_vicreg_variance = jax.jit(regularisers.vicreg_variance)
_vicreg_covariance = jax.jit(regularisers.vicreg_covariance)
_sigreg = jax.jit(regularisers.sigreg)


# --- host-side helpers ----------------------------------------------------------------------


def _host(x: Any) -> NDArray[Any]:
    return np.asarray(x)


def _rows(x: Any) -> tuple[NDArray[Any], tuple[int, ...]]:
    """``(..., D)`` -> ``(R_padded, D)`` on the host, and the leading shape to restore."""
    a = _host(x)
    lead = a.shape[:-1]
    flat = a.reshape(-1, a.shape[-1])  # (R, D)
    return pad_axis(flat, bucket(flat.shape[0], ROWS)), lead


def _check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}: use 'sum' or 'mean'")


class JaxBackend:
    """The JAX implementation of :class:`jepa_core.backend.Backend`."""

    name = "jax"

    @property
    def mask_sampler(self) -> Any:
        """The spec's sampler, :mod:`jepa_core.masks` (numpy, on the host)."""
        import jepa_core.masks

        return jepa_core.masks

    def asarray(self, x: NDArray[Any], /) -> Array:
        return jnp.asarray(np.array(x, copy=True))

    def to_numpy(self, x: Any, /) -> NDArray[Any]:
        return np.array(x)

    def rep_loss(self, target: Array, prediction: Array, kind: LossKind) -> Array:
        if target.shape != prediction.shape:
            raise ValueError(f"target shape {tuple(target.shape)} != prediction shape {tuple(prediction.shape)}")
        (t, lead), (p, _) = _rows(target), _rows(prediction)
        out = _host(_rep_loss(jnp.asarray(t), jnp.asarray(p), check_loss_kind(kind)))
        return jnp.asarray(out[: int(np.prod(lead))].reshape(lead))

    def layer_norm(self, x: Array) -> Array:
        rows, lead = _rows(x)
        out = _host(_layer_norm(jnp.asarray(rows)))
        return jnp.asarray(out[: int(np.prod(lead))].reshape(x.shape))

    def jepa_loss(self, predictions: Sequence[Array], targets: Array, target_blocks: Sequence[Array],
                  kind: LossKind, reduction: Reduction) -> float:
        check_loss_kind(kind)
        _check_reduction(reduction)
        if len(predictions) != len(target_blocks):
            raise ValueError(f"{len(predictions)} predictions for {len(target_blocks)} target blocks")
        tgt = _host(targets)
        batch, n, dim = tgt.shape
        blocks = [_host(b) for b in target_blocks]
        preds = [_host(p) for p in predictions]
        for i, (pred, block) in enumerate(zip(preds, blocks, strict=True)):
            check_indices(block, n, f"target block {i}")
            if pred.shape != (*block.shape, dim):
                raise ValueError(f"prediction {i} has shape {pred.shape} for block {block.shape} and width {dim}")
        if not blocks:
            return 0.0
        length = bucket(max(b.shape[1] for b in blocks), BLOCK_LEN)
        count, rows = bucket(len(blocks), BLOCKS), bucket(batch, BATCH)
        indices, valid = pad_masks(blocks, length, count, rows)
        padded = np.zeros((count, rows, length, dim))
        for i, pred in enumerate(preds):
            padded[i, :batch, : pred.shape[1]] = pred
        targets_padded = pad_axis(pad_axis(tgt, rows, 0), bucket(n, TOKENS), 1)
        return float(_jepa_loss(jnp.asarray(padded), jnp.asarray(targets_padded), jnp.asarray(indices),
                                jnp.asarray(valid), kind, reduction))

    def model(self, seed: int, num_tokens: int, input_dim: int) -> JEPA:
        """The small float64 JEPA of the laws (:func:`small_model`)."""
        return small_model(seed, num_tokens, input_dim)

    def _run(self, tokens: Array, context_indices: Array, target_blocks: Sequence[Array], seed: int,
             context_lengths: Array | None) -> tuple[tuple[NDArray[Any], ...], list[NDArray[np.int64]]]:
        """The padded training forward, back on the host, and the blocks as numpy arrays."""
        x, ctx = _host(tokens), _host(context_indices)
        batch, n, features = x.shape
        size = ctx.shape[1]
        blocks = [_host(b) for b in target_blocks]
        check_indices(ctx, n, "context_indices")
        for i, block in enumerate(blocks):
            check_indices(block, n, f"target block {i}")
        lengths = np.full(batch, size) if context_lengths is None else _host(context_lengths)
        if lengths.shape != (batch,) or lengths.min() < 1 or lengths.max() > size:
            raise ValueError(f"context_lengths {lengths.tolist()}: expected one length in [1, {size}] per sample")
        rows, padded_size = bucket(batch, BATCH), bucket(size, CONTEXT)
        ctx_valid = np.zeros((rows, padded_size), bool)
        ctx_valid[:batch] = np.arange(padded_size) < lengths[:, None]
        ctx_valid[batch:, 0] = True  # padded samples keep one key, so their (discarded) rows stay finite
        length = bucket(max((b.shape[1] for b in blocks), default=1), BLOCK_LEN)
        indices, valid = pad_masks(blocks, length, bucket(len(blocks), BLOCKS), rows)
        tokens_padded = pad_axis(pad_axis(x, rows), bucket(features, FEATURES), 2)
        model = _feature_padded(self.model(seed, n, features), bucket(features, FEATURES))
        out = _objective(model, jnp.asarray(tokens_padded),
                         jnp.asarray(pad_axis(pad_axis(ctx, rows), padded_size, 1)), jnp.asarray(ctx_valid),
                         jnp.asarray(indices), jnp.asarray(valid))
        return tuple(_host(a) for a in out), blocks

    def objective(self, tokens: Array, context_indices: Array, target_blocks: Sequence[Array], seed: int,
                  kind: LossKind, reduction: Reduction, context_lengths: Array | None = None) -> float:
        """The training loss of the training forward on the small float64 model of ``seed``; 0 with no
        target block (training always has one)."""
        check_loss_kind(kind)
        _check_reduction(reduction)
        if not target_blocks:
            return 0.0
        (*_, losses), _ = self._run(tokens, context_indices, target_blocks, seed, context_lengths)
        return float(losses[KINDS.index(kind) * len(REDUCTIONS) + REDUCTIONS.index(reduction)])

    def objective_parts(self, tokens: Array, context_indices: Array, target_blocks: Sequence[Array], seed: int,
                        context_lengths: Array | None = None) -> ObjectiveParts:
        """The context tokens, the target encoder's tokens (raw and layer-normed) and each block's prediction,
        cut back out of the padded forward."""
        (ctx, grouped, target_tokens, targets, _), blocks = self._run(tokens, context_indices, target_blocks, seed,
                                                                     context_lengths)
        batch, size = context_indices.shape
        predictions = [jnp.asarray(grouped[i, :batch, : b.shape[1]]) for i, b in enumerate(blocks)]
        return ObjectiveParts(jnp.asarray(ctx[:batch, :size]), jnp.asarray(target_tokens[:batch]),
                              jnp.asarray(targets[:batch]), predictions)

    def ema_update(self, context: Mapping[str, Array], target: Mapping[str, Array],
                   momentum: float) -> dict[str, Array]:
        out = ema_update(dict(context), dict(target), momentum)
        return {name: out[name] for name in target}

    def momentum_schedule(self, start: float, end: float, total_steps: int) -> Schedule:
        return MomentumSchedule(start, end, total_steps)

    def lr_schedule(self, start_lr: float, ref_lr: float, final_lr: float, warmup_steps: int,
                    total_steps: int) -> Schedule:
        return WarmupCosineLR(start_lr, ref_lr, final_lr, warmup_steps, total_steps)

    def wd_schedule(self, start: float, end: float, total_steps: int) -> Schedule:
        return CosineWeightDecay(start, end, total_steps)

    def vicreg_variance(self, embeddings: Array, gamma: float, eps: float) -> float:
        regularisers.check_variance_args(gamma, eps)
        z = _host(embeddings)
        return float(_vicreg_variance(jnp.asarray(z.reshape(-1, z.shape[-1]) if z.ndim >= 2 else z), gamma, eps))

    def vicreg_covariance(self, embeddings: Array) -> float:
        z = _host(embeddings)
        return float(_vicreg_covariance(jnp.asarray(z.reshape(-1, z.shape[-1]) if z.ndim >= 2 else z)))

    def sigreg(self, embeddings: Array, directions: Array, knots: Array) -> float:
        regularisers.check_knots(knots)
        z, d, t = _host(embeddings), _host(directions), _host(knots)
        if z.ndim != 2 or d.ndim != 2 or d.shape[0] != z.shape[1] or z.shape[0] < 1 or d.shape[1] < 1:
            raise ValueError(f"embeddings {z.shape} and directions {d.shape}: expected (N, D) and (D, M), N, M >= 1")
        width, count = bucket(z.shape[1], WIDTH), bucket(d.shape[1], DIRECTIONS)
        z = pad_axis(z, width, 1)  # zero features ...
        d = pad_axis(pad_axis(d, width, 0), count, 1)  # ... meet zero rows: the projections are unchanged
        t = pad_axis(t, bucket(t.size, KNOTS), 0, value=t[-1])  # repeated knots add segments of width 0
        valid = np.arange(count) < directions.shape[1]
        return float(_sigreg(jnp.asarray(z), jnp.asarray(d), jnp.asarray(t), jnp.asarray(valid)))

    def sigreg_directions(self, dim: int, num: int, seed: int) -> Array:
        """JAX's own draw (:func:`jepa_jax.regularisers.sigreg_directions`), a function of the three arguments."""
        return regularisers.sigreg_directions(dim, num, seed)


backend = JaxBackend()
"""The backend instance: ``--jepa-backend=jepa_jax.backend:backend``."""

_conforms: Backend = backend  # mypy --strict checks that every member of the protocol is here, correctly typed
