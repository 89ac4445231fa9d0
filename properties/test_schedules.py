"""Chapter 5 of the spec: schedules as pure functions of the step (docs/spec.md, "Schedules").

Each schedule equals its closed form (``assertions.oracle_*``) at every step drawn: the
landmarks (0, end of warm-up, total), their neighbours, and steps anywhere, so a curve that
is right at its landmarks and wrong between them, or one step early, fails.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from .assertions import assert_close, assert_schedule_close, oracle_lr, oracle_momentum, oracle_wd
from .strategies import EndpointParams, LRParams, lr_params, momentum_params, steps_around, wd_params


def _lr(backend: Any, p: LRParams) -> Any:
    return backend.lr_schedule(p.start_lr, p.ref_lr, p.final_lr, p.warmup_steps, p.total_steps)


# --- every schedule ---------------------------------------------------------------


def _draw_schedule(backend: Any, kind: str, data: st.DataObject) -> tuple[Callable[[], Any], tuple[int, ...]]:
    """A maker of fresh ``kind`` schedules with drawn parameters, and the schedule's landmarks."""
    if kind == "lr":
        p = data.draw(lr_params(), label="lr")
        return partial(_lr, backend, p), (0, p.warmup_steps, p.total_steps)
    q = data.draw(wd_params() if kind == "wd" else momentum_params(), label=kind)
    factory = backend.wd_schedule if kind == "wd" else backend.momentum_schedule
    return partial(factory, q.start, q.end, q.total_steps), (0, q.total_steps)


@pytest.mark.parametrize("kind", ["lr", "wd", "momentum"])
@given(data=st.data())
def test_same_step_same_value(backend: Any, kind: str, data: st.DataObject) -> None:
    """A schedule is a pure function of the step: one value per step, whatever was called
    before and in whatever order, on the same object or a fresh one."""
    make, landmarks = _draw_schedule(backend, kind, data)
    steps = data.draw(steps_around(*landmarks), label="steps")
    schedule = make()
    forward = [schedule(s) for s in steps]
    backward = [schedule(s) for s in reversed(steps)][::-1]
    fresh = [make()(s) for s in steps]
    for s, a, b, c in zip(steps, forward, backward, fresh, strict=True):
        assert a == b == c, f"{kind}({s}) is not a function of the step: {a!r}, then {b!r}, fresh {c!r}"


# --- learning rate ------------------------------------------------------------------


@given(p=lr_params(), data=st.data())
def test_lr_closed_form(backend: Any, p: LRParams, data: st.DataObject) -> None:
    """lr(step) = start + step/warmup · (ref - start) during warm-up, then
    final + (ref - final) · ½(1 + cos(π (step - warmup) / (total - warmup))), then final."""
    lr = _lr(backend, p)
    values = (p.start_lr, p.ref_lr, p.final_lr)
    for step in data.draw(steps_around(0, p.warmup_steps, p.total_steps), label="steps"):
        expected = oracle_lr(step, *values, p.warmup_steps, p.total_steps)
        assert_schedule_close(lr(step), expected, f"lr({step}) of {p}", *values)


@given(p=lr_params())
def test_lr_landmarks(backend: Any, p: LRParams) -> None:
    """LR starts at start_lr, reaches ref_lr when warm-up ends, ends at final_lr."""
    lr = _lr(backend, p)
    assert_close(lr(0), p.start_lr if p.warmup_steps else p.ref_lr, "lr(0)")
    assert_close(lr(p.warmup_steps), p.ref_lr, "lr(end of warm-up)")
    assert_close(lr(p.total_steps), p.final_lr, "lr(total)")
    assert_close(lr(p.total_steps + 7), p.final_lr, "lr after the end")


@given(p=lr_params(), data=st.data())
def test_lr_stays_between_its_landmarks(backend: Any, p: LRParams, data: st.DataObject) -> None:
    """Warm-up moves monotonically from start_lr to ref_lr, decay monotonically from ref_lr
    to final_lr, and each stays between its two ends."""
    lr = _lr(backend, p)
    scale = max(p.start_lr, p.ref_lr, p.final_lr)
    for step in data.draw(steps_around(0, p.warmup_steps, p.total_steps), label="steps"):
        now, after = lr(step), lr(step + 1)
        warm = step < p.warmup_steps
        ends = (p.start_lr, p.ref_lr) if warm else (p.ref_lr, p.final_lr)
        assert min(ends) - 1e-12 <= now <= max(ends) + 1e-12, f"lr({step})={now} outside {ends}"
        towards = ends[1] - ends[0]
        assert (after - now) * towards >= -1e-15 * scale * abs(towards), (
            f"lr moved away from {ends[1]} at step {step}: {now!r} -> {after!r}")


# --- momentum and weight decay ------------------------------------------------------


@given(p=momentum_params(), data=st.data())
def test_momentum_closed_form(backend: Any, p: EndpointParams, data: st.DataObject) -> None:
    """momentum(step) = start + min(step, total) · (end - start) / total."""
    m = backend.momentum_schedule(p.start, p.end, p.total_steps)
    for step in data.draw(steps_around(0, p.total_steps), label="steps"):
        expected = oracle_momentum(step, p.start, p.end, p.total_steps)
        assert_schedule_close(m(step), expected, f"momentum({step}) of {p}", p.start, p.end)


@given(p=momentum_params(), step=st.integers(0, 200_000))
def test_momentum_non_decreasing_to_its_end(backend: Any, p: EndpointParams, step: int) -> None:
    """Momentum never decreases, starts at start and ends (and stays) at end."""
    m = backend.momentum_schedule(p.start, p.end, p.total_steps)
    assert_close(m(0), p.start, "momentum(0)")
    assert m(step) <= m(step + 1), f"momentum decreased at step {step}: {m(step)} > {m(step + 1)}"
    assert p.start - 1e-12 <= m(step) <= p.end + 1e-12
    assert_close(m(p.total_steps), p.end, "momentum(total)")
    assert_close(m(p.total_steps + step), p.end, "momentum after the end")


@given(p=wd_params(), data=st.data())
def test_wd_closed_form(backend: Any, p: EndpointParams, data: st.DataObject) -> None:
    """wd(step) = end + (start - end) · ½(1 + cos(π · min(step, total) / total))."""
    wd = backend.wd_schedule(p.start, p.end, p.total_steps)
    for step in data.draw(steps_around(0, p.total_steps), label="steps"):
        expected = oracle_wd(step, p.start, p.end, p.total_steps)
        assert_schedule_close(wd(step), expected, f"wd({step}) of {p}", p.start, p.end)


@given(p=wd_params(), step=st.integers(0, 200_000))
def test_weight_decay_monotone_between_its_ends(backend: Any, p: EndpointParams, step: int) -> None:
    """Weight decay starts at start, ends at end, and moves monotonically between them."""
    wd = backend.wd_schedule(p.start, p.end, p.total_steps)
    assert_close(wd(0), p.start, "wd(0)")
    assert_close(wd(p.total_steps), p.end, "wd(total)")
    a, b = wd(step), wd(step + 1)
    assert min(p.start, p.end) - 1e-12 <= a <= max(p.start, p.end) + 1e-12
    assert (b - a) * (p.end - p.start) >= -1e-15, f"wd moved away from its end at step {step}"
