"""The JAX backend agrees with the numpy reference and the torch backend within 1e-6 in float64.

Every member with a value the backends share is compared on the same inputs: the loss over target
blocks, the representation losses and layer norm, the EMA, the schedules, the regularisers. The
objective is compared on the *same weights*: the torch backend's model of a seed is moved into
JAX through its official state-dict names (``jepa_torch.io.checkpoint.official_state_dict`` ->
``jepa_jax.state_dict.from_state_dicts``), and the parts and losses of both training forwards
must agree, also with padded contexts. ``python -m tests.test_jax_backend`` prints the largest
differences measured on fixed draws (the figures of docs/backends.md).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest

pytest.importorskip("jax", reason="the JAX backend needs the 'jax' extra: pip install -e '.[jax]'")
pytest.importorskip("equinox", reason="the JAX backend needs the 'jax' extra: pip install -e '.[jax]'")
pytest.importorskip("torch", reason="the agreement with torch needs the 'torch' extra")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from jepa_core.reference import backend as reference  # noqa: E402
from jepa_jax.backend import JaxBackend  # noqa: E402
from jepa_jax.backend import backend as jax_backend  # noqa: E402
from jepa_jax.models import JEPA  # noqa: E402
from jepa_jax.state_dict import from_state_dicts  # noqa: E402
from jepa_torch.conformance.backend import backend as torch_backend  # noqa: E402
from jepa_torch.io.checkpoint import official_state_dict  # noqa: E402
from properties.strategies import (  # noqa: E402
                                   BlockProblem,
                                   LRParams,
                                   ObjectiveProblem,
                                   PaddedContextProblem,
                                   SigregProblem,
                                   block_problems,
                                   embedding_batches,
                                   float_arrays,
                                   loss_kinds,
                                   lr_params,
                                   objective_problems,
                                   padded_context_problems,
                                   param_pairs,
                                   sigreg_problems,
)

TOL = 1e-6
KINDS = ("smooth_l1", "l2", "l1")
REDUCTIONS = ("sum", "mean")
BACKENDS = {"numpy": reference, "torch": torch_backend}


def _conv(backend: Any, a: Any) -> Any:
    if isinstance(a, np.ndarray):
        return backend.asarray(a)
    if isinstance(a, list):
        return [_conv(backend, x) for x in a]
    if isinstance(a, dict):
        return {k: _conv(backend, v) for k, v in a.items()}
    return a


def _call(backend: Any, member: str, *args: Any) -> Any:
    return getattr(backend, member)(*[_conv(backend, a) for a in args])


def _diff(a: Any, b: Any) -> float:
    """The largest absolute difference of two values (numbers or arrays of one shape)."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert x.shape == y.shape, f"shapes differ: {x.shape} vs {y.shape}"
    return float(np.max(np.abs(x - y))) if x.size else 0.0


def _against_others(member: str, *args: Any) -> dict[str, float]:
    """``member`` of the JAX backend against numpy and torch on ``args``: the largest difference with each."""
    mine = jax_backend.to_numpy(_call(jax_backend, member, *args))
    return {name: _diff(mine, b.to_numpy(_call(b, member, *args))) for name, b in BACKENDS.items()}


def _scaled(value: float) -> float:
    return TOL * max(1.0, abs(value))


# --- the members without a model ----------------------------------------------------------


def test_float64_and_int64_stay_wide() -> None:
    assert str(jax_backend.asarray(np.zeros((2, 3))).dtype) == "float64"
    assert str(jax_backend.asarray(np.zeros((2, 3), np.int64)).dtype) == "int64"


@settings(max_examples=100, deadline=None)
@given(p=block_problems(), kind=loss_kinds, reduction=st.sampled_from(REDUCTIONS))
def test_jepa_loss_agrees(p: BlockProblem, kind: str, reduction: str) -> None:
    got = float(_call(jax_backend, "jepa_loss", p.predictions, p.targets, p.target_blocks, kind, reduction))
    for name, other in BACKENDS.items():
        want = float(_call(other, "jepa_loss", p.predictions, p.targets, p.target_blocks, kind, reduction))
        assert abs(got - want) <= _scaled(want), (name, got, want)


@settings(max_examples=100, deadline=None)
@given(data=st.data(), shape=st.tuples(st.integers(1, 4), st.integers(1, 9)), kind=loss_kinds)
def test_rep_loss_and_layer_norm_agree(data: st.DataObject, shape: tuple[int, int], kind: str) -> None:
    t, q = data.draw(float_arrays(shape)), data.draw(float_arrays(shape))
    for name, worst in {**_against_others("rep_loss", t, q, kind), **_against_others("layer_norm", t)}.items():
        assert worst <= TOL, (name, worst)


@settings(max_examples=100, deadline=None)
@given(pair=param_pairs(), m=st.floats(0.0, 1.0))
def test_ema_agrees(pair: tuple[dict[str, np.ndarray], dict[str, np.ndarray]], m: float) -> None:
    mine = _call(jax_backend, "ema_update", pair[0], pair[1], m)
    for name, other in BACKENDS.items():
        theirs = _call(other, "ema_update", pair[0], pair[1], m)
        for k in pair[1]:
            assert _diff(jax_backend.to_numpy(mine[k]), other.to_numpy(theirs[k])) <= TOL, (name, k)


@settings(max_examples=100, deadline=None)
@given(p=lr_params(), wd=st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0)),
       m=st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0)).map(sorted),
       steps=st.lists(st.integers(0, 20_000), min_size=1, max_size=8))
def test_schedules_agree(p: LRParams, wd: tuple[float, float], m: list[float], steps: list[int]) -> None:
    made = [(b.lr_schedule(p.start_lr, p.ref_lr, p.final_lr, p.warmup_steps, p.total_steps),
             b.wd_schedule(wd[0], wd[1], p.total_steps), b.momentum_schedule(m[0], m[1], p.total_steps))
            for b in (jax_backend, reference, torch_backend)]
    for step in steps + [0, p.warmup_steps, p.total_steps]:
        for mine, *others in zip(*made, strict=True):
            for other in others:
                assert abs(mine(step) - other(step)) <= TOL, (step, mine(step), other(step))


@settings(max_examples=100, deadline=None)
@given(z=embedding_batches(), gamma=st.floats(0.0, 3.0), eps=st.sampled_from([1e-4, 0.0]))
def test_vicreg_agrees(z: np.ndarray, gamma: float, eps: float) -> None:
    for member, args in (("vicreg_variance", (z, gamma, eps)), ("vicreg_covariance", (z,))):
        got = _call(jax_backend, member, *args)
        for name, other in BACKENDS.items():
            want = _call(other, member, *args)
            assert abs(got - want) <= _scaled(want), (member, name, got, want)


@settings(max_examples=100, deadline=None)
@given(p=sigreg_problems())
def test_sigreg_agrees(p: SigregProblem) -> None:
    got = _call(jax_backend, "sigreg", p.embeddings, p.directions, p.knots)
    for name, other in BACKENDS.items():
        want = _call(other, "sigreg", p.embeddings, p.directions, p.knots)
        assert abs(got - want) <= _scaled(want), (name, got, want)


# --- the objective, on the same weights -----------------------------------------------------


@functools.lru_cache(maxsize=64)
def _torch_weights(seed: int, num_tokens: int, input_dim: int) -> JEPA:
    """The torch backend's model of ``seed``, moved into JAX by its official state-dict names."""
    model = torch_backend.model(seed, num_tokens, input_dim)
    states = [{k: v.detach().cpu().numpy() for k, v in official_state_dict(m).items()}
              for m in (model.encoder, model.predictor, model.target_encoder)]
    return from_state_dicts(*states, num_heads=3)


class TorchWeights(JaxBackend):
    """The JAX backend computing with the torch backend's weights."""

    name = "jax-with-torch-weights"

    def model(self, seed: int, num_tokens: int, input_dim: int) -> JEPA:
        return _torch_weights(seed, num_tokens, input_dim)


same_weights = TorchWeights()


def _inputs(backend: Any, p: ObjectiveProblem, lengths: np.ndarray | None) -> tuple[list[Any], dict[str, Any]]:
    args = [backend.asarray(p.tokens), backend.asarray(p.context_indices),
            [backend.asarray(b) for b in p.target_blocks], p.seed]
    return args, {} if lengths is None else {"context_lengths": backend.asarray(lengths)}


def objective_differences(p: ObjectiveProblem, lengths: np.ndarray | None = None) -> dict[str, float]:
    """The largest differences of the JAX and torch objectives on one problem, same weights: the context
    tokens (real rows only when padded), target tokens, targets, predictions, and the loss of every kind
    and reduction."""
    mine_args, mine_kw = _inputs(same_weights, p, lengths)
    their_args, their_kw = _inputs(torch_backend, p, lengths)
    mine = same_weights.objective_parts(*mine_args, **mine_kw)
    theirs = torch_backend.objective_parts(*their_args, **their_kw)
    batch, size = p.context_indices.shape
    real = np.arange(size) < (np.full((batch, 1), size) if lengths is None else np.asarray(lengths)[:, None])  # (B, Kc)
    out = {
        "context": _diff(np.asarray(mine.context)[real], torch_backend.to_numpy(theirs.context)[real]),
        "target_tokens": _diff(mine.target_tokens, torch_backend.to_numpy(theirs.target_tokens)),
        "targets": _diff(mine.targets, torch_backend.to_numpy(theirs.targets)),
        "predictions": max((_diff(a, torch_backend.to_numpy(b))
                            for a, b in zip(mine.predictions, theirs.predictions, strict=True)), default=0.0),
    }
    for kind in KINDS:
        for reduction in REDUCTIONS:
            got = same_weights.objective(*mine_args, kind, reduction, **mine_kw)
            want = torch_backend.objective(*their_args, kind, reduction, **their_kw)
            out[f"loss {kind} {reduction}"] = abs(got - want) / max(1.0, abs(want))
    return out


@settings(max_examples=40, deadline=None)
@given(p=objective_problems())
def test_objective_agrees_with_torch_on_the_same_weights(p: ObjectiveProblem) -> None:
    """Parts and losses of the JAX training forward equal torch's on torch's weights (relative for losses)."""
    for what, worst in objective_differences(p).items():
        assert worst <= TOL, (what, worst)


@settings(max_examples=25, deadline=None)
@given(r=padded_context_problems())
def test_padded_objective_agrees_with_torch_on_the_same_weights(r: PaddedContextProblem) -> None:
    """With contexts of unequal length padded into one batch, the real rows agree too."""
    for what, worst in objective_differences(r.problem, r.lengths).items():
        assert worst <= TOL, (what, worst)


@settings(max_examples=40, deadline=None)
@given(p=objective_problems(), kind=loss_kinds, reduction=st.sampled_from(REDUCTIONS))
def test_jax_objective_is_the_reference_loss_of_its_parts(p: ObjectiveProblem, kind: str, reduction: str) -> None:
    """The JAX training objective (its own weights) equals the numpy spec's loss and layer norm of its parts."""
    args, _ = _inputs(jax_backend, p, None)
    parts = jax_backend.objective_parts(*args)
    targets = reference.layer_norm(jax_backend.to_numpy(parts.target_tokens))
    assert _diff(jax_backend.to_numpy(parts.targets), targets) <= TOL
    expected = reference.jepa_loss([jax_backend.to_numpy(q) for q in parts.predictions], targets, p.target_blocks,
                                   kind, reduction)
    got = jax_backend.objective(*args, kind, reduction)
    assert abs(got - expected) <= _scaled(expected), (got, expected)


def test_the_same_weights_are_the_torch_weights() -> None:
    """Moving torch's weights by name changes no value: the JAX state dicts equal torch's, bit for bit."""
    from jepa_jax.state_dict import state_dicts

    model = torch_backend.model(3, 6, 2)
    moved = state_dicts(_torch_weights(3, 6, 2))
    for part in ("encoder", "predictor", "target_encoder"):
        theirs = {k: v.detach().numpy() for k, v in official_state_dict(getattr(model, part)).items()}
        assert sorted(moved[part]) == sorted(theirs), part
        for name, value in theirs.items():
            np.testing.assert_array_equal(moved[part][name], value, err_msg=f"{part}.{name}")


# --- the figures of docs/backends.md ---------------------------------------------------------


def agreement_figures(examples: int = 100) -> dict[str, dict[str, float]]:
    """The largest differences of the JAX backend with numpy and torch over ``examples`` derandomised draws of
    each strategy of the law suite (every kind and reduction for the losses): absolute, except the
    objective's losses, relative to ``max(1, |loss|)`` as the tests compare them."""
    from hypothesis import HealthCheck

    table: dict[str, dict[str, float]] = {}
    draws = settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                     suppress_health_check=list(HealthCheck))

    def record(row: str, values: dict[str, float]) -> None:
        for col, v in values.items():
            table.setdefault(row, {})[col] = max(table.get(row, {}).get(col, 0.0), v)

    @draws
    @given(p=block_problems(), kind=loss_kinds, reduction=st.sampled_from(REDUCTIONS))
    def losses(p: BlockProblem, kind: str, reduction: str) -> None:
        record("jepa_loss", _against_others("jepa_loss", p.predictions, p.targets, p.target_blocks, kind, reduction))
        if p.target_blocks:
            record("rep_loss", _against_others("rep_loss", p.targets, p.targets[::-1].copy(), kind))
        record("layer_norm", _against_others("layer_norm", p.targets))

    @draws
    @given(z=embedding_batches(), q=sigreg_problems())
    def regularisers(z: np.ndarray, q: SigregProblem) -> None:
        record("vicreg_variance", _against_others("vicreg_variance", z, 1.0, 1e-4))
        record("vicreg_covariance", _against_others("vicreg_covariance", z))
        record("sigreg", _against_others("sigreg", q.embeddings, q.directions, q.knots))

    @draws
    @given(pair=param_pairs(), m=st.floats(0.0, 1.0))
    def ema(pair: tuple[dict[str, np.ndarray], dict[str, np.ndarray]], m: float) -> None:
        mine = _call(jax_backend, "ema_update", pair[0], pair[1], m)
        for name, other in BACKENDS.items():
            theirs = _call(other, "ema_update", pair[0], pair[1], m)
            record("ema_update", {name: max(_diff(jax_backend.to_numpy(mine[k]), other.to_numpy(theirs[k]))
                                            for k in pair[1])})

    @draws
    @given(p=lr_params(), steps=st.lists(st.integers(0, 20_000), min_size=1, max_size=8))
    def schedules(p: LRParams, steps: list[int]) -> None:
        for name, other in BACKENDS.items():
            pairs = [(b.lr_schedule(p.start_lr, p.ref_lr, p.final_lr, p.warmup_steps, p.total_steps),
                      b.wd_schedule(p.start_lr, p.ref_lr, p.total_steps), b.momentum_schedule(0.996, 1.0, p.total_steps))
                     for b in (jax_backend, other)]
            for row, (mine, theirs) in zip(("lr_schedule", "wd_schedule", "momentum_schedule"), zip(*pairs), strict=True):
                record(row, {name: max(abs(mine(s) - theirs(s)) for s in steps + [0, p.warmup_steps, p.total_steps])})

    @draws
    @given(p=objective_problems(min_blocks=1), r=padded_context_problems())
    def objective(p: ObjectiveProblem, r: PaddedContextProblem) -> None:
        for what, v in objective_differences(p).items():
            record(f"objective: {what}", {"torch": v})
        for what, v in objective_differences(r.problem, r.lengths).items():
            record(f"padded contexts: {what}", {"torch": v})

    for run in (losses, regularisers, ema, schedules, objective):
        run()
    return table


if __name__ == "__main__":
    figures = agreement_figures()
    print(f"{'largest difference':<44} {'vs numpy':>9} {'vs torch':>9}")
    for row, cols in figures.items():
        numpy_col = f"{cols['numpy']:.1e}" if "numpy" in cols else "-"
        print(f"{row:<44} {numpy_col:>9} {cols['torch']:>9.1e}")
