"""The jit-compiled JAX training step equals torch's, on the same weights, in float64.

One model, drawn by the torch backend and moved into JAX through its official state-dict names,
takes the same steps in both frameworks: the loss, the gradient of every trained parameter
(``jepa_jax.step.value_and_grad`` against torch's autograd), then AdamW with scheduled learning
rate and weight decay (optax against ``jepa_torch.training.optim``) and the EMA of the target encoder
(against ``jepa_torch.models.ema``), step after step. Masks padded to static sizes give the very loss
and gradients of the unpadded ones, so one compiled step serves batches of changing mask lengths.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("jax", reason="the JAX training step needs the 'jax' extra: pip install -e '.[jax]'")
pytest.importorskip("equinox", reason="the JAX training step needs the 'jax' extra: pip install -e '.[jax]'")
pytest.importorskip("optax", reason="the JAX training step needs the 'jax' extra: pip install -e '.[jax]'")
torch = pytest.importorskip("torch", reason="the comparison with torch needs the 'torch' extra")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from jepa_jax import step as jax_step  # noqa: E402
from jepa_jax.models import JEPA, path_names  # noqa: E402
from jepa_jax.padding import pad_masks  # noqa: E402
from jepa_jax.schedules import CosineWeightDecay, MomentumSchedule, WarmupCosineLR  # noqa: E402
from jepa_jax.state_dict import from_state_dicts, state_dict  # noqa: E402
from jepa_jax.vit import context_valid  # noqa: E402
from jepa_torch.conformance.backend import backend as torch_backend  # noqa: E402
from jepa_torch.io.checkpoint import official_state_dict  # noqa: E402
from jepa_torch.models.ema import update_target_encoder_  # noqa: E402
from jepa_torch.objectives.loss import grouped_prediction_loss  # noqa: E402
from jepa_torch.training.optim import apply_schedules, make_optimizer  # noqa: E402

TOL = 1e-6
LR = WarmupCosineLR(1e-4, 1e-3, 1e-6, warmup_steps=2, total_steps=10)
WD = CosineWeightDecay(0.04, 0.4, total_steps=10)
MOMENTUM = MomentumSchedule(0.9, 1.0, total_steps=10)


def _numpy(module: Any) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in official_state_dict(module).items()}


def _problem(seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Tokens ``(3, 8, 2)``, a context ``(3, 4)`` and three target blocks of two lengths (two predictor groups)."""
    rng = np.random.default_rng(seed)
    tokens = rng.standard_normal((3, 8, 2))
    context = np.stack([rng.permutation(8)[:4] for _ in range(3)])
    blocks = [np.stack([rng.permutation(8)[:k] for _ in range(3)]) for k in (3, 1, 3)]
    return tokens, context, blocks


def _jax_model(model: Any) -> JEPA:
    return from_state_dicts(_numpy(model.encoder), _numpy(model.predictor), _numpy(model.target_encoder), num_heads=3)


def _torch_loss(model: Any, tokens: np.ndarray, context: np.ndarray, blocks: list[np.ndarray], kind: str) -> Any:
    predictions, targets, _ = model(torch.from_numpy(tokens), [torch.from_numpy(context)],
                                    [torch.from_numpy(b) for b in blocks])
    return grouped_prediction_loss(predictions, targets, kind, "mean")  # type: ignore[arg-type]


def _torch_grads(model: Any) -> dict[str, np.ndarray]:
    return {f"{part}.{name}": p.grad.numpy().copy()
            for part in ("encoder", "predictor") for name, p in getattr(model, part).named_parameters()
            if p.requires_grad}


def _jax_named(grads: JEPA) -> dict[str, np.ndarray]:
    return {f"{part}.{name}": v for part in ("encoder", "predictor")
            for name, v in state_dict(getattr(grads, part)).items()}


def _worst(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    assert sorted(a) == sorted(b), sorted(set(a) ^ set(b))
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in a)


@pytest.mark.parametrize("kind", ["smooth_l1", "l2"])
def test_gradient_equals_torch_autograd(kind: str) -> None:
    """The compiled gradient of the mean training loss equals torch's, name by name, for every trained parameter
    (and only those: not the target encoder, not the fixed position tables)."""
    model = torch_backend.model(11, 8, 2)
    tokens, context, blocks = _problem()
    loss, grads = jax_step.value_and_grad(_jax_model(model), jnp.asarray(tokens), [jnp.asarray(context)],
                                          [jnp.asarray(b) for b in blocks], kind)
    expected = _torch_loss(model, tokens, context, blocks, kind)
    expected.backward()
    assert abs(float(loss) - expected.item()) <= TOL * max(1.0, abs(expected.item()))
    mine, theirs = _jax_named(grads), _torch_grads(model)
    assert "encoder.pos_embed" not in mine and "predictor.predictor_pos_embed" not in mine
    assert state_dict(grads.target_encoder) == {}
    assert _worst(mine, theirs) <= TOL
    assert max(float(np.max(np.abs(v))) for v in theirs.values()) > 1e-3  # the comparison is not of zeros


def step_differences(steps: int = 3, seed: int = 5) -> list[dict[str, float]]:
    """Run ``steps`` compiled JAX steps and the same torch steps from one model: per step, the largest
    differences of the loss, of the gradients (before the step) and of each network's weights (after it)."""
    model = torch_backend.model(seed, 8, 2)
    state = jax_step.init_state(_jax_model(model), optimizer := jax_step.make_optimizer(LR, WD))
    torch_opt = make_optimizer([model.encoder, model.predictor], lr=LR(0), weight_decay=WD(0))
    out = []
    for step in range(steps):
        tokens, context, blocks = _problem(step)
        x, ctx, tgt = jnp.asarray(tokens), [jnp.asarray(context)], [jnp.asarray(b) for b in blocks]
        _, grads = jax_step.value_and_grad(state.model, x, ctx, tgt)
        state, result = jax_step.train_step(state, optimizer, MOMENTUM, x, ctx, tgt)
        torch_opt.zero_grad()
        apply_schedules(torch_opt, LR(step), WD(step))
        loss = _torch_loss(model, tokens, context, blocks, "smooth_l1")
        loss.backward()
        row = {"loss": abs(float(result.loss) - loss.item()), "gradients": _worst(_jax_named(grads), _torch_grads(model))}
        torch_opt.step()
        update_target_encoder_(model.target_encoder, model.encoder, MOMENTUM(step))
        for part in ("encoder", "predictor", "target_encoder"):
            row[part] = _worst(state_dict(getattr(state.model, part)), _numpy(getattr(model, part)))
        out.append(row)
    return out


def test_steps_equal_torch_adamw_and_ema() -> None:
    """Three compiled steps (AdamW with scheduled lr and weight decay, then the EMA with scheduled momentum) leave
    the encoder, predictor and target encoder equal to torch's after each of the same three steps."""
    for step, row in enumerate(step_differences()):
        for what, worst in row.items():
            assert worst <= TOL, (step, what, worst)


def test_the_step_reports_and_moves_what_it_should() -> None:
    """The step counts, reports this step's scheduled values, and the EMA target trails the encoder."""
    state = jax_step.init_state(_jax_model(torch_backend.model(5, 8, 2)), optimizer := jax_step.make_optimizer(LR, WD))
    for step in range(3):
        tokens, context, blocks = _problem(step)
        state, result = jax_step.train_step(state, optimizer, MOMENTUM, jnp.asarray(tokens), [jnp.asarray(context)],
                                            [jnp.asarray(b) for b in blocks])
        assert (float(result.lr), float(result.weight_decay), float(result.momentum)) == pytest.approx(
            (LR(step), WD(step), MOMENTUM(step)), rel=1e-12)
        assert np.isfinite(float(result.loss))
    assert int(state.step) == 3
    moved = _worst(state_dict(state.model.encoder), state_dict(state.model.target_encoder))
    assert moved > 1e-6  # the encoder moved and the target followed only part of the way
    fixed = state_dict(state.model.encoder)["pos_embed"]
    np.testing.assert_array_equal(fixed, _numpy(torch_backend.model(5, 8, 2).encoder)["pos_embed"])


def test_weight_decay_spares_biases_and_norms() -> None:
    """AdamW decays exactly the parameters torch's param groups decay: not biases, not 1-D parameters."""
    model = torch_backend.model(1, 8, 2)
    mask = jax_step.decay_mask(_jax_model(model))
    decayed = {".".join(path_names(path)) for path, keep in jax.tree_util.tree_leaves_with_path(mask)
               if keep and path_names(path)[0] != "target_encoder"}
    expected = {f"{part}.{name}" for part in ("encoder", "predictor")
                for name, p in getattr(model, part).named_parameters()
                if p.requires_grad and not (name.endswith(".bias") or p.ndim == 1)}
    assert decayed - {"encoder.pos_embed", "predictor.predictor_pos_embed"} == expected


def test_padded_masks_give_the_unpadded_loss_and_gradient() -> None:
    """Context and target masks padded to static sizes (with their validity) change neither the loss nor any
    gradient: padding is never attended to and never counted."""
    model = _jax_model(torch_backend.model(2, 8, 2))
    tokens, context, blocks = _problem(4)
    x = jnp.asarray(tokens)
    loss, grads = jax_step.value_and_grad(model, x, [jnp.asarray(context)], [jnp.asarray(b) for b in blocks])
    indices, valid = pad_masks(blocks, size=4, count=4)  # (4, B, 4): a fourth, empty block
    ctx, ctx_valid = pad_masks([context], size=6)
    padded_loss, padded_grads = jax_step.value_and_grad(
        model, x, [jnp.asarray(ctx[0])], [jnp.asarray(m) for m in indices], "smooth_l1", "mean",
        jnp.asarray(ctx_valid[0]), [jnp.asarray(v) for v in valid])
    assert abs(float(padded_loss) - float(loss)) <= 1e-12
    assert _worst(_jax_named(padded_grads), _jax_named(grads)) <= 1e-12


def test_whole_contexts_match_torch() -> None:
    """Contexts of unequal length padded into one batch (``context_valid``) give torch's loss and gradient."""
    model = torch_backend.model(8, 8, 2)
    tokens, context, blocks = _problem(6)
    lengths = np.array([4, 2, 3])
    loss, grads = jax_step.value_and_grad(_jax_model(model), jnp.asarray(tokens), [jnp.asarray(context)],
                                          [jnp.asarray(b) for b in blocks], "l2", "mean",
                                          context_valid([jnp.asarray(lengths)], 4))
    from jepa_torch.models.vit import context_valid as torch_valid

    predictions, targets, _ = model(torch.from_numpy(tokens), [torch.from_numpy(context)],
                                    [torch.from_numpy(b) for b in blocks],
                                    torch_valid([torch.from_numpy(lengths)], 4))
    expected = grouped_prediction_loss(predictions, targets, "l2", "mean")
    expected.backward()
    assert abs(float(loss) - expected.item()) <= TOL
    assert _worst(_jax_named(grads), _torch_grads(model)) <= TOL


if __name__ == "__main__":
    print(f"{'step':<5} " + " ".join(f"{k:>15}" for k in ("loss", "gradients", "encoder", "predictor", "target_encoder")))
    for i, row in enumerate(step_differences()):
        print(f"{i:<5} " + " ".join(f"{v:>15.1e}" for v in row.values()))
