"""Hypothesis strategies of the law suite: small shapes that shrink well.

Every strategy draws numpy data; tests convert it with ``backend.asarray``. Sizes
start at their smallest value, so shrinking heads for one sample, one token,
one feature.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import NDArray

from jepa_core.regularisers import DEFAULT_KNOTS, VICREG_EPS, sigreg_directions

from .assertions import oracle_best_keep, oracle_video_best_keep

FloatArray = NDArray[np.float64]
IndexArray = NDArray[np.int64]

MAX_BATCH = 3
MAX_TOKENS = 12
MAX_DIM = 5
MAX_BLOCKS = 4

loss_kinds = st.sampled_from(["smooth_l1", "l2", "l1"])
feature_shapes = hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=MAX_DIM)
"""``(..., D)`` shapes of rank 1..4, feature axis last, ``1 <= D <= MAX_DIM``."""


def float_arrays(shape: tuple[int, ...], bound: float = 10.0) -> st.SearchStrategy[FloatArray]:
    """Finite float64 arrays with entries in ``[-bound, bound]``."""
    elements = st.floats(-bound, bound, allow_nan=False, allow_infinity=False, width=64)
    return hnp.arrays(np.float64, shape, elements=elements)


@st.composite
def index_block(draw: st.DrawFn, batch: int, num_tokens: int, max_len: int | None = None,
                repeats: bool = False, length: int | None = None) -> IndexArray:
    """A ``(B, K)`` block of positions in ``[0, N)``, unsorted, ``1 <= K <= min(max_len, N)``.

    Each row lists distinct positions; with ``repeats`` a row may instead list any K
    positions, so a position can appear more than once (the loss then counts it as often).
    ``length`` fixes K (at most N).
    """
    k = length if length is not None else draw(st.integers(1, min(max_len or num_tokens, num_tokens)))
    row = st.permutations(range(num_tokens)).map(lambda p: p[:k])
    if repeats:
        row = row | st.lists(st.integers(0, num_tokens - 1), min_size=k, max_size=k)
    rows = [draw(row) for _ in range(batch)]
    return np.asarray(rows, dtype=np.int64).reshape(batch, k)


@dataclass(frozen=True)
class BlockProblem:
    """Targets, target blocks and one prediction per block."""

    targets: FloatArray  # (B, N, D)
    target_blocks: list[IndexArray]  # each (B, K_i)
    predictions: list[FloatArray]  # each (B, K_i, D)

    @property
    def dim(self) -> int:
        return int(self.targets.shape[-1])


@st.composite
def block_problems(draw: st.DrawFn, min_blocks: int = 0, max_blocks: int = MAX_BLOCKS) -> BlockProblem:
    """A JEPA loss problem over ``min_blocks..max_blocks`` target blocks (positions may repeat)."""
    batch = draw(st.integers(1, MAX_BATCH))
    num_tokens = draw(st.integers(1, MAX_TOKENS))
    dim = draw(st.integers(1, MAX_DIM))
    targets = draw(float_arrays((batch, num_tokens, dim)))
    n_blocks = draw(st.integers(min_blocks, max_blocks))
    blocks = [draw(index_block(batch, num_tokens, repeats=True)) for _ in range(n_blocks)]
    predictions = [draw(float_arrays((batch, b.shape[1], dim))) for b in blocks]
    return BlockProblem(targets, blocks, predictions)


@dataclass(frozen=True)
class ObjectiveProblem:
    """Inputs of a whole JEPA objective."""

    tokens: FloatArray  # (B, N, d_in)
    context_indices: IndexArray  # (B, Kc), as Backend.objective's argument
    target_blocks: list[IndexArray]  # each (B, K_i)
    seed: int


@st.composite
def objective_problems(draw: st.DrawFn, min_blocks: int = 0, max_blocks: int = 3) -> ObjectiveProblem:
    """Tokens, a context block and target blocks for ``backend.objective``.

    Half the draws give every target block one size (the official masks' case, where
    a backend may batch the blocks into one predictor call); positions may repeat.
    """
    batch = draw(st.integers(1, 3))
    num_tokens = draw(st.integers(2, 9))
    input_dim = draw(st.integers(1, 4))
    tokens = draw(float_arrays((batch, num_tokens, input_dim), bound=3.0))
    context = draw(index_block(batch, num_tokens, repeats=True))
    n_blocks = draw(st.integers(min_blocks, max_blocks))
    shared = draw(st.none() | st.integers(1, min(4, num_tokens)))
    blocks = [draw(index_block(batch, num_tokens, max_len=4, repeats=True, length=shared)) for _ in range(n_blocks)]
    seed = draw(st.integers(0, 2**16))
    return ObjectiveProblem(tokens, context, blocks, seed)


@dataclass(frozen=True)
class PaddedContextProblem:
    """An objective problem whose contexts differ in length: ``problem.context_indices`` is ``(B, Kmax)``
    and row ``b``'s context is its first ``lengths[b]`` entries; the rest is padding of any valid index."""

    problem: ObjectiveProblem
    lengths: IndexArray  # (B,), 1 <= lengths[b] <= Kmax, not all equal to Kmax


@st.composite
def padded_context_problems(draw: st.DrawFn) -> PaddedContextProblem:
    """Two or three samples whose contexts have unequal lengths, padded with drawn (not repeated) indices,
    so that a backend reading the padding sees other tokens; target blocks as in :func:`objective_problems`."""
    batch = draw(st.integers(2, 3))
    num_tokens = draw(st.integers(2, 9))
    input_dim = draw(st.integers(1, 4))
    tokens = draw(float_arrays((batch, num_tokens, input_dim), bound=3.0))
    kmax = draw(st.integers(2, num_tokens + 2))
    lengths = np.array([draw(st.integers(1, kmax)) for _ in range(batch)], dtype=np.int64)
    lengths[draw(st.integers(0, batch - 1))] = draw(st.integers(1, kmax - 1))  # at least one padded row
    context = draw(index_block(batch, num_tokens, repeats=True, length=min(kmax, num_tokens)))
    if kmax > num_tokens:  # rows longer than the grid: the extra entries repeat positions
        context = np.concatenate([context, context[:, : kmax - num_tokens]], axis=1)
    n_blocks = draw(st.integers(1, 3))
    shared = draw(st.none() | st.integers(1, min(4, num_tokens)))
    blocks = [draw(index_block(batch, num_tokens, max_len=4, repeats=True, length=shared)) for _ in range(n_blocks)]
    seed = draw(st.integers(0, 2**16))
    return PaddedContextProblem(ObjectiveProblem(tokens, context, blocks, seed), lengths)


@st.composite
def param_pairs(draw: st.DrawFn) -> tuple[dict[str, FloatArray], dict[str, FloatArray]]:
    """Context and target parameter mappings with the same names and shapes, in any key order.

    Parameters often share a shape (shrinking heads for all of one shape), and the target's
    keys come in a drawn permutation of the context's order: an update that pairs parameters
    by position instead of by name mixes values, or fails on a shape mismatch.
    """
    n = draw(st.integers(1, 4))
    shapes = st.lists(st.integers(1, 4), min_size=0, max_size=2).map(tuple)
    shared = draw(shapes)
    context: dict[str, FloatArray] = {}
    for i in range(n):
        context[f"p{i}"] = draw(float_arrays(draw(st.just(shared) | shapes), bound=100.0))
    order = draw(st.permutations(list(context)))
    target = {name: draw(float_arrays(context[name].shape, bound=100.0)) for name in order}
    return context, target


momenta = st.floats(0.0, 1.0, allow_nan=False)


@dataclass(frozen=True)
class LRParams:
    start_lr: float
    ref_lr: float
    final_lr: float
    warmup_steps: int
    total_steps: int


lrs = st.floats(0.0, 1.0, allow_nan=False)


@st.composite
def lr_params(draw: st.DrawFn) -> LRParams:
    total = draw(st.integers(1, 10_000))
    warmup = draw(st.integers(0, total - 1))
    return LRParams(draw(lrs), draw(lrs), draw(lrs), warmup, total)


@dataclass(frozen=True)
class EndpointParams:
    """A schedule from ``start`` (step 0) to ``end`` (step ``total_steps``): weight decay, momentum."""

    start: float
    end: float
    total_steps: int


totals = st.integers(1, 100_000)


def wd_params() -> st.SearchStrategy[EndpointParams]:
    """Weight decay ends in ``[0, 1]``, rising or falling."""
    return st.builds(EndpointParams, lrs, lrs, totals)


def momentum_params() -> st.SearchStrategy[EndpointParams]:
    """Momentum ends in ``[0, 1]`` with ``start <= end``."""
    return st.builds(EndpointParams, momenta, momenta, totals).map(
        lambda p: EndpointParams(min(p.start, p.end), max(p.start, p.end), p.total_steps))


@st.composite
def steps_around(draw: st.DrawFn, *landmarks: int) -> list[int]:
    """Each landmark and its neighbours (those >= 0) plus up to 8 steps anywhere in
    ``[0, 2 · max(landmarks) + 2]``, in a drawn order."""
    near = sorted({s + d for s in landmarks for d in (-1, 0, 1) if s + d >= 0})
    anywhere = draw(st.lists(st.integers(0, 2 * max(landmarks) + 2), max_size=8))
    return draw(st.permutations(near + anywhere))


# --- regularisers -------------------------------------------------------------

MAX_ROWS = 12
MAX_DIRECTIONS = 6

gammas = st.sampled_from([1.0, 0.0]) | st.floats(1e-3, 5.0)
variance_eps = st.sampled_from([VICREG_EPS, 1e-2, 0.0])


@st.composite
def embedding_batches(draw: st.DrawFn, min_rows: int = 2, bound: float = 10.0) -> FloatArray:
    """``(N, D)`` embeddings, ``min_rows <= N <= MAX_ROWS``, ``1 <= D <= MAX_DIM``."""
    rows = draw(st.integers(min_rows, MAX_ROWS))
    dim = draw(st.integers(1, MAX_DIM))
    return draw(float_arrays((rows, dim), bound=bound))


@st.composite
def knot_grids(draw: st.DrawFn) -> FloatArray:
    """The spec's default knots first, else 2..9 strictly increasing points in ``[-6, 6]``."""
    if not draw(st.booleans()):
        return np.array(DEFAULT_KNOTS)
    size = draw(st.integers(2, 9))
    elements = st.floats(-6.0, 6.0, allow_nan=False, allow_subnormal=False)
    return np.sort(draw(hnp.arrays(np.float64, size, elements=elements, unique=True)))


@dataclass(frozen=True)
class SigregProblem:
    """Embeddings, unit directions drawn by the spec's sampler, and integration knots."""

    embeddings: FloatArray  # (N, D)
    directions: FloatArray  # (D, M), unit columns
    knots: FloatArray  # (T,)


@st.composite
def sigreg_problems(draw: st.DrawFn) -> SigregProblem:
    """A SIGReg input: ``1 <= N <= MAX_ROWS`` rows, ``1 <= M <= MAX_DIRECTIONS`` directions."""
    embeddings = draw(embedding_batches(min_rows=1, bound=5.0))
    num = draw(st.integers(1, MAX_DIRECTIONS))
    seed = draw(st.integers(0, 2**16))
    return SigregProblem(embeddings, sigreg_directions(embeddings.shape[1], num, seed), draw(knot_grids()))


@st.composite
def orthogonal_matrices(draw: st.DrawFn, dim: int) -> FloatArray:
    """A ``(dim, dim)`` orthogonal matrix: the Q of a drawn matrix's QR decomposition."""
    q, _ = np.linalg.qr(draw(float_arrays((dim, dim))))
    out: FloatArray = q
    return out


@st.composite
def wide_batches(draw: st.DrawFn, gamma: float) -> FloatArray:
    """``(N, D)`` embeddings whose every column has unbiased standard deviation >= gamma.

    Each drawn column is centred, scaled to standard deviation ``gamma · f`` with a
    drawn ``f >= 1`` (plus a margin of 1e-9 over rounding), and shifted back; a
    nearly constant column is first replaced by alternating signs.
    """
    z = draw(embedding_batches()).copy()
    rows = z.shape[0]
    for j in range(z.shape[1]):
        if z[:, j].std(ddof=1) < 1e-3:
            z[:, j] = (-1.0) ** np.arange(rows)
        factor = draw(st.floats(1.0, 3.0)) * (1.0 + 1e-9)
        mean = z[:, j].mean()
        z[:, j] = mean + (z[:, j] - mean) * (gamma * factor / z[:, j].std(ddof=1))
    return z


@st.composite
def uncorrelated_batches(draw: st.DrawFn) -> FloatArray:
    """``(N, D)`` embeddings with zero empirical cross-covariance between columns.

    The columns of Q in the QR decomposition of ``[1, A]`` (a column of ones, then
    a drawn ``A``) after the first are orthonormal and orthogonal to the ones, so
    centred; each is scaled and shifted by drawn amounts.
    """
    dim = draw(st.integers(1, MAX_DIM))
    rows = draw(st.integers(dim + 1, dim + 6))
    q, _ = np.linalg.qr(np.hstack([np.ones((rows, 1)), draw(float_arrays((rows, dim)))]))  # (N, D + 1)
    scales = draw(float_arrays((dim,), bound=10.0))
    shifts = draw(float_arrays((dim,), bound=10.0))
    out: FloatArray = q[:, 1:] * scales + shifts
    return out


# --- masks --------------------------------------------------------------------
# Grids and configs of chapter 3 (properties/test_masks.py), as MaskConfig fields.

PAPER_GRID = (16, 16)  # 224 px / patch 14
MAX_MASK_SIDE = 14  # 2-D grids from 2x2 to 14x14
MAX_SEQUENCE = 64  # sequences of 2 to 64 tokens

mask_seeds = st.integers(0, 2**32 - 1)


@dataclass(frozen=True)
class _Problem:
    """A grid and a config's fields; ``best_keep`` the oracle's best outcome, or None for a free draw."""

    grid: tuple[int, ...]
    fields: dict[str, Any]
    best_keep: int | None = None

    @property
    def must_accept(self) -> bool:
        """True when the oracle proves the config satisfiable: ``min_keep <= best_keep``."""
        return self.best_keep is not None and self.fields["min_keep"] <= self.best_keep


@dataclass(frozen=True)
class MaskProblem(_Problem):
    """A grid and the fields of a corrected-mode ``MaskConfig`` for it.

    Attributes:
        grid: ``(H, W)``; a sequence of ``L`` tokens is ``(1, L)``.
        fields: keyword arguments of ``MaskConfig``.
        best_keep: the most context patches any outcome keeps, by
            :func:`assertions.oracle_best_keep`, when every block has one exact
            size; ``None`` for a freely drawn config, which may be impossible.
    """


@st.composite
def ranges(draw: st.DrawFn, lo: float, hi: float, max_width: float) -> tuple[float, float]:
    """A ``(low, high)`` range inside ``[lo, hi]``; a point range first (shrinks there)."""
    low = draw(st.floats(lo, hi, allow_nan=False))
    width = draw(st.one_of(st.just(0.0), st.floats(0.0, max_width, allow_nan=False)))
    return low, min(hi, low + width)


@st.composite
def mask_grids(draw: st.DrawFn) -> tuple[int, int]:
    """A 2-D grid ``(H, W)``, or a sequence as ``(1, L)``."""
    if draw(st.booleans()):
        return draw(st.integers(2, MAX_MASK_SIDE)), draw(st.integers(2, MAX_MASK_SIDE))
    return 1, draw(st.integers(2, MAX_SEQUENCE))


@st.composite
def exact_problems(draw: st.DrawFn, min_context: int = 1, boundary: bool = False) -> MaskProblem:
    """A config that must be accepted: every block has one exact size, and an oracle knows the best outcome.

    A target ``h x w`` gets the scale ``h*w / (H*W)`` and aspect ``h / w``, so
    ``round(sqrt(s*H*W*a)) = h`` and ``round(sqrt(s*H*W/a)) = w`` (on a sequence the
    length is ``round(s*L) = w``); the context likewise. The ranges are points, or
    carry a relative slack ``0.1 / max(H, W)``, which moves ``sqrt(s*H*W*a)`` by about
    ``0.1`` of a patch at most, so the rounding still gives ``h`` and ``w``. A target never fills
    the grid, so the best outcome keeps at least one patch. ``min_keep`` is drawn from
    ``1`` to that best outcome, or is exactly it when ``boundary``.
    """
    grid = draw(mask_grids())
    rows, cols = grid
    h = draw(st.integers(1, rows))
    w = draw(st.integers(1, cols - (h == rows)))
    hc, wc = draw(st.integers(1, rows)), draw(st.integers(1, cols))
    allow_overlap = draw(st.booleans())
    best = oracle_best_keep(grid, (h, w), (hc, wc), allow_overlap)
    n = rows * cols
    slack = draw(st.sampled_from([0.0, 0.1])) / max(rows, cols)

    def around(x: float, upper: float = math.inf) -> tuple[float, float]:
        return x * (1 - slack), min(upper, x * (1 + slack))

    fields = dict(
        num_targets=draw(st.integers(1, 4)),
        target_scale=around(h * w / n, 1.0),
        target_aspect=around(h / w),
        num_context=draw(st.integers(min_context, 3)),
        context_scale=around(hc * wc / n, 1.0),
        context_aspect=around(hc / wc),
        min_keep=best if boundary else draw(st.integers(1, best)),
        allow_overlap=allow_overlap,
    )
    return MaskProblem(grid, fields, best)


@st.composite
def free_problems(draw: st.DrawFn, min_context: int = 1) -> MaskProblem:
    """A freely drawn corrected-mode config; it may be impossible on its grid."""
    grid = draw(mask_grids())
    fields = dict(
        num_targets=draw(st.integers(1, 4)),
        target_scale=draw(ranges(0.02, 0.5, 0.3)),
        target_aspect=draw(ranges(0.3, 3.0, 2.0)),
        num_context=draw(st.integers(min_context, 3)),
        context_scale=draw(ranges(0.3, 1.0, 0.5)),
        context_aspect=draw(ranges(0.5, 2.0, 1.0)),
        min_keep=draw(st.integers(1, 6)),
        allow_overlap=draw(st.booleans()),
    )
    return MaskProblem(grid, fields)


def mask_problems(min_context: int = 1) -> st.SearchStrategy[MaskProblem]:
    """Exact problems (which must be accepted) first, then free ones."""
    return st.one_of(exact_problems(min_context), free_problems(min_context))


# --- 3-D masks (V-JEPA) -------------------------------------------------------------

MAX_FRAMES = 5  # 3-D grids of 1 to 5 tubelet frames
MAX_FRAME_SIDE = 7  # of 1x1 to 7x7 tokens


@dataclass(frozen=True)
class VideoMaskProblem(_Problem):
    """A ``(T, H, W)`` grid and the fields of a ``VideoMaskConfig`` for it.

    Attributes:
        grid: ``(T, H, W)``.
        fields: keyword arguments of ``VideoMaskConfig``.
        best_keep: the most context tokens any outcome keeps (``oracle_video_best_keep``) when every
            box has one exact size; ``None`` for a freely drawn config, which may be impossible.
    """


@st.composite
def video_grids(draw: st.DrawFn) -> tuple[int, int, int]:
    """A tubelet grid ``(T, H, W)``; ``T = 1`` is an image, ``H = 1`` a sequence per frame."""
    return (draw(st.integers(1, MAX_FRAMES)), draw(st.integers(1, MAX_FRAME_SIDE)),
            draw(st.integers(1, MAX_FRAME_SIDE)))


@st.composite
def context_frames(draw: st.DrawFn, frames: int) -> tuple[float, int]:
    """``(context_frames, Tc)``: every frame, or the first ``Tc`` of them (a value whose floor is exact)."""
    tc = draw(st.integers(1, frames))
    return (1.0, frames) if tc == frames else ((tc + 0.5) / frames, tc)


@st.composite
def video_exact_problems(draw: st.DrawFn, boundary: bool = False) -> VideoMaskProblem:
    """A 3-D config that must be accepted: every box has one exact size ``t x h x w``, known to an oracle.

    The spatial scale is ``h*w / (H*W)`` and the aspect ``h / w`` (on ``H = 1``, the length ``w``);
    the temporal scale ``t / T``; ranges are points or carry the 2-D strategy's relative slack, which
    moves every side by about 0.1 of a token at most, so rounding still gives ``t, h, w``. The boxes
    never cover every context token (draws that would are discarded), so the best outcome keeps at least one. ``min_keep`` is drawn
    from 1 to that best outcome, or is exactly it when ``boundary``.
    """
    grid = draw(video_grids())
    frames, rows, cols = grid
    cf, tc = draw(context_frames(frames))
    t, h, w = draw(st.integers(1, frames)), draw(st.integers(1, rows)), draw(st.integers(1, cols))
    best = oracle_video_best_keep(grid, (t, h, w), tc)
    assume(best >= 1)  # boxes that cover every context token: no config of this size can be accepted
    slack = draw(st.sampled_from([0.0, 0.1])) / max(grid)

    def around(x: float, upper: float = math.inf) -> tuple[float, float]:
        return x * (1 - slack), min(upper, x * (1 + slack))

    fields = dict(
        num_blocks=draw(st.integers(1, 4)),
        spatial_scale=around(h * w / (rows * cols), 1.0),
        temporal_scale=around(t / frames, 1.0),
        aspect=around(h / w),
        context_frames=cf,
        min_keep=best if boundary else draw(st.integers(1, best)),
        trim=draw(st.sampled_from(["batch_min", "none"])),
    )
    return VideoMaskProblem(grid, fields, best)


@st.composite
def video_free_problems(draw: st.DrawFn) -> VideoMaskProblem:
    """A freely drawn 3-D config; it may be impossible on its grid."""
    grid = draw(video_grids())
    fields = dict(
        num_blocks=draw(st.integers(1, 4)),
        spatial_scale=draw(ranges(0.02, 0.6, 0.4)),
        temporal_scale=draw(ranges(0.1, 1.0, 0.6)),
        aspect=draw(ranges(0.3, 3.0, 2.0)),
        context_frames=draw(context_frames(grid[0]))[0],
        min_keep=draw(st.integers(1, 6)),
        trim=draw(st.sampled_from(["batch_min", "none"])),
    )
    return VideoMaskProblem(grid, fields)


def video_mask_problems() -> st.SearchStrategy[VideoMaskProblem]:
    """Exact 3-D problems (which must be accepted) first, then free ones."""
    return st.one_of(video_exact_problems(), video_free_problems())


@dataclass(frozen=True)
class VideoObjectiveProblem:
    """Tokens on a small ``(T, H, W)`` grid with V-JEPA masks from the spec's sampler.

    ``problem.context_indices`` is the whole context, padded, with ``lengths``; ``problem.target_blocks``
    holds one block, the union of the boxes, cut at random to the batch's shortest.
    """

    problem: ObjectiveProblem
    lengths: IndexArray
    grid: tuple[int, int, int]


@st.composite
def video_objective_problems(draw: st.DrawFn) -> VideoObjectiveProblem:
    """A 3-D token grid of 2 to 36 tokens and one V-JEPA mask draw on it (impossible draws are discarded)."""
    from jepa_core.video_masks import VideoMaskConfig, sample_video_masks

    grid = (draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    assume(math.prod(grid) >= 2)
    fields = dict(num_blocks=draw(st.integers(1, 3)), spatial_scale=draw(ranges(0.1, 0.6, 0.3)),
                  temporal_scale=draw(ranges(0.2, 1.0, 0.5)), aspect=draw(ranges(0.5, 2.0, 1.0)))
    seed, batch = draw(st.integers(0, 2**16)), draw(st.integers(1, 3))
    try:
        config = VideoMaskConfig(**fields, trim="none")
        (whole,) = sample_video_masks(grid, config, seed, batch)
        (cut,) = sample_video_masks(grid, VideoMaskConfig(**fields), seed, batch)
    except ValueError:
        assume(False)
    assert whole.context_lengths is not None
    tokens = draw(float_arrays((batch, math.prod(grid), draw(st.integers(1, 4))), bound=3.0))
    problem = ObjectiveProblem(tokens, whole.context[0], [cut.targets[0]], seed)
    return VideoObjectiveProblem(problem, whole.context_lengths[0], grid)
