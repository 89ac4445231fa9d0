"""The torch backend agrees with the numpy reference within 1e-6 in float64, on the same inputs.

Every member with a value both backends define is compared: the loss and its parts, the EMA,
the three schedules. The two objectives use different models (numpy's is a two-layer MLP,
torch's the training transformer), so the torch objective is compared with the *reference's*
loss and layer norm of the torch model's own parts.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from jepa_core.reference import backend as reference
from jepa_torch.conformance.backend import backend as torch_backend
from properties.strategies import (BlockProblem, LRParams, ObjectiveProblem, block_problems, float_arrays,
                                   loss_kinds, lr_params, objective_problems, param_pairs)

TOL = 1e-6


def _both(fn_name: str, *args: object) -> tuple[object, object]:
    def conv(backend: object, a: object) -> object:
        if isinstance(a, np.ndarray):
            return backend.asarray(a)  # type: ignore[attr-defined]
        if isinstance(a, list):
            return [conv(backend, x) for x in a]
        if isinstance(a, dict):
            return {k: conv(backend, v) for k, v in a.items()}
        return a

    return (getattr(reference, fn_name)(*[conv(reference, a) for a in args]),
            getattr(torch_backend, fn_name)(*[conv(torch_backend, a) for a in args]))


@settings(max_examples=100, deadline=None)
@given(p=block_problems(), kind=loss_kinds, reduction=st.sampled_from(["sum", "mean"]))
def test_jepa_loss_agrees(p: BlockProblem, kind: str, reduction: str) -> None:
    ref, tor = _both("jepa_loss", p.predictions, p.targets, p.target_blocks, kind, reduction)
    assert abs(float(ref) - float(tor)) <= TOL * max(1.0, abs(float(ref)))  # type: ignore[arg-type]


@settings(max_examples=100, deadline=None)
@given(data=st.data(), shape=st.tuples(st.integers(1, 4), st.integers(1, 9)), kind=loss_kinds)
def test_rep_loss_and_layer_norm_agree(data: st.DataObject, shape: tuple[int, int], kind: str) -> None:
    t, q = data.draw(float_arrays(shape)), data.draw(float_arrays(shape))
    ref, tor = _both("rep_loss", t, q, kind)
    np.testing.assert_allclose(torch_backend.to_numpy(tor), ref, rtol=TOL, atol=TOL)
    ref, tor = _both("layer_norm", t)
    np.testing.assert_allclose(torch_backend.to_numpy(tor), ref, rtol=TOL, atol=TOL)


@settings(max_examples=100, deadline=None)
@given(pair=param_pairs(), m=st.floats(0.0, 1.0))
def test_ema_agrees(pair: tuple[dict[str, np.ndarray], dict[str, np.ndarray]], m: float) -> None:
    ref, tor = _both("ema_update", pair[0], pair[1], m)
    for k in pair[1]:
        np.testing.assert_allclose(torch_backend.to_numpy(tor[k]), ref[k], rtol=TOL, atol=TOL)  # type: ignore[index]


def test_float64_stays_float64() -> None:
    x = torch_backend.asarray(np.zeros((2, 3)))
    assert str(x.dtype) == "torch.float64"


@settings(max_examples=50, deadline=None)
@given(p=objective_problems(), kind=loss_kinds, reduction=st.sampled_from(["sum", "mean"]))
def test_torch_objective_is_the_reference_loss_of_its_parts(p: ObjectiveProblem, kind: str, reduction: str) -> None:
    """The torch training objective equals the numpy spec's loss and layer norm applied to the torch model's parts."""
    args = (torch_backend.asarray(p.tokens), torch_backend.asarray(p.context_indices),
            [torch_backend.asarray(b) for b in p.target_blocks], p.seed)
    parts = torch_backend.objective_parts(*args)
    targets = reference.layer_norm(torch_backend.to_numpy(parts.target_tokens))
    np.testing.assert_allclose(torch_backend.to_numpy(parts.targets), targets, rtol=TOL, atol=TOL)
    expected = reference.jepa_loss([torch_backend.to_numpy(q) for q in parts.predictions], targets, p.target_blocks,
                                   kind, reduction)  # type: ignore[arg-type]
    got = torch_backend.objective(*args, kind, reduction)  # type: ignore[arg-type]
    assert abs(got - expected) <= TOL * max(1.0, abs(expected)), (got, expected)


@settings(max_examples=100, deadline=None)
@given(p=lr_params(), wd=st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0)), m=st.tuples(st.floats(0.0, 1.0),
       st.floats(0.0, 1.0)).map(sorted), steps=st.lists(st.integers(0, 20_000), min_size=1, max_size=8))
def test_schedules_agree(p: LRParams, wd: tuple[float, float], m: list[float], steps: list[int]) -> None:
    pairs = [(b.lr_schedule(p.start_lr, p.ref_lr, p.final_lr, p.warmup_steps, p.total_steps),
              b.wd_schedule(wd[0], wd[1], p.total_steps), b.momentum_schedule(m[0], m[1], p.total_steps))
             for b in (reference, torch_backend)]
    for step in steps + [0, p.warmup_steps, p.total_steps]:
        for ref, tor in zip(*pairs, strict=True):
            assert abs(float(ref(step)) - float(tor(step))) <= TOL, (step, ref(step), tor(step))
