"""Hypothesis strategies of the law suite: small shapes that shrink well.

Every strategy draws numpy data; tests convert it with ``backend.asarray``. Sizes
start at their smallest value, so shrinking heads for one sample, one token,
one feature.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import NDArray

from jepa_core.regularisers import DEFAULT_KNOTS, VICREG_EPS, sigreg_directions

FloatArray = NDArray[np.float64]
IndexArray = NDArray[np.int64]

MAX_BATCH = 3
MAX_TOKENS = 12
MAX_DIM = 5
MAX_BLOCKS = 4

loss_kinds = st.sampled_from(["smooth_l1", "l2"])


def float_arrays(shape: tuple[int, ...], bound: float = 10.0) -> st.SearchStrategy[FloatArray]:
    """Finite float64 arrays with entries in ``[-bound, bound]``."""
    elements = st.floats(-bound, bound, allow_nan=False, allow_infinity=False, width=64)
    return hnp.arrays(np.float64, shape, elements=elements)


@st.composite
def index_block(draw: st.DrawFn, batch: int, num_tokens: int, max_len: int | None = None) -> IndexArray:
    """A ``(B, K)`` block of distinct positions per row, ``1 <= K <= N``."""
    k = draw(st.integers(1, min(max_len or num_tokens, num_tokens)))
    rows = [draw(st.permutations(range(num_tokens)))[:k] for _ in range(batch)]
    return np.asarray(rows, dtype=np.int64).reshape(batch, k)


@dataclass(frozen=True)
class BlockProblem:
    """Targets, target blocks and one prediction per block."""

    targets: FloatArray  # (B, N, D)
    blocks: list[IndexArray]  # each (B, K_i)
    predictions: list[FloatArray]  # each (B, K_i, D)

    @property
    def dim(self) -> int:
        return int(self.targets.shape[-1])


@st.composite
def block_problems(draw: st.DrawFn, min_blocks: int = 0, max_blocks: int = MAX_BLOCKS) -> BlockProblem:
    """A JEPA loss problem over ``min_blocks..max_blocks`` target blocks."""
    batch = draw(st.integers(1, MAX_BATCH))
    num_tokens = draw(st.integers(1, MAX_TOKENS))
    dim = draw(st.integers(1, MAX_DIM))
    targets = draw(float_arrays((batch, num_tokens, dim)))
    n_blocks = draw(st.integers(min_blocks, max_blocks))
    blocks = [draw(index_block(batch, num_tokens)) for _ in range(n_blocks)]
    predictions = [draw(float_arrays((batch, b.shape[1], dim))) for b in blocks]
    return BlockProblem(targets, blocks, predictions)


@dataclass(frozen=True)
class ObjectiveProblem:
    """Inputs of a whole JEPA objective."""

    tokens: FloatArray  # (B, N, d_in)
    context: IndexArray  # (B, Kc)
    blocks: list[IndexArray]  # each (B, K_i)
    seed: int


@st.composite
def objective_problems(draw: st.DrawFn, min_blocks: int = 0, max_blocks: int = 3) -> ObjectiveProblem:
    """Tokens, a context block and target blocks for ``backend.objective``."""
    batch = draw(st.integers(1, 2))
    num_tokens = draw(st.integers(2, 9))
    input_dim = draw(st.integers(1, 4))
    tokens = draw(float_arrays((batch, num_tokens, input_dim), bound=3.0))
    context = draw(index_block(batch, num_tokens))
    n_blocks = draw(st.integers(min_blocks, max_blocks))
    blocks = [draw(index_block(batch, num_tokens, max_len=4)) for _ in range(n_blocks)]
    seed = draw(st.integers(0, 2**16))
    return ObjectiveProblem(tokens, context, blocks, seed)


@st.composite
def param_pairs(draw: st.DrawFn) -> tuple[dict[str, FloatArray], dict[str, FloatArray]]:
    """Context and target parameter mappings with the same names and shapes."""
    n = draw(st.integers(1, 3))
    context: dict[str, FloatArray] = {}
    target: dict[str, FloatArray] = {}
    for i in range(n):
        shape = tuple(draw(st.lists(st.integers(1, 4), min_size=0, max_size=2)))
        context[f"p{i}"] = draw(float_arrays(shape, bound=100.0))
        target[f"p{i}"] = draw(float_arrays(shape, bound=100.0))
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
