"""3-D RoPE in the V-JEPA step: the angles computed once per forward (``RotaryAngles``) against each attention
computing and applying its own, group by group (how ``RoPEAttention`` rotated before), side by side.

    python benchmarks/bench_rope.py                  # the video demo's step (configs/moving_digits_vjepa.yaml)
    python benchmarks/bench_rope.py --rounds 12

Both run the recipe's own step (``bench_precision.RecipeStep``: its method, networks, optimiser, masks, on
real batches) from the same weights. ``per-attention`` replaces each ``RoPEAttention.forward`` by the former
one: for keys and then queries, three calls of ``rope_rotate`` (angles of one axis, then the turn) and a
concatenation of the groups and the channels left as they are. The two give the same numbers (checked
before timing: the losses of one step, and the weights after it, equal bit for bit in float32). Rounds
alternate; the per-round ratio is printed as its median and range.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path
from types import MethodType
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_precision import RecipeStep, recipe  # noqa: E402
from benchmarks.bench_step import cpu_name  # noqa: E402
from jepa_torch.models.video import RoPEAttention, rope_rotate  # noqa: E402


def per_attention_forward(self: RoPEAttention, x: torch.Tensor, queries_from: int | None = None,
                          valid: torch.Tensor | None = None, pos: Any = None) -> torch.Tensor:
    """The former ``RoPEAttention.forward``: angles from the positions in every call, one group at a time."""
    positions = pos.positions if hasattr(pos, "positions") else pos

    def rotate(t: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        r = self.rot
        parts = [rope_rotate(t[..., a * r:(a + 1) * r], p[..., a], self.interleave) for a in range(3)]
        return torch.cat([*parts, t[..., 3 * r:]], dim=-1)

    B, N, D = x.shape
    qkv = self.qkv(x).view(B, N, 3, self.num_heads, self.head_dim)
    q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
    k = rotate(k, positions)
    if queries_from is not None:
        q = q[:, :, queries_from:]
        positions = positions[..., queries_from:, :]
    q = rotate(q, positions)
    keys = None if valid is None else valid[:, None, None, :]
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=keys)
    out: torch.Tensor = self.proj(y.transpose(1, 2).reshape(B, q.size(2), D))
    return out


class _Positions:
    """What the per-attention variant is handed: the raw positions (angles are not precomputed)."""

    def __init__(self, positions: torch.Tensor) -> None:
        self.positions = positions


def use_per_attention(model: torch.nn.Module) -> None:
    """Every rotary attention of ``model`` rotates as before (the networks hand it the raw positions while
    the per-attention step runs: see ``main``)."""
    for module in model.modules():
        if isinstance(module, RoPEAttention):
            module.forward = MethodType(per_attention_forward, module)  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/moving_digits_vjepa.yaml")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--per-round", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    import jepa_torch.models.video as video

    cfg, batches, model, size = recipe(args.config, ["run.device=cpu", "run.precision=fp32"])
    shared = RecipeStep(cfg, batches, copy.deepcopy(model), size)
    each = RecipeStep(cfg, batches, copy.deepcopy(model), size)
    use_per_attention(each.model)
    real = video.RotaryAngles.of

    def angles(pos: torch.Tensor, head_dim: int, interleave: bool = False) -> Any:
        return _Positions(pos) if each_running else real(pos, head_dim, interleave)

    video.RotaryAngles.of = angles  # type: ignore[method-assign,assignment]
    each_running = False
    steps = {"shared angles": shared, "per-attention": each}

    def run(name: str) -> float:
        nonlocal each_running
        each_running = name == "per-attention"
        return steps[name]()

    a, b = copy.deepcopy(shared), copy.deepcopy(each)
    steps_copy = {"shared angles": a, "per-attention": b}
    losses = {}
    for name, s in steps_copy.items():
        each_running = name == "per-attention"
        losses[name] = s()
    same = all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters()))
    if losses["shared angles"] != losses["per-attention"] or not same:
        raise SystemExit(f"the two differ: losses {losses}, weights equal: {same}; not timing them")
    for name in steps:
        run(name)
    times: dict[str, list[float]] = {k: [] for k in steps}
    ratios = []
    names = list(steps)
    for r in range(args.rounds):
        med = {}
        for name in names if r % 2 == 0 else names[::-1]:
            ts = []
            for _ in range(args.per_round):
                t0 = time.perf_counter()
                run(name)
                ts.append(time.perf_counter() - t0)
            med[name] = statistics.median(ts)
            times[name] += ts
        ratios.append(med["per-attention"] / med["shared angles"])
    print(f"{cpu_name()}, torch {torch.__version__}, {args.threads} threads, fp32; {args.config}")
    print(f"one step each from the same state: loss {losses['shared angles']:.6f} both, weights after it equal: {same}")
    for name, ts in times.items():
        print(f"{name:14s} {1e3 * statistics.median(ts):.0f} ms/step ({1e3 * min(ts):.0f}-{1e3 * max(ts):.0f})")
    print(f"shared angles speed-up {statistics.median(ratios):.2f}x (rounds {min(ratios):.2f}-{max(ratios):.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
