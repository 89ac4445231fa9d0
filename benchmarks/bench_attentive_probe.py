"""One training step of the attentive probe, by its number of blocks, on the video demo's tokens.

    python benchmarks/bench_attentive_probe.py                        # 1 (I-JEPA's pooler) against 2 and 4
    python benchmarks/bench_attentive_probe.py --blocks 1 4 --tokens 1568 --dim 1024 --device cuda

``--attentive-blocks`` of ``jepa-torch eval`` picks the probe: 1 is I-JEPA's attentive pooler (one
cross-attention block), 4 is V-JEPA 2's video probe (three self-attention blocks over the tokens, then
the cross-attention block). A step is what ``train_heads`` runs for one head: forward on a batch of frozen
tokens, cross-entropy, backward, AdamW. The default shape is the video demo's: 256 tokens of 192 (a 4 x 8 x
8 tubelet grid of ViT-tiny), batch 64, 8 classes. The depths are timed in alternating rounds (the order
reversed every other round), and each one's median ms/step and its ratio to the first depth, with the
range over rounds, are printed: what a probe of that depth costs the evaluation, per head and step.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jepa_torch.evaluation.probes import AttentiveProbe  # noqa: E402


def _stepper(blocks: int, args: argparse.Namespace, device: torch.device) -> Callable[[], None]:
    torch.manual_seed(0)
    probe = AttentiveProbe(args.dim, args.classes, max(1, args.dim // 64), blocks=blocks).to(device)
    opt = torch.optim.AdamW(probe.parameters(), lr=1e-3, weight_decay=0.01)
    x = torch.randn(args.batch, args.tokens, args.dim, device=device)
    y = torch.randint(0, args.classes, (args.batch,), device=device)

    def step() -> None:
        loss = F.cross_entropy(probe(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def _time(step: Callable[[], None], n: int, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(n):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--dim", type=int, default=192)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--classes", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=5, help="steps per round and depth")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} "
          f"threads, {device}; batch {args.batch} x {args.tokens} tokens x {args.dim}")
    steps = {b: _stepper(b, args, device) for b in args.blocks}
    for step in steps.values():  # warm-up
        _time(step, 2, device)
    times: dict[int, list[float]] = {b: [] for b in args.blocks}
    for r in range(args.rounds):
        for b in (args.blocks if r % 2 == 0 else args.blocks[::-1]):
            times[b].append(_time(steps[b], args.steps, device))
    first = args.blocks[0]
    print(f"{'blocks':>6s} {'ms/step':>9s} {'x blocks=' + str(first):>14s} {'range':>13s}")
    for b in args.blocks:
        ratios = [t / f for t, f in zip(times[b], times[first])]
        print(f"{b:6d} {1000 * statistics.median(times[b]):9.1f} {statistics.median(ratios):13.2f}x "
              f"{min(ratios):6.2f}-{max(ratios):.2f}")


if __name__ == "__main__":
    main()
