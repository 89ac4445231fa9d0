"""Assertions and ten-line numpy oracles of the law suite.

Each assertion names the law and prints the numbers involved, so a failure reads
as a counter-example; Hypothesis adds the shrunk inputs and a reproduction blob.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import assume
from numpy.typing import NDArray

REL = 1e-9
ABS = 1e-9


def assert_close(actual: float, expected: float, law: str, rel: float = REL, abs_: float = ABS) -> None:
    """``actual`` equals ``expected`` up to float64 rounding, or the law fails."""
    if not math.isclose(actual, expected, rel_tol=rel, abs_tol=abs_):
        raise AssertionError(f"{law}: {actual!r} != {expected!r} (diff {actual - expected:.3e})")


def assert_array_close(actual: NDArray[Any], expected: NDArray[Any], law: str, tol: float = 1e-9) -> None:
    """Elementwise closeness of two arrays of the same shape."""
    if np.shape(actual) != np.shape(expected):
        raise AssertionError(f"{law}: shape {np.shape(actual)} != {np.shape(expected)}")
    if not np.allclose(actual, expected, rtol=tol, atol=tol):
        worst = float(np.max(np.abs(np.asarray(actual) - np.asarray(expected))))
        raise AssertionError(f"{law}: arrays differ by up to {worst:.3e}\nactual={actual}\nexpected={expected}")


# --- oracles: written independently of jepa_core, from the definitions -------


def oracle_elementwise(target: NDArray[np.float64], pred: NDArray[np.float64], kind: str) -> NDArray[np.float64]:
    """Smooth-L1 (beta 1), squared error or absolute error, elementwise."""
    d = np.abs(pred - target)
    if kind == "l2":
        return d**2
    if kind == "l1":
        return d
    return np.where(d < 1.0, 0.5 * d**2, d - 0.5)


def oracle_block_loss(
    predictions: list[NDArray[np.float64]],
    targets: NDArray[np.float64],
    target_blocks: list[NDArray[np.int64]],
    kind: str,
) -> float:
    """The formal sum, one target block after another, with an explicit gather loop."""
    total = 0.0
    for pred, block in zip(predictions, target_blocks, strict=True):
        for b in range(block.shape[0]):
            for j, pos in enumerate(block[b]):
                total += float(oracle_elementwise(targets[b, pos], pred[b, j], kind).sum())
    return total


def oracle_layer_norm(x: NDArray[np.float64], eps: float = 1e-5) -> NDArray[np.float64]:
    """Zero mean, unit (biased) variance over the last axis."""
    mu = x.mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(x.var(-1, keepdims=True) + eps)  # type: ignore[no-any-return]


# --- schedules: the closed forms of docs/spec.md, chapter 5 ------------------

SCHEDULE_REL = 1e-12
"""Schedules agree to 1e-12 of their largest value: a few float64 roundings are ~1e-15, while
a step off by one moves the value by ``|ref - start| / warmup`` in the warm-up and by about
``|ref - final| · (π / (total - warmup))² / 4`` at the end of a cosine (>= 2e-8 of it for
``total <= 10⁴``)."""


def assert_schedule_close(actual: float, expected: float, law: str, *values: float) -> None:
    """``actual`` equals the closed form within ``SCHEDULE_REL`` of the largest of ``values``.

    The absolute floor of 1e-300 only absorbs subnormal rounding when every value is tiny.
    """
    scale = max(abs(v) for v in values)
    if not abs(actual - expected) <= SCHEDULE_REL * scale + 1e-300:
        raise AssertionError(f"{law}: {actual!r} != closed form {expected!r} "
                             f"(diff {actual - expected:.3e}, tolerance {SCHEDULE_REL * scale:.1e})")


def oracle_lr(step: int, start_lr: float, ref_lr: float, final_lr: float, warmup: int, total: int) -> float:
    """Linear from start_lr (step 0) to ref_lr (step warmup), a half cosine down to final_lr
    over the next ``total - warmup`` steps, then final_lr."""
    if step < warmup:
        return start_lr + step / warmup * (ref_lr - start_lr)
    if step >= total:
        return final_lr
    angle = math.pi * (step - warmup) / (total - warmup)
    return final_lr + (ref_lr - final_lr) * (1.0 + math.cos(angle)) / 2.0


def oracle_wd(step: int, start: float, end: float, total: int) -> float:
    """A half cosine from start (step 0) to end (step total), then end."""
    angle = math.pi * min(step, total) / total
    return end + (start - end) * (1.0 + math.cos(angle)) / 2.0


def oracle_momentum(step: int, start: float, end: float, total: int) -> float:
    """A line from start (step 0) to end (step total), then end."""
    return start + min(step, total) * (end - start) / total


def oracle_vicreg_variance(z: NDArray[np.float64], gamma: float, eps: float) -> float:
    """Mean over columns of ``max(0, gamma - sqrt(unbiased variance + eps))``, column by column."""
    rows = z.reshape(-1, z.shape[-1])
    n = rows.shape[0]
    hinges = []
    for column in rows.T:
        deviation = column - column.sum() / n
        std = math.sqrt(float(deviation @ deviation) / (n - 1) + eps)
        hinges.append(max(0.0, gamma - std))
    return sum(hinges) / len(hinges)


def oracle_vicreg_covariance(z: NDArray[np.float64]) -> float:
    """Sum over ``j != k`` of numpy's sample covariance ``C_jk²``, divided by D."""
    rows = z.reshape(-1, z.shape[-1])
    dim = rows.shape[1]
    cov = np.cov(rows, rowvar=False).reshape(dim, dim)
    return sum(float(cov[j, k]) ** 2 for j in range(dim) for k in range(dim) if j != k) / dim


def _trapezoid_loop(values: NDArray[np.float64], knots: NDArray[np.float64]) -> float:
    return sum(0.5 * float(values[i] + values[i + 1]) * float(knots[i + 1] - knots[i]) for i in range(len(knots) - 1))


def oracle_sigreg(z: NDArray[np.float64], directions: NDArray[np.float64], knots: NDArray[np.float64]) -> float:
    """Mean over directions of ``N ∫ w |ecf - phi|²``, the ECF as a mean of complex exponentials."""
    projections = z @ directions  # (N, M)
    normal = np.exp(-(knots**2) / 2.0)  # (T,) phi(t) and the window w(t)
    statistics = []
    for x in projections.T:
        ecf = np.exp(1j * np.outer(knots, x)).mean(axis=1)  # (T,) complex
        statistics.append(len(x) * _trapezoid_loop(normal * np.abs(ecf - normal) ** 2, knots))
    return sum(statistics) / len(statistics)


def oracle_sigreg_floor(knots: NDArray[np.float64]) -> float:
    """E[N ∫ w |ecf - phi|²] for N(0, 1) samples: ``∫ (exp(-t²/2) - exp(-3t²/2)) dt`` by trapezoids."""
    return _trapezoid_loop(np.exp(-(knots**2) / 2.0) - np.exp(-1.5 * knots**2), knots)


# --- masks --------------------------------------------------------------------
# Oracles and measurements of chapter 3 (properties/test_masks.py). A sampler is
# ``backend.mask_sampler``: the API of jepa_core.masks (MaskConfig, validate,
# max_context_keep, sample_masks).


def oracle_best_keep(grid: tuple[int, int], target: tuple[int, int], context: tuple[int, int],
                     allow_overlap: bool) -> int:
    """The most context patches any outcome keeps when every block has one exact size.

    With ``allow_overlap`` it is the context's area. Otherwise the targets' union
    contains each target, so the best outcome stacks them on one spot; the least
    overlap of one ``h x w`` target with the ``hc x wc`` context is found by brute
    force over every pair of positions (the overlap of two rectangles is the product
    of their row and column overlaps).
    """
    (rows, cols), (h, w), (hc, wc) = grid, target, context
    if allow_overlap:
        return hc * wc

    def overlap(n: int, a: int, b: int) -> NDArray[np.int64]:  # (n-a+1, n-b+1) overlap of two intervals
        pa, pb = np.arange(n - a + 1)[:, None], np.arange(n - b + 1)[None, :]
        out: NDArray[np.int64] = np.maximum(0, np.minimum(pa + a, pb + b) - np.maximum(pa, pb))
        return out

    least = (overlap(rows, h, hc)[:, None, :, None] * overlap(cols, w, wc)[None, :, None, :]).min()
    return hc * wc - int(least)


def accepted_config(sampler: Any, problem: Any, config_type: str = "MaskConfig") -> Any:
    """The sampler's config for a drawn ``MaskProblem``, validated on its grid.

    A problem an oracle proves satisfiable (``problem.must_accept``) that the sampler
    rejects fails the law; a freely drawn one that it rejects is skipped
    (``assume``), since a free draw may be impossible.
    """
    try:
        config = getattr(sampler, config_type)(**problem.fields)
        sampler.validate(problem.grid, config)
    except ValueError as exc:
        if problem.must_accept:
            raise AssertionError(f"a satisfiable {config_type} was rejected on grid {problem.grid} "
                                 f"(best outcome keeps {problem.best_keep}): {exc}\n{problem.fields}") from exc
        assume(False)
    return config


def block_shape(rows: NDArray[np.int64], width: int) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.bool_]]:
    """``(B, K)`` indices -> per row: height, width of the bounding box, and whether it is full."""
    r, c = rows // width, rows % width
    h = r.max(axis=1) - r.min(axis=1) + 1
    w = c.max(axis=1) - c.min(axis=1) + 1
    return h, w, h * w == rows.shape[1]


def roundable(h: NDArray[np.int64], w: NDArray[np.int64], n: int, scale: tuple[float, float],
              aspect: tuple[float, float], one_d: bool) -> NDArray[np.bool_]:
    """Whether ``h, w`` can be ``round(sqrt(s*n*a)), round(sqrt(s*n/a))`` with s, a in the ranges."""
    if one_d:  # length = round(s * n)
        return (h == 1) & (w - 0.5 <= scale[1] * n + 1e-9) & (w + 0.5 >= scale[0] * n - 1e-9)
    area_ok = ((h - 0.5) * (w - 0.5) <= scale[1] * n + 1e-9) & ((h + 0.5) * (w + 0.5) >= scale[0] * n - 1e-9)
    aspect_ok = ((h - 0.5) / (w + 0.5) <= aspect[1] + 1e-9) & ((h + 0.5) / (w - 0.5) >= aspect[0] - 1e-9)
    return area_ok & aspect_ok


def oracle_target_areas(n: int, scale: tuple[float, float], aspect: tuple[float, float], count: int,
                        seed: int) -> NDArray[np.float64]:
    """Ten-line numpy oracle of the corrected law: independent uniform scale and aspect, rounded sides."""
    rng = np.random.default_rng(seed)
    s = rng.uniform(*scale, size=count)
    a = rng.uniform(*aspect, size=count)
    h = np.rint(np.sqrt(s * n * a))
    w = np.rint(np.sqrt(s * n / a))
    return h * w / n


def target_shapes(sampler: Any, config: Any, grid: tuple[int, int],
                  draws: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Heights and widths of every target block of ``draws`` single-sample batches (seeds ``0..draws-1``)."""
    hs, ws = [], []
    for seed in range(draws):
        for t in sampler.sample_masks(grid, config, seed, 1).targets:
            h, w, _ = block_shape(t, grid[1])
            hs.append(h[0])
            ws.append(w[0])
    return np.asarray(hs), np.asarray(ws)


def slot_sizes(sampler: Any, config: Any, grid: tuple[int, int], draws: int) -> NDArray[np.int64]:
    """``(draws, num_targets)``: each target slot's size in ``draws`` single-sample batches (seeds ``0..``)."""
    return np.asarray([[t.shape[1] for t in sampler.sample_masks(grid, config, seed, 1).targets]
                       for seed in range(draws)])


def coverage(sampler: Any, config: Any, grid: tuple[int, int], seeds: int, batch: int,
             part: str) -> NDArray[np.int64]:
    """``(H, W)``: how often each patch is in a ``part`` ("context" or "targets") block over ``seeds`` batches."""
    counts = np.zeros(grid[0] * grid[1], dtype=np.int64)
    for seed in range(seeds):
        for m in getattr(sampler.sample_masks(grid, config, seed, batch), part):
            np.add.at(counts, m.reshape(-1), 1)
    return counts.reshape(grid)


def context_centres(sampler: Any, config: Any, grid: tuple[int, int], seeds: int,
                    batch: int) -> NDArray[np.float64]:
    """``(seeds, 2)``: the mean row and column of the first context tensor of each batch (seeds ``0..``)."""
    out = []
    for seed in range(seeds):
        c = sampler.sample_masks(grid, config, seed, batch).context[0]
        out.append(((c // grid[1]).mean(), (c % grid[1]).mean()))
    return np.asarray(out, dtype=np.float64)


# --- 3-D masks (V-JEPA) -------------------------------------------------------------


def oracle_video_best_keep(grid: tuple[int, int, int], box: tuple[int, int, int], context_frames: int) -> int:
    """The most context tokens any outcome keeps when every box is ``t x h x w``, by brute force.

    The union of the boxes contains each box, so the best outcome stacks them in one place; the
    context is every token of the first ``context_frames`` frames outside the union. Every position
    of one box is tried.
    """
    (frames, rows, cols), (t, h, w) = grid, box
    best = 0
    for start in range(frames - t + 1):
        covered_frames = max(0, min(start + t, context_frames) - start)
        best = max(best, context_frames * rows * cols - covered_frames * h * w)
    return best


def accepted_video_config(sampler: Any, problem: Any) -> Any:
    """The sampler's ``VideoMaskConfig`` for a drawn problem, validated on its grid (as :func:`accepted_config`)."""
    return accepted_config(sampler, problem, "VideoMaskConfig")


def rows_of(batch_indices: NDArray[np.int64], lengths: NDArray[np.int64] | None) -> list[set[int]]:
    """The index set of each row of a ``(B, K)`` mask, without padding past ``lengths``."""
    n = [batch_indices.shape[1]] * batch_indices.shape[0] if lengths is None else lengths.tolist()
    return [set(row[:k].tolist()) for row, k in zip(batch_indices, n)]


def box_tokens(box: NDArray[np.int64], grid: tuple[int, int, int]) -> set[int]:
    """The flat indices ``t * H * W + row * W + col`` of one box ``(start, top, left, t, h, w)``."""
    s, top, left, t, h, w = (int(v) for v in box)
    _, rows, cols = grid
    return {f * rows * cols + r * cols + c for f in range(s, s + t) for r in range(top, top + h)
            for c in range(left, left + w)}
