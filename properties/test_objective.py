"""Chapter 1 of the spec on a whole model: the objective and its parts (docs/spec.md, "The objective").

``backend.objective`` is the backend's training loss on a small model made from a
seed; ``backend.objective_parts`` returns what that loss is made of (context
tokens, raw and layer-normed target tokens, one prediction per block). The laws
tie the two together and check the parts against the model's own laws, so a
backend cannot pass by reporting a loss its model does not compute.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from .assertions import assert_array_close, assert_close, oracle_block_loss, oracle_layer_norm
from .strategies import (
    FloatArray,
    IndexArray,
    ObjectiveProblem,
    PaddedContextProblem,
    VideoObjectiveProblem,
    float_arrays,
    loss_kinds,
    objective_problems,
    padded_context_problems,
    video_objective_problems,
)

reductions = st.sampled_from(["sum", "mean"])

# float64 rounding of a few hundred terms is ~1e-15 relative; float32 anywhere on the way is ~1e-7
TIGHT = 1e-11


@dataclass(frozen=True)
class Parts:
    context: FloatArray
    target_tokens: FloatArray
    targets: FloatArray
    predictions: list[FloatArray]


def _lengths(backend: Any, lengths: IndexArray | None) -> dict[str, Any]:
    return {} if lengths is None else {"context_lengths": backend.asarray(lengths)}


def _objective(backend: Any, tokens: FloatArray, context_indices: IndexArray, target_blocks: list[IndexArray],
               seed: int, kind: str, reduction: str = "sum", lengths: IndexArray | None = None) -> float:
    return float(backend.objective(
        backend.asarray(tokens), backend.asarray(context_indices), [backend.asarray(b) for b in target_blocks],
        seed, kind, reduction, **_lengths(backend, lengths),
    ))


def _parts(backend: Any, tokens: FloatArray, context_indices: IndexArray, target_blocks: list[IndexArray],
           seed: int, lengths: IndexArray | None = None) -> Parts:
    out = backend.objective_parts(backend.asarray(tokens), backend.asarray(context_indices),
                                  [backend.asarray(b) for b in target_blocks], seed, **_lengths(backend, lengths))
    raw = [out.context, out.target_tokens, out.targets, *out.predictions]
    arrays = [backend.to_numpy(a) for a in raw]
    for name, a in zip(["context", "target_tokens", "targets"] + [f"prediction {i}" for i in range(len(target_blocks))],
                       arrays, strict=True):
        assert a.dtype == np.float64, f"objective_parts: {name} is {a.dtype}, the spec computes in float64"
    return Parts(arrays[0], arrays[1], arrays[2], arrays[3:])


def _expected(parts: Parts, target_blocks: list[IndexArray], kind: str, reduction: str) -> float:
    total = oracle_block_loss(parts.predictions, parts.targets, target_blocks, kind)
    if reduction == "sum":
        return total
    count = sum(int(b.size) for b in target_blocks) * parts.targets.shape[-1]
    return total / count if count else 0.0


# Blocks of sizes 2, 1, 2 over a batch of two: a backend that batches equal-size blocks into one
# predictor call must hand the predictions back in the blocks' order, not the groups'.
INTERLEAVED = ObjectiveProblem(
    tokens=np.linspace(-2.0, 2.0, 2 * 5 * 2).reshape(2, 5, 2),
    context_indices=np.array([[0, 1, 4], [2, 3, 4]]),
    target_blocks=[np.array([[2, 3], [0, 1]]), np.array([[1], [0]]), np.array([[0, 4], [4, 1]])],
    seed=7,
)


# --- the objective is the spec's loss of its parts ----------------------------


@given(p=objective_problems(), kind=loss_kinds, reduction=reductions)
@example(p=INTERLEAVED, kind="l2", reduction="sum")
def test_objective_is_the_spec_loss_of_its_parts(backend: Any, p: ObjectiveProblem, kind: str,
                                                 reduction: str) -> None:
    """objective = the spec's loss of the backend's own predictions and layer-normed targets,
    for every loss kind and both reductions, to float64 precision."""
    parts = _parts(backend, p.tokens, p.context_indices, p.target_blocks, p.seed)
    value = _objective(backend, p.tokens, p.context_indices, p.target_blocks, p.seed, kind, reduction)
    assert_close(value, _expected(parts, p.target_blocks, kind, reduction),
                 f"objective ({kind}, {reduction}) vs the loss of its parts", rel=TIGHT, abs_=TIGHT)


@given(p=objective_problems())
@example(p=INTERLEAVED)
def test_objective_parts_have_the_documented_shapes(backend: Any, p: ObjectiveProblem) -> None:
    """Context ``(B, Kc, D)``, target tokens ``(B, N, D)`` twice, one ``(B, K_i, D)`` prediction per block."""
    parts = _parts(backend, p.tokens, p.context_indices, p.target_blocks, p.seed)
    batch, n, _ = p.tokens.shape
    dim = parts.targets.shape[-1]
    assert parts.context.shape == (batch, p.context_indices.shape[1], dim), f"context {parts.context.shape}"
    assert parts.target_tokens.shape == parts.targets.shape == (batch, n, dim), (
        f"target tokens {parts.target_tokens.shape}, targets {parts.targets.shape}")
    for i, (pred, block) in enumerate(zip(parts.predictions, p.target_blocks, strict=True)):
        assert pred.shape == (batch, block.shape[1], dim), f"prediction {i}: {pred.shape} for block {block.shape}"


@given(p=objective_problems())
def test_targets_are_the_layer_normed_target_tokens(backend: Any, p: ObjectiveProblem) -> None:
    """The loss compares with the target encoder's tokens layer-normed over features (no affine, eps 1e-5)."""
    parts = _parts(backend, p.tokens, p.context_indices, p.target_blocks, p.seed)
    assert_array_close(parts.targets, oracle_layer_norm(parts.target_tokens), "targets = layer_norm(target tokens)",
                       tol=TIGHT)


@given(p=objective_problems(min_blocks=1), data=st.data())
def test_context_encoder_sees_the_context_alone(backend: Any, p: ObjectiveProblem, data: st.DataObject) -> None:
    """Changing the tokens outside each sample's context changes neither the context tokens nor the predictions."""
    other = data.draw(float_arrays(p.tokens.shape, bound=3.0), label="tokens outside the context")
    visible = np.zeros(p.tokens.shape[:2], dtype=bool)
    np.put_along_axis(visible, p.context_indices, True, axis=1)
    other[visible] = p.tokens[visible]
    before = _parts(backend, p.tokens, p.context_indices, p.target_blocks, p.seed)
    after = _parts(backend, other, p.context_indices, p.target_blocks, p.seed)
    assert_array_close(after.context, before.context, "context tokens after changing unseen tokens", tol=TIGHT)
    for i, (a, b) in enumerate(zip(after.predictions, before.predictions, strict=True)):
        assert_array_close(a, b, f"prediction {i} after changing unseen tokens", tol=TIGHT)


@given(p=objective_problems(min_blocks=1), kind=loss_kinds)
@example(p=INTERLEAVED, kind="smooth_l1")
def test_batch_is_a_sum_over_its_samples(backend: Any, p: ObjectiveProblem, kind: str) -> None:
    """The summed objective of a batch is the sum of its samples' objectives: no sample sees another's rows."""
    whole = _objective(backend, p.tokens, p.context_indices, p.target_blocks, p.seed, kind)
    samples = [
        _objective(backend, p.tokens[b:b + 1], p.context_indices[b:b + 1],
                   [blk[b:b + 1] for blk in p.target_blocks], p.seed, kind)
        for b in range(p.tokens.shape[0])
    ]
    assert_close(whole, sum(samples), "objective of a batch vs the sum over its samples", rel=TIGHT, abs_=TIGHT)


@given(p=objective_problems(min_blocks=1), kind=loss_kinds)
def test_duplicated_batch_doubles_the_sum_and_keeps_the_mean(backend: Any, p: ObjectiveProblem, kind: str) -> None:
    """Stacking a batch on itself doubles the sum and leaves the mean (normalised by the whole batch) unchanged."""
    def twice(a: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        return np.concatenate([a, a])

    args = (twice(p.tokens), twice(p.context_indices), [twice(b) for b in p.target_blocks], p.seed, kind)
    assert_close(_objective(backend, *args, "sum"),
                 2.0 * _objective(backend, p.tokens, p.context_indices, p.target_blocks, p.seed, kind, "sum"),
                 "sum over a duplicated batch", rel=TIGHT, abs_=TIGHT)
    assert_close(_objective(backend, *args, "mean"),
                 _objective(backend, p.tokens, p.context_indices, p.target_blocks, p.seed, kind, "mean"),
                 "mean over a duplicated batch", rel=TIGHT, abs_=TIGHT)


# --- the four theorems on a whole model -----------------------------------------


@given(p=objective_problems(), kind=loss_kinds, data=st.data())
def test_objective_jepaLoss_nil_append_reverse(backend: Any, p: ObjectiveProblem, kind: str,
                                               data: st.DataObject) -> None:
    """On a real model: no blocks -> 0, additive over blocks, blind to their order.

    This holds only if the predictor predicts each block from the context alone,
    without seeing the other blocks of the list.
    """
    run = lambda blocks: _objective(backend, p.tokens, p.context_indices, blocks, p.seed, kind)  # noqa: E731
    assert run([]) == 0.0
    whole = run(p.target_blocks)
    assert whole >= 0.0
    cut = data.draw(st.integers(0, len(p.target_blocks)), label="cut")
    assert_close(whole, run(p.target_blocks[:cut]) + run(p.target_blocks[cut:]), "jepaLoss_append (model)",
                 rel=TIGHT, abs_=TIGHT)
    assert_close(run(p.target_blocks[::-1]), whole, "jepaLoss_reverse (model)", rel=TIGHT, abs_=TIGHT)


@given(p=objective_problems(min_blocks=2), data=st.data())
def test_each_prediction_depends_on_its_block_alone(backend: Any, p: ObjectiveProblem, data: st.DataObject) -> None:
    """A block's prediction is the same whether it is predicted alone or among other blocks."""
    together = _parts(backend, p.tokens, p.context_indices, p.target_blocks, p.seed)
    i = data.draw(st.integers(0, len(p.target_blocks) - 1), label="block")
    alone = _parts(backend, p.tokens, p.context_indices, [p.target_blocks[i]], p.seed)
    assert_array_close(together.predictions[i], alone.predictions[0], f"prediction of block {i} among others",
                       tol=TIGHT)


# --- whole contexts: padding changes nothing ------------------------------------


@given(r=padded_context_problems(), kind=loss_kinds)
def test_padded_contexts_equal_each_sample_alone(backend: Any, r: PaddedContextProblem, kind: str) -> None:
    """Contexts of unequal length padded into one batch (``context_lengths``) give each sample exactly
    what it gets alone, unpadded: its context tokens, every prediction, and the summed loss.

    This is what ``mask.context_trim: none`` rests on: no context patch is dropped to stack a batch,
    and the padding that replaces the cut is invisible. Drawn padding holds other tokens' positions,
    so a backend that lets padded entries into attention or pooling changes the predictions.
    """
    p, n = r.problem, r.lengths
    whole = _parts(backend, p.tokens, p.context_indices, p.target_blocks, p.seed, lengths=n)
    total = _objective(backend, p.tokens, p.context_indices, p.target_blocks, p.seed, kind, "sum", lengths=n)
    alone_total = 0.0
    for b, k in enumerate(n):
        rows = [blk[b : b + 1] for blk in p.target_blocks]
        alone = _parts(backend, p.tokens[b : b + 1], p.context_indices[b : b + 1, :k], rows, p.seed)
        where = f"sample {b} of {len(n)}, context length {k} of {p.context_indices.shape[1]} (lengths {n.tolist()})"
        assert_array_close(whole.context[b, :k], alone.context[0], f"context tokens, {where}", TIGHT)
        for i, (got, want) in enumerate(zip(whole.predictions, alone.predictions, strict=True)):
            assert_array_close(got[b], want[0], f"prediction of block {i}, {where}", TIGHT)
        alone_total += _objective(backend, p.tokens[b : b + 1], p.context_indices[b : b + 1, :k], rows, p.seed,
                                  kind, "sum")
    assert_close(total, alone_total, f"summed loss of the padded batch vs its samples alone (lengths {n.tolist()})",
                 rel=TIGHT)


# --- the same laws on 3-D token grids (V-JEPA's masks) ------------------------
# Fewer examples than the 2-D laws above, which they repeat on other index sets: a compiling backend
# (JAX) compiles once per shape, and 3-D draws bring many shapes.
VIDEO_EXAMPLES = settings(max_examples=10)


@VIDEO_EXAMPLES
@given(v=video_objective_problems(), kind=loss_kinds, reduction=reductions)
def test_objective_on_a_3d_grid_is_the_spec_loss_of_its_parts(backend: Any, v: VideoObjectiveProblem, kind: str,
                                                              reduction: str) -> None:
    """On tubelet grids, with the context whole and padded and the target the union of the boxes, the
    objective is still the spec's loss of its parts: the flat index space changes nothing."""
    p = v.problem
    value = _objective(backend, p.tokens, p.context_indices, p.target_blocks, p.seed, kind, reduction, v.lengths)
    parts = _parts(backend, p.tokens, p.context_indices, p.target_blocks, p.seed, v.lengths)
    assert_close(value, _expected(parts, p.target_blocks, kind, reduction),
                 f"objective on the {v.grid} grid ({kind}, {reduction}) vs the loss of its parts", rel=TIGHT, abs_=TIGHT)


@VIDEO_EXAMPLES
@given(v=video_objective_problems(), kind=loss_kinds)
def test_3d_batch_is_a_sum_over_its_samples(backend: Any, v: VideoObjectiveProblem, kind: str) -> None:
    """On tubelet grids the summed objective of a batch is the sum of its samples', each with its own
    unpadded context: no sample sees another's rows, and padding changes nothing."""
    p = v.problem
    whole = _objective(backend, p.tokens, p.context_indices, p.target_blocks, p.seed, kind, "sum", v.lengths)
    samples = [
        _objective(backend, p.tokens[b:b + 1], p.context_indices[b:b + 1, :int(v.lengths[b])],
                   [blk[b:b + 1] for blk in p.target_blocks], p.seed, kind)
        for b in range(p.tokens.shape[0])
    ]
    assert_close(whole, sum(samples), f"3-D objective of a batch vs the sum over its samples ({v.grid})",
                 rel=TIGHT, abs_=TIGHT)
