"""One jit-compiled JEPA training step: loss, gradients, AdamW, then the EMA of the target encoder.

    tokens, context masks [Mx x (B, Kc)], target masks [Mt x (B, Kt)]
      -> target encoder on every token (stop_gradient), layer-norm, gather targets
      -> context encoder on the context tokens -> predictor with mask tokens at the target positions
      -> loss (smooth-L1 mean by default) -> gradients of the encoder and predictor
      -> AdamW (optax), learning rate and weight decay from their schedules at the optimiser's step
      -> EMA of the target encoder toward the encoder, momentum from its schedule at the same step

The optimiser is ``optax.adamw`` under ``optax.inject_hyperparams``: its learning rate and weight
decay are :mod:`jepa_jax.schedules` evaluated at the optimiser's count inside the compiled step, and
the values used sit in ``opt_state.hyperparams``. As in the official code (and
``jepa_torch.training.optim``), weight decay applies to weights of rank >= 2 and never to biases or 1-D
parameters, and the fixed position tables are not trained (:func:`jepa_jax.models.trainable`).
``optax.adamw`` decays by ``lr * wd * p`` alongside the Adam step, which is ``torch.optim.AdamW``'s
update: the two agree to rounding.

Shapes are static under ``jax.jit``: pass masks padded to fixed sizes with their validity
(:func:`jepa_jax.padding.pad_masks`, ``context_valid`` and ``target_valid``) and the step compiles once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jax import Array

from jepa_core.loss import Reduction
from jepa_core.representation import LossKind

from .ema import ema_update
from .models import FIXED, JEPA, path_names, trainable
from .schedules import CosineWeightDecay, MomentumSchedule, WarmupCosineLR

__all__ = ["StepResult", "TrainState", "decay_mask", "init_state", "make_optimizer", "target_update",
           "train_step", "value_and_grad"]


def decay_mask(params: Any) -> Any:
    """True where AdamW decays: every parameter but biases and 1-D ones (``jepa_torch.training.optim.param_groups``)."""
    def decays(path: Sequence[Any], leaf: Any) -> bool:
        return not (path_names(path)[-1] == "bias" or jnp.ndim(leaf) == 1)

    return jax.tree_util.tree_map_with_path(decays, params)


def make_optimizer(lr: WarmupCosineLR, weight_decay: CosineWeightDecay, betas: tuple[float, float] = (0.9, 0.999),
                   eps: float = 1e-8) -> optax.GradientTransformationExtraArgs:
    """AdamW with its learning rate and weight decay read from the schedules at each step.

    Args:
        lr: the learning-rate schedule.
        weight_decay: the weight-decay schedule (of the decayed parameters, :func:`decay_mask`).
        betas: Adam's betas (official: torch's defaults).
        eps: Adam's epsilon (torch's default).
    """
    return optax.inject_hyperparams(optax.adamw, static_args=("mask",))(
        learning_rate=lr.at, weight_decay=weight_decay.at, b1=betas[0], b2=betas[1], eps=eps, mask=decay_mask)


class TrainState(eqx.Module):
    """What a run carries from step to step: the networks, the optimiser's state and the step count."""

    model: JEPA
    opt_state: Any
    step: Array


class StepResult(eqx.Module):
    """What one step reports (0-d arrays): the loss before the update and the values the step used."""

    loss: Array
    lr: Array
    weight_decay: Array
    momentum: Array


def init_state(model: JEPA, optimizer: optax.GradientTransformation) -> TrainState:
    """The state at step 0: ``model``, a fresh optimiser state over its trainable parameters."""
    params = eqx.filter(model, trainable(model))
    return TrainState(model, optimizer.init(params), jnp.zeros((), jnp.int64))


@eqx.filter_jit
def value_and_grad(model: JEPA, x: Array, context_masks: Sequence[Array], target_masks: Sequence[Array],
                   kind: LossKind = "smooth_l1", reduction: Reduction = "mean", context_valid: Array | None = None,
                   target_valid: Sequence[Array] | None = None) -> tuple[Array, JEPA]:
    """The training loss (:meth:`JEPA.loss`) and its gradient with respect to the trainable parameters.

    Returns:
        ``(loss, grads)``: ``grads`` is shaped like ``model``, None where nothing is trained (the target
        encoder, the position tables); :func:`jepa_jax.state_dict.state_dict` names its arrays.
    """
    params, static = eqx.partition(model, trainable(model))

    def loss(p: JEPA) -> Array:
        whole: JEPA = eqx.combine(p, static)
        return whole.loss(x, context_masks, target_masks, kind, reduction, context_valid, target_valid)

    value: Array
    grads: JEPA
    value, grads = jax.value_and_grad(loss)(params)
    return value, grads


def target_update(model: JEPA, momentum: float | Array) -> JEPA:
    """``model`` with its target encoder moved by one EMA step toward the encoder (the position tables,
    equal in both, are left alone, as ``jepa_torch.models.ema.update_target_encoder_`` leaves their values)."""
    def moving(encoder: Any) -> Any:
        return jax.tree_util.tree_map_with_path(
            lambda path, leaf: eqx.is_array(leaf) and path_names(path)[-1] not in FIXED, encoder)

    spec = moving(model.target_encoder)
    moved = ema_update(eqx.filter(model.encoder, spec), eqx.filter(model.target_encoder, spec), momentum)
    target = eqx.combine(moved, eqx.filter(model.target_encoder, spec, inverse=True))
    out: JEPA = eqx.tree_at(lambda m: m.target_encoder, model, target)
    return out


@eqx.filter_jit
def train_step(state: TrainState, optimizer: optax.GradientTransformation, momentum: MomentumSchedule, x: Array,
               context_masks: Sequence[Array], target_masks: Sequence[Array], kind: LossKind = "smooth_l1",
               context_valid: Array | None = None,
               target_valid: Sequence[Array] | None = None) -> tuple[TrainState, StepResult]:
    """One optimisation step of the encoder and predictor (mean loss), then the EMA of the target encoder.

    Args:
        state: the networks, optimiser state and step.
        optimizer: from :func:`make_optimizer` (build it once: it is part of what the compilation is keyed on).
        momentum: the EMA momentum schedule, read at ``state.step``.
        x: inputs ``(B, N, F)`` (sequences) or ``(B, C, H, W)`` (images).
        context_masks, target_masks: index arrays ``(B, K)``.
        kind: the representation loss.
        context_valid, target_valid: validity of padded masks (see :class:`jepa_jax.models.JEPA`).

    Returns:
        The next state and the step's :class:`StepResult`.
    """
    loss, grads = value_and_grad(state.model, x, context_masks, target_masks, kind, "mean", context_valid,
                                 target_valid)
    params, static = eqx.partition(state.model, trainable(state.model))
    updates, opt_state = optimizer.update(grads, state.opt_state, params)
    model = eqx.combine(optax.apply_updates(params, updates), static)
    m = momentum.at(state.step)
    model = target_update(model, m)
    hyper = opt_state.hyperparams  # the values this update used (the schedules at the optimiser's count)
    result = StepResult(loss, hyper["learning_rate"], hyper["weight_decay"], m)
    return TrainState(model, opt_state, state.step + 1), result
