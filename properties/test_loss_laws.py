"""Chapter 1 of the spec: the JEPA loss and its laws (docs/spec.md, "Loss").

Each test is named after the TorchLean theorem it mirrors where there is one
(``NN.MLTheory.SelfSupervised.JEPA``); the others are laws of this spec.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import example, given
from hypothesis import strategies as st

from .assertions import assert_array_close, assert_close, oracle_block_loss, oracle_elementwise, oracle_layer_norm
from .strategies import BlockProblem, block_problems, feature_shapes, float_arrays, loss_kinds


def _loss(backend: Any, p: BlockProblem, kind: str, reduction: str = "sum",
          order: list[int] | None = None, targets: Any = None) -> float:
    order = list(range(len(p.target_blocks))) if order is None else order
    tg = p.targets if targets is None else targets
    return float(backend.jepa_loss(
        [backend.asarray(p.predictions[i]) for i in order],
        backend.asarray(tg),
        [backend.asarray(p.target_blocks[i]) for i in order],
        kind,
        reduction,
    ))


# --- the four theorems ------------------------------------------------------------


@given(p=block_problems(max_blocks=0), kind=loss_kinds)
def test_jepaLoss_nil(backend: Any, p: BlockProblem, kind: str) -> None:
    """An empty list of target indices gives exactly 0, summed or averaged."""
    assert _loss(backend, p, kind, "sum") == 0.0
    assert _loss(backend, p, kind, "mean") == 0.0


@given(p=block_problems(), kind=loss_kinds, data=st.data())
def test_jepaLoss_append(backend: Any, p: BlockProblem, kind: str, data: st.DataObject) -> None:
    """loss(xs ++ ys) = loss(xs) + loss(ys) for every split of the block list."""
    cut = data.draw(st.integers(0, len(p.target_blocks)), label="cut")
    xs, ys = list(range(cut)), list(range(cut, len(p.target_blocks)))
    whole = _loss(backend, p, kind)
    assert_close(whole, _loss(backend, p, kind, order=xs) + _loss(backend, p, kind, order=ys), "jepaLoss_append")


@given(p=block_problems(), kind=loss_kinds)
def test_jepaLoss_reverse(backend: Any, p: BlockProblem, kind: str) -> None:
    """Reversing the list of target indices leaves the loss unchanged."""
    order = list(reversed(range(len(p.target_blocks))))
    assert_close(_loss(backend, p, kind, order=order), _loss(backend, p, kind), "jepaLoss_reverse")


@given(p=block_problems(), kind=loss_kinds, data=st.data())
def test_jepaLoss_target_ext(backend: Any, p: BlockProblem, kind: str, data: st.DataObject) -> None:
    """Two target branches that agree on the selected indices give the same loss."""
    other = data.draw(float_arrays(p.targets.shape), label="other targets")
    selected = np.zeros(p.targets.shape[:2], dtype=bool)
    for block in p.target_blocks:
        np.put_along_axis(selected, block, True, axis=1)
    other[selected] = p.targets[selected]
    assert_close(_loss(backend, p, kind, targets=other), _loss(backend, p, kind), "jepaLoss_target_ext",
                 rel=0.0, abs_=0.0)


# --- further laws of the spec -----------------------------------------------------


@given(p=block_problems(), kind=loss_kinds, data=st.data())
def test_permutation_invariance(backend: Any, p: BlockProblem, kind: str, data: st.DataObject) -> None:
    """Any permutation of the target blocks leaves the loss unchanged."""
    order = data.draw(st.permutations(range(len(p.target_blocks))), label="order")
    assert_close(_loss(backend, p, kind, order=order), _loss(backend, p, kind), "permutation invariance")


@given(p=block_problems(min_blocks=1), kind=loss_kinds)
def test_unselected_targets_never_read(backend: Any, p: BlockProblem, kind: str) -> None:
    """Target values outside the selected indices are never read: NaN there changes nothing."""
    poisoned = np.full_like(p.targets, np.nan)
    for block in p.target_blocks:
        rows = np.arange(block.shape[0])[:, None]
        poisoned[rows, block] = p.targets[rows, block]
    assert_close(_loss(backend, p, kind, targets=poisoned), _loss(backend, p, kind), "independence of unselected")


_REPEATED = BlockProblem(np.array([[[1.0], [2.0]]]), [np.array([[0, 0, 1]])], [np.zeros((1, 3, 1))])
"""A row that lists position 0 twice: the formal sum counts it twice (the case a draw of few examples may miss)."""


@given(p=block_problems(), kind=loss_kinds)
@example(p=_REPEATED, kind="l2")
def test_nonnegative_and_matches_oracle(backend: Any, p: BlockProblem, kind: str) -> None:
    """The loss is >= 0 and equals the formal sum computed by an explicit loop."""
    value = _loss(backend, p, kind)
    assert value >= 0.0
    assert_close(value, oracle_block_loss(p.predictions, p.targets, p.target_blocks, kind), "oracle sum", rel=1e-9)


@given(p=block_problems(min_blocks=1), kind=loss_kinds, data=st.data())
def test_zero_exactly_when_predictions_equal_targets(
    backend: Any, p: BlockProblem, kind: str, data: st.DataObject
) -> None:
    """Perfect predictions give 0; moving one prediction entry gives a positive loss."""
    rows = [np.arange(b.shape[0])[:, None] for b in p.target_blocks]
    perfect = [p.targets[r, b].copy() for r, b in zip(rows, p.target_blocks)]
    exact = BlockProblem(p.targets, p.target_blocks, perfect)
    assert _loss(backend, exact, kind) == 0.0
    i = data.draw(st.integers(0, len(perfect) - 1), label="block")
    flat = data.draw(st.integers(0, perfect[i].size - 1), label="entry")
    shift = data.draw(st.floats(1e-3, 10.0) | st.floats(-10.0, -1e-3), label="shift")
    moved = [a.copy() for a in perfect]
    moved[i].reshape(-1)[flat] += shift
    assert _loss(backend, BlockProblem(p.targets, p.target_blocks, moved), kind) > 0.0


@given(p=block_problems(), kind=loss_kinds, data=st.data())
def test_mean_is_sum_normalised(backend: Any, p: BlockProblem, kind: str, data: st.DataObject) -> None:
    """mean = sum / (number of target tokens x D); the mean of xs ++ ys is the
    token-weighted average of the means of xs and ys (so it is not additive)."""
    count = sum(int(b.size) for b in p.target_blocks)
    total, mean = _loss(backend, p, kind, "sum"), _loss(backend, p, kind, "mean")
    assert_close(mean, total / (count * p.dim) if count else 0.0, "mean normalisation")
    cut = data.draw(st.integers(0, len(p.target_blocks)), label="cut")
    parts = [list(range(cut)), list(range(cut, len(p.target_blocks)))]
    weights = [sum(int(p.target_blocks[i].size) for i in part) for part in parts]
    means = [_loss(backend, p, kind, "mean", order=part) for part in parts]
    if count:
        assert_close(mean, sum(w * m for w, m in zip(weights, means)) / count, "mean of a concatenation")


@given(p=block_problems(min_blocks=1), kind=loss_kinds, data=st.data())
def test_repeated_position_counts_twice(backend: Any, p: BlockProblem, kind: str, data: st.DataObject) -> None:
    """A position listed twice in a block counts twice: inserting a copy of one column of a
    block (with its prediction) anywhere in the block gives the explicit-loop oracle's sum,
    which is the loss of the block and the copy as two blocks."""
    i = data.draw(st.integers(0, len(p.target_blocks) - 1), label="block")
    block, pred = p.target_blocks[i], p.predictions[i]
    j = data.draw(st.integers(0, block.shape[1] - 1), label="column")
    at = data.draw(st.integers(0, block.shape[1]), label="insert at")
    doubled = BlockProblem(p.targets, [np.insert(block, at, block[:, j], axis=1)],
                           [np.insert(pred, at, pred[:, j], axis=1)])
    split = BlockProblem(p.targets, [block, block[:, j:j + 1]], [pred, pred[:, j:j + 1]])
    value = _loss(backend, doubled, kind)
    assert_close(value, oracle_block_loss(doubled.predictions, p.targets, doubled.target_blocks, kind),
                 "a repeated position vs the oracle that counts it twice")
    assert_close(value, _loss(backend, split, kind), "a repeated position vs the block and its copy as two blocks")


# float64 rounding of a few terms is ~1e-16 relative; float32 anywhere is ~1e-7
REP_LOSS_TOL = 1e-12
# rounding of x - mean (|x| <= 10) grows by 1/sqrt(var + eps) <= 316: measured <= 1.2e-12 in float64
# (torch and numpy); float32 misses by > 1e-9
LAYER_NORM_TOL = 1e-11


@given(shape=feature_shapes, kind=loss_kinds, data=st.data())
def test_rep_loss_matches_oracle(backend: Any, shape: tuple[int, ...], kind: str, data: st.DataObject) -> None:
    """The per-token representation loss on any ``(..., D)`` input of rank 1..4 is the
    oracle's elementwise loss summed over the last axis: ``(..., D) -> (...)``."""
    t = data.draw(float_arrays(shape), label="target")
    q = data.draw(float_arrays(shape), label="prediction")
    got = backend.to_numpy(backend.rep_loss(backend.asarray(t), backend.asarray(q), kind))
    assert_array_close(got, oracle_elementwise(t, q, kind).sum(-1), "representation loss", tol=REP_LOSS_TOL)


@given(shape=feature_shapes, data=st.data())
def test_layer_norm_matches_oracle(backend: Any, shape: tuple[int, ...], data: st.DataObject) -> None:
    """Target normalisation on any ``(..., D)`` input of rank 1..4: zero mean and unit biased
    variance over the last axis alone, no affine, eps 1e-5 (D = 1 gives exactly 0)."""
    x = data.draw(float_arrays(shape), label="x")
    got = backend.to_numpy(backend.layer_norm(backend.asarray(x)))
    assert_array_close(got, oracle_layer_norm(x), "layer norm", tol=LAYER_NORM_TOL)
