"""A tour of the spec: one JEPA objective on the numpy reference backend, then its laws.

    python examples/spec_demo.py
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from jepa_core.reference import backend


def main() -> int:
    rng = np.random.default_rng(0)
    batch, grid, input_dim = 2, 4, 3
    n = grid * grid
    tokens = rng.normal(size=(batch, n, input_dim))  # (B, N, d_in): a 4x4 grid of 3-d patches
    order = np.stack([rng.permutation(n) for _ in range(batch)])
    blocks = [np.sort(order[:, 0:3], axis=1), np.sort(order[:, 3:6], axis=1)]  # two target blocks of 3
    context = np.sort(order[:, 6:], axis=1)  # the rest is visible
    kw = dict(seed=7, kind="smooth_l1")

    total = backend.objective(tokens, context, blocks, reduction="sum", **kw)
    mean = backend.objective(tokens, context, blocks, reduction="mean", **kw)
    first = backend.objective(tokens, context, blocks[:1], reduction="sum", **kw)
    second = backend.objective(tokens, context, blocks[1:], reduction="sum", **kw)
    print(f"JEPA objective on {batch} samples, {n} tokens, {len(blocks)} target blocks of 3")
    print(f"  sum over target blocks      {total:.6f}")
    print(f"  mean = sum / (tokens x D)   {mean:.6f}")
    print(f"  jepaLoss_nil     loss([])            = {backend.objective(tokens, context, [], reduction='sum', **kw)}")
    print(f"  jepaLoss_append  loss(a)+loss(b)     = {first + second:.6f}")
    print(f"  jepaLoss_reverse loss(reversed list) = {backend.objective(tokens, context, blocks[::-1], reduction='sum', **kw):.6f}")
    print("\nRunning the law suite against the numpy reference backend ...", flush=True)
    root = Path(__file__).resolve().parent.parent
    return subprocess.call(
        [sys.executable, "-m", "pytest", "properties", "--jepa-backend=jepa_core.reference:backend", "-q"],
        cwd=root,
    )


if __name__ == "__main__":
    raise SystemExit(main())
