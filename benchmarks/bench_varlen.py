"""Variable-length attention for whole contexts: padding with a key mask against the alternatives.

    python benchmarks/bench_varlen.py                 # CPU, 2 threads, ViT-S attention at the paper's grid
    python benchmarks/bench_varlen.py --device cuda   # the same on a GPU (bf16)

Whole contexts (``mask.context_trim: none``) differ in length within a batch. This times one
attention call, forward and backward, over the context lengths of real batches (the
official-compatible law on the 16x16 grid, ``--batch`` samples, one draw per round), done four ways:

- ``cut``: every context cut to the batch's shortest (the official batching): the work it replaces;
- ``padded``: padded to the longest, SDPA with a boolean key mask (what the models do);
- ``jagged``: a nested jagged tensor (``torch.nested``, ``layout=torch.jagged``) through SDPA;
- ``loop``: one SDPA call per sample.

Each way is checked against the per-sample loop on the real tokens (max |difference|) before it is
timed; a way that fails on this device is reported with its error instead of a time. Rounds alternate
the ways; the median is printed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jepa_core.masks import MaskConfig, sample_masks  # noqa: E402

Fn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def _lengths(batch: int, seed: int) -> list[int]:
    mb = sample_masks((16, 16), MaskConfig.official_compatible(context_trim="none"), seed, batch)
    assert mb.context_lengths is not None
    return [int(n) for n in mb.context_lengths[0]]


def _padded(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, lengths: list[int]) -> torch.Tensor:
    keys = torch.arange(q.shape[2], device=q.device) < torch.tensor(lengths, device=q.device)[:, None]
    return F.scaled_dot_product_attention(q, k, v, attn_mask=keys[:, None, None, :])


def _cut(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, lengths: list[int]) -> torch.Tensor:
    n = min(lengths)
    return F.scaled_dot_product_attention(q[:, :, :n], k[:, :, :n], v[:, :, :n])


def _loop(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, lengths: list[int]) -> list[torch.Tensor]:
    return [F.scaled_dot_product_attention(q[b : b + 1, :, :n], k[b : b + 1, :, :n], v[b : b + 1, :, :n])[0]
            for b, n in enumerate(lengths)]


def _jagged(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, lengths: list[int]) -> list[torch.Tensor]:
    def nest(x: torch.Tensor) -> torch.Tensor:
        rows = [x[b, :, :n].transpose(0, 1) for b, n in enumerate(lengths)]  # each (n, h, hd)
        with warnings.catch_warnings():  # the prototype notice of torch.nested
            warnings.simplefilter("ignore", UserWarning)
            nested = torch.nested.as_nested_tensor(rows, layout=torch.jagged)  # (B, j, h, hd)
        return nested.transpose(1, 2)  # (B, h, j, hd)
    out = F.scaled_dot_product_attention(nest(q), nest(k), nest(v)).transpose(1, 2)  # (B, j, h, hd)
    return [t.transpose(0, 1) for t in out.unbind()]  # each (h, n, hd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--width", type=int, default=384)
    parser.add_argument("--heads", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
    device = torch.device(args.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    torch.set_num_threads(args.threads)
    hd = args.width // args.heads
    draws = [_lengths(args.batch, s) for s in range(args.rounds)]
    print(f"{device}, {args.threads} threads, torch {torch.__version__}, batch {args.batch}, {args.heads} heads of {hd}; "
          f"whole context lengths {min(min(d) for d in draws)}-{max(max(d) for d in draws)} "
          f"(mean {np.mean(draws):.1f}), batch minimum mean {np.mean([min(d) for d in draws]):.1f}")

    def inputs(lengths: list[int]) -> tuple[torch.Tensor, ...]:
        g = torch.Generator().manual_seed(len(lengths) + max(lengths))
        shape = (args.batch, args.heads, max(lengths), hd)
        return tuple(torch.randn(shape, generator=g).to(device, dtype).requires_grad_() for _ in range(3))

    def run(way: str, lengths: list[int]) -> None:
        q, k, v = inputs(lengths)
        out = {"cut": _cut, "padded": _padded, "jagged": _jagged, "loop": _loop}[way](q, k, v, lengths)
        total = out.sum() if isinstance(out, torch.Tensor) else sum(o.sum() for o in out)
        total.backward()  # type: ignore[union-attr]

    ways, failed = ["cut", "padded", "jagged", "loop"], {}
    with torch.no_grad():
        q, k, v = inputs(draws[0])
        want = _loop(q, k, v, draws[0])
        for way in ("padded", "jagged"):
            try:
                got = _padded(q, k, v, draws[0]) if way == "padded" else _jagged(q, k, v, draws[0])
                rows = [got[b, :, :n] for b, n in enumerate(draws[0])] if way == "padded" else got
                diff = max(float((a.float() - b.float()).abs().max()) for a, b in zip(rows, want))
                print(f"{way}: max |difference| from the per-sample loop {diff:.1e}")
            except Exception as exc:  # noqa: BLE001 (report any failure of a way and go on)
                failed[way] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
    for way in list(ways):
        if way not in failed:
            try:
                run(way, draws[0])  # warm-up, and the backward must work too
            except Exception as exc:  # noqa: BLE001
                failed[way] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
    ways = [w for w in ways if w not in failed]
    times: dict[str, list[float]] = {w: [] for w in ways}
    for r, lengths in enumerate(draws):
        for way in ways if r % 2 == 0 else ways[::-1]:
            t0 = time.perf_counter()
            run(way, lengths)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times[way].append(time.perf_counter() - t0)
    for way in ["cut", "padded", "jagged", "loop"]:
        if way in failed:
            print(f"{way:7s} failed: {failed[way]}")
        else:
            ms = 1e3 * statistics.median(times[way])
            print(f"{way:7s} {ms:8.2f} ms forward + backward (median of {len(times[way])})")


if __name__ == "__main__":
    main()
