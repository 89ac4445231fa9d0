"""Unit tests of jepa_core itself: the generic formal loss, validation, isolation."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jepa_core as jc

vectors = st.lists(st.floats(-5, 5), min_size=3, max_size=3).map(np.array)
tables = st.dictionaries(st.integers(0, 9), vectors, min_size=10, max_size=10)
index_lists = st.lists(st.integers(0, 9), max_size=8)


def _formal(idx: list[int], table: dict[int, np.ndarray], shift: float = 0.5) -> float:
    return jc.jepa_loss(idx, shift, table.__getitem__, lambda c, i: table[i] * 0.5 + c, jc.representation_loss)


@settings(max_examples=100, deadline=None)
@given(xs=index_lists, ys=index_lists, table=tables)
def test_formal_loss_laws(xs: list[int], ys: list[int], table: dict[int, np.ndarray]) -> None:
    """jepaLoss_nil, _append and _reverse on the generic definition (repeated indices allowed)."""
    assert _formal([], table) == 0.0
    assert math.isclose(_formal(xs + ys, table), _formal(xs, table) + _formal(ys, table), rel_tol=1e-12, abs_tol=1e-12)
    assert math.isclose(_formal(xs[::-1], table), _formal(xs, table), rel_tol=1e-12, abs_tol=1e-12)


def test_formal_loss_sums_in_the_given_order() -> None:
    calls: list[int] = []
    jc.jepa_loss([3, 1, 2], None, lambda i: float(i), lambda c, i: calls.append(i) or 0.0, lambda t, p: abs(t - p))
    assert calls == [3, 1, 2]
    assert jc.jepa_loss([3, 1, 2], None, lambda i: float(i), lambda c, i: 0.0, lambda t, p: abs(t - p)) == 6.0


def test_smooth_l1_matches_huber_definition() -> None:
    t = np.zeros(4)
    p = np.array([0.5, -0.5, 2.0, -3.0])
    assert jc.smooth_l1(t, p) == pytest.approx(0.125 + 0.125 + 1.5 + 2.5)
    assert jc.smooth_l1(t, p, beta=4.0) == pytest.approx(sum(0.5 * v * v / 4.0 for v in p))
    assert jc.squared_l2(t, p) == pytest.approx(0.25 + 0.25 + 4.0 + 9.0)


def test_layer_norm_zero_mean_unit_variance() -> None:
    x = np.random.default_rng(0).normal(3.0, 5.0, (4, 16))
    y = jc.layer_norm(x)
    np.testing.assert_allclose(y.mean(-1), 0.0, atol=1e-12)
    np.testing.assert_allclose(y.var(-1), 1.0, rtol=1e-5)


def test_mean_normalisation_equals_elementwise_mean() -> None:
    """sum = Huber (beta 1) of every selected (sample, position, feature), by an explicit loop over
    rows that differ and a repeated position; mean = sum / (target tokens x D)."""
    rng = np.random.default_rng(1)
    targets = rng.normal(size=(2, 10, 4))
    blocks = [np.stack([rng.permutation(10)[:3] for _ in range(2)]), rng.integers(0, 10, size=(2, 5))]
    blocks[1][1, 4] = blocks[1][1, 0]
    preds = [rng.normal(size=(2, b.shape[1], 4)) for b in blocks]
    total, terms = 0.0, 0
    for pred, block in zip(preds, blocks, strict=True):
        for b in range(2):
            for j, pos in enumerate(block[b]):
                for f in range(4):
                    d = abs(float(pred[b, j, f]) - float(targets[b, pos, f]))
                    total += 0.5 * d * d if d < 1.0 else d - 0.5
                    terms += 1
    assert terms == 2 * (3 + 5) * 4
    assert jc.jepa_loss_blocks(preds, targets, blocks, reduction="sum") == pytest.approx(total, rel=1e-12)
    assert jc.jepa_loss_blocks(preds, targets, blocks, reduction="mean") == pytest.approx(total / terms, rel=1e-12)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: jc.WarmupCosineLR(0.0, 1e-3, 1e-6, warmup_steps=10, total_steps=10), "warmup_steps"),
        (lambda: jc.WarmupCosineLR(-1.0, 1e-3, 1e-6, warmup_steps=1, total_steps=10), "start_lr"),
        (lambda: jc.MomentumSchedule(0.999, 0.99, 10), "must not decrease"),
        (lambda: jc.MomentumSchedule(0.996, 1.5, 10), "outside [0, 1]"),
        (lambda: jc.CosineWeightDecay(0.04, 0.4, total_steps=0), "total_steps"),
        (lambda: jc.ema_update({"a": np.zeros(2)}, {"b": np.zeros(2)}), "differ"),
        (lambda: jc.ema_update({"a": np.zeros(2)}, {"a": np.zeros(3)}), "shape"),
        (lambda: jc.gather_tokens(np.zeros((1, 4, 2)), np.array([[4]])), "out of range"),
        (lambda: jc.elementwise_loss(np.zeros(2), np.zeros(3)), "shape"),
    ],
)
def test_bad_arguments_name_the_culprit(make: object, message: str) -> None:
    with pytest.raises((ValueError, KeyError, IndexError), match=message.replace("[", r"\[").replace("]", r"\]")):
        make()  # type: ignore[operator]


def test_official_momentum_line() -> None:
    """The official code's momentum after i of T steps: 0.996 + i * 0.004 / T."""
    m = jc.MomentumSchedule(0.996, 1.0, total_steps=300)
    assert m(150) == pytest.approx(0.998)
    assert m(300) == 1.0 and m(10_000) == 1.0


def test_import_does_not_pull_in_frameworks() -> None:
    code = "import sys, jepa_core, jepa_core.reference; bad = [m for m in ('torch', 'jax', 'tensorflow') if m in sys.modules]; assert not bad, bad"
    subprocess.run([sys.executable, "-c", code], check=True)
