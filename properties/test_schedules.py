"""Chapter 5 of the spec: schedules as pure functions of the step (docs/spec.md, "Schedules")."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from assertions import assert_close
from strategies import LRParams, lr_params

momentum_pairs = st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0)).map(sorted)
totals = st.integers(1, 100_000)


@given(p=lr_params(), step=st.integers(0, 20_000))
def test_same_step_same_value(backend: Any, p: LRParams, step: int) -> None:
    """A schedule is a function of the step: two calls, two fresh objects, one value."""
    a = backend.lr_schedule(p.start_lr, p.ref_lr, p.final_lr, p.warmup_steps, p.total_steps)
    b = backend.lr_schedule(p.start_lr, p.ref_lr, p.final_lr, p.warmup_steps, p.total_steps)
    later = a(step + 1)
    assert a(step) == a(step) == b(step), "lr schedule is not a pure function of the step"
    assert a(step + 1) == later


@given(p=lr_params())
def test_lr_landmarks(backend: Any, p: LRParams) -> None:
    """LR starts at start_lr, reaches ref_lr when warm-up ends, ends at final_lr."""
    lr = backend.lr_schedule(p.start_lr, p.ref_lr, p.final_lr, p.warmup_steps, p.total_steps)
    assert_close(lr(0), p.start_lr if p.warmup_steps else p.ref_lr, "lr(0)")
    assert_close(lr(p.warmup_steps), p.ref_lr, "lr(end of warm-up)")
    assert_close(lr(p.total_steps), p.final_lr, "lr(total)")
    assert_close(lr(p.total_steps + 7), p.final_lr, "lr after the end")


@given(p=lr_params(), step=st.integers(0, 20_000))
def test_lr_stays_between_its_landmarks(backend: Any, p: LRParams, step: int) -> None:
    """Warm-up is monotone toward ref_lr, and decay stays between ref_lr and final_lr."""
    lr = backend.lr_schedule(p.start_lr, p.ref_lr, p.final_lr, p.warmup_steps, p.total_steps)
    v = lr(step)
    ends = (p.start_lr, p.ref_lr) if step < p.warmup_steps else (p.ref_lr, p.final_lr)
    assert min(ends) - 1e-12 <= v <= max(ends) + 1e-12, f"lr({step})={v} outside {ends}"


@given(pair=momentum_pairs, total=totals, step=st.integers(0, 200_000))
def test_momentum_non_decreasing_to_its_end(backend: Any, pair: list[float], total: int, step: int) -> None:
    """Momentum never decreases, starts at start and ends (and stays) at end."""
    start, end = pair
    m = backend.momentum_schedule(start, end, total)
    assert_close(m(0), start, "momentum(0)")
    assert m(step) <= m(step + 1), f"momentum decreased at step {step}: {m(step)} > {m(step + 1)}"
    assert start - 1e-12 <= m(step) <= end + 1e-12
    assert_close(m(total), end, "momentum(total)")
    assert_close(m(total + step), end, "momentum after the end")


@given(pair=st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0)), total=totals, step=st.integers(0, 200_000))
def test_weight_decay_cosine(backend: Any, pair: tuple[float, float], total: int, step: int) -> None:
    """Weight decay starts at start, ends at end, and moves monotonically between them."""
    start, end = pair
    wd = backend.wd_schedule(start, end, total)
    assert_close(wd(0), start, "wd(0)")
    assert_close(wd(total), end, "wd(total)")
    a, b = wd(step), wd(step + 1)
    assert min(start, end) - 1e-12 <= a <= max(start, end) + 1e-12
    assert (b - a) * (end - start) >= -1e-15, f"wd moved away from its end at step {step}"
