"""Chapter 4 of the spec: the EMA of the target encoder (docs/spec.md, "EMA").

Parameters are paired by name: ``param_pairs`` draws the target's keys in a permutation of the
context's order, with several parameters of one shape, so pairing by position fails these laws.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from .assertions import assert_array_close
from .strategies import FloatArray, momenta, param_pairs

Params = dict[str, FloatArray]


def _update(backend: Any, context: Params, target: Params, m: float) -> Params:
    out = backend.ema_update({k: backend.asarray(v) for k, v in context.items()},
                             {k: backend.asarray(v) for k, v in target.items()}, m)
    assert set(out) == set(target), f"EMA changed the parameter names: {sorted(out)} vs {sorted(target)}"
    return {k: np.asarray(backend.to_numpy(v), dtype=np.float64) for k, v in out.items()}


@given(pair=param_pairs())
def test_momentum_one_keeps_target(backend: Any, pair: tuple[Params, Params]) -> None:
    """m = 1 leaves the target exactly unchanged."""
    context, target = pair
    out = _update(backend, context, target, 1.0)
    for k in target:
        np.testing.assert_array_equal(out[k], target[k], err_msg=f"m=1 moved {k}")


@given(pair=param_pairs())
def test_momentum_zero_copies_context(backend: Any, pair: tuple[Params, Params]) -> None:
    """m = 0 copies the context exactly."""
    context, target = pair
    out = _update(backend, context, target, 0.0)
    for k in context:
        np.testing.assert_array_equal(out[k], context[k], err_msg=f"m=0 did not copy {k}")


@given(pair=param_pairs(), m=momenta)
def test_update_is_the_convex_combination(backend: Any, pair: tuple[Params, Params], m: float) -> None:
    """Each result is m * target + (1 - m) * context and lies between the two."""
    context, target = pair
    out = _update(backend, context, target, m)
    for k in target:
        lo, hi = np.minimum(context[k], target[k]), np.maximum(context[k], target[k])
        slack = 1e-12 * (1.0 + np.abs(hi))
        assert np.all(out[k] >= lo - slack) and np.all(out[k] <= hi + slack), f"{k} left [context, target]"
        assert_array_close(out[k], m * target[k] + (1.0 - m) * context[k], f"EMA formula for {k}", tol=1e-9)


@given(pair=param_pairs(), m=momenta, steps=st.integers(0, 30))
def test_repeated_updates_equal_closed_form(backend: Any, pair: tuple[Params, Params], m: float, steps: int) -> None:
    """k updates toward a fixed context equal m^k * target + (1 - m^k) * context."""
    context, target = pair
    current = {k: v.copy() for k, v in target.items()}
    for _ in range(steps):
        current = _update(backend, context, current, m)
    for k in target:
        expected = m**steps * target[k] + (1.0 - m**steps) * context[k]
        assert_array_close(current[k], expected, f"closed form after {steps} steps for {k}", tol=1e-7)


@given(pair=param_pairs(), m=momenta)
def test_inputs_untouched(backend: Any, pair: tuple[Params, Params], m: float) -> None:
    """The update is pure: the arrays passed in keep their values."""
    context, target = pair
    ctx_in = {k: backend.asarray(v) for k, v in context.items()}
    tgt_in = {k: backend.asarray(v) for k, v in target.items()}
    backend.ema_update(ctx_in, tgt_in, m)
    for k in target:
        np.testing.assert_array_equal(backend.to_numpy(tgt_in[k]), target[k], err_msg=f"target {k} mutated")
        np.testing.assert_array_equal(backend.to_numpy(ctx_in[k]), context[k], err_msg=f"context {k} mutated")
