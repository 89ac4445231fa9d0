"""What the checkpoint digest costs: writing and reading a ViT-B/16 training checkpoint with and without it.

    python benchmarks/bench_digest.py                     # ViT-B/16 at 224 px, predictor 12 x 384 (~1.6 GB file)
    python benchmarks/bench_digest.py --preset vit_small  # a smaller file
    python benchmarks/bench_digest.py --folder /data/tmp  # write on that disk instead of the temporary folder

A training checkpoint of this size is built as the trainer builds it (the three networks, AdamW's two
moments after one step, the official layout of ``save_training_checkpoint``), then, in alternating
rounds (with, then without; reversed every other round), each side is timed:

- ``digest``: :func:`jepa_torch.io.checkpoint.payload_digest` of the payload alone;
- ``save``: ``atomic_save`` (digest, ``torch.save``, fsync, rename) against the same atomic write of
  ``torch.save`` without the digest;
- ``load``: ``read_official`` (``torch.load`` and the digest recomputed and compared) against
  ``torch.load`` alone.

Medians over the rounds are printed with the ratio and the hashing rate. The page cache makes the
loads read from memory after the first round: a cold read from disk adds the same time to both sides.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jepa_torch.io.checkpoint import CheckpointWriteError, atomic_save, payload_digest, read_official  # noqa: E402
from jepa_torch.config import DataConfig, ModelConfig, TrainConfig  # noqa: E402
from jepa_torch.io.files import atomic_write  # noqa: E402
from jepa_torch.training.optim import make_optimizer  # noqa: E402
from jepa_torch.training.resume import save_training_checkpoint  # noqa: E402
from jepa_torch.training.loop import build_model  # noqa: E402


def _payload(preset: str, folder: Path) -> dict[str, Any]:
    """A training checkpoint's dict, as the trainer writes it (read back from a file it wrote)."""
    cfg = TrainConfig(model=ModelConfig(preset=preset, patch_size=16, pred_depth=12, pred_emb_dim=384),
                      data=DataConfig(img_size=224))
    model, arch = build_model(cfg, ("image", (3, 224, 224)))
    optimizer = make_optimizer([model.encoder, model.predictor], lr=1e-3, weight_decay=0.04)
    for p in [*model.encoder.parameters(), *model.predictor.parameters()]:
        p.grad = torch.full_like(p, 1e-3) if p.requires_grad else None
    optimizer.step()  # AdamW's moments exist from here on
    path = folder / "built.pt"
    save_training_checkpoint(path, networks={"encoder": model.encoder, "predictor": model.predictor,
                                             "target_encoder": model.target_encoder},
                             trained=("encoder", "predictor"), optimizer=optimizer, step=1, epoch=0, config={},
                             global_batch=64, world_size=1, loss=0.5, method="ijepa", model=arch,
                             encoders={"target": "target_encoder", "context": "encoder"})
    payload = torch.load(path, weights_only=True)
    path.unlink()
    return payload


def _time(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="vit_base")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--folder", help="where the files are written (default: a temporary folder)")
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory(dir=args.folder) as scratch:
        folder = Path(scratch)
        payload = _payload(args.preset, folder)
        tensors = [v for v in _leaves(payload) if isinstance(v, torch.Tensor)]
        size = sum(t.numel() * t.element_size() for t in tensors)
        print(f"{args.preset}/16 training checkpoint: {size / 2**30:.2f} GiB of tensors in {len(tensors)} tensors; "
              f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs")
        with_digest, without = folder / "with.pt", folder / "without.pt"
        plain: Callable[[], None] = lambda: atomic_write(without, lambda f: torch.save(payload, f),  # noqa: E731
                                                         error=CheckpointWriteError)
        times: dict[str, list[float]] = {k: [] for k in ("digest", "save+", "save", "load+", "load")}
        for r in range(args.rounds):
            sides = [("save+", lambda: atomic_save(payload, with_digest)), ("save", plain)]
            for name, fn in sides if r % 2 == 0 else sides[::-1]:
                times[name].append(_time(fn))
            times["digest"].append(_time(lambda: payload_digest(payload)))
            loads = [("load+", lambda: read_official(with_digest)),
                     ("load", lambda: torch.load(without, map_location="cpu", weights_only=True))]
            for name, fn in loads if r % 2 == 0 else loads[::-1]:
                times[name].append(_time(fn))
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"digest alone:        {med['digest']:6.2f} s  ({size / 2**20 / med['digest']:.0f} MiB/s, sha256)")
        print(f"save with digest:    {med['save+']:6.2f} s  without: {med['save']:6.2f} s  "
              f"(+{med['save+'] - med['save']:.2f} s, x{med['save+'] / med['save']:.2f})")
        print(f"load and verify:     {med['load+']:6.2f} s  torch.load alone: {med['load']:6.2f} s  "
              f"(+{med['load+'] - med['load']:.2f} s, x{med['load+'] / med['load']:.2f})")
        print("rounds (s): " + "; ".join(f"{k} " + " ".join(f"{t:.2f}" for t in v) for k, v in times.items()))


def _leaves(obj: Any) -> list[Any]:
    if isinstance(obj, dict):
        return [x for v in obj.values() for x in _leaves(v)]
    if isinstance(obj, (list, tuple)):
        return [x for v in obj for x in _leaves(v)]
    return [obj]


if __name__ == "__main__":
    main()
