"""Memory per process under DDP and FSDP2, measured on real steps, and counted for large models.

    python benchmarks/bench_fsdp.py                                   # ViT-S/8 at 64 px, 2 processes, CPU (gloo)
    python benchmarks/bench_fsdp.py --preset vit_base --img 96 --world 4 --steps 4
    python benchmarks/bench_fsdp.py --count vit_huge --patch 14 --img 224 --pred-depth 12 --world 8

Measure mode starts ``--world`` processes (gloo on the CPU, NCCL on GPUs, one GPU each), builds the
same JEPA in each, wraps it as ``run.parallel`` does (DDP, or ``jepa_torch.models.sharding.shard``), and runs
``--steps`` training steps of the global batch ``--batch`` (split over the processes; masks of the
official law, seed 0). Each process then reports:

- ``state``: the bytes it holds of the three networks' parameters, the gradients and AdamW's
  moments, counted from the tensors it holds (its shards under FSDP);
- ``start``: what the process holds when the steps start (after building, wrapping and the
  optimiser): on a GPU ``torch.cuda.memory_allocated``, on the CPU the resident set (Python and
  torch included), after freed memory is handed back to the system (``malloc_trim``);
- ``steps add``: the most the steps add to ``start``: on a GPU from ``torch.cuda.max_memory_allocated``; on
  the CPU the resident set sampled every millisecond by a thread (activations, gradients, AdamW's
  moments once created, gathered blocks). On the CPU each process first fixes glibc's mmap threshold
  (``bound_heap_growth``), so that freed blocks leave the resident set: with glibc's default, which
  keeps them, FSDP's many gathered-then-freed blocks show as growth that is not alive;
- ``peak``: ``start`` plus what the steps add, the process's high-water mark;
- the median step time (not a speed claim: gloo on 2 cores is not a cluster).

Count mode builds the networks on the meta device and prints what each of ``--world`` processes
would hold of the parameters, gradients and AdamW state (fp32), without running anything: a count,
not a measurement (a GPU's peak adds activations, see ``bench_activation_memory.py``, the gathered
blocks and the allocator's caches).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jepa_core.masks import MaskConfig, sample_masks  # noqa: E402
from jepa_torch.evaluation.features import bound_heap_growth  # noqa: E402
from jepa_torch.models.sharding import local_bytes, mesh_for, shard  # noqa: E402
from jepa_torch.models import JEPA, build_image_jepa  # noqa: E402
from jepa_torch.training.optim import make_optimizer  # noqa: E402
from jepa_torch.methods.step import StepConfig, train_step  # noqa: E402

MIB = 2**20


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _Sampler(threading.Thread):
    """The highest resident set seen while it runs, read every millisecond."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = _rss()
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.001):
            self.peak = max(self.peak, _rss())


def _trim() -> None:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:  # not glibc: the start figure then includes freed memory the allocator kept
        pass


def _worker(rank: int, args: argparse.Namespace, mode: str, store: str, out: str) -> None:
    torch.set_num_threads(args.threads)
    cuda = torch.cuda.is_available() and not args.cpu
    if not cuda:  # freed blocks go back to the system, so the resident set follows what is alive
        bound_heap_growth()
    device = torch.device("cuda", rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if cuda else "gloo", init_method=f"file://{store}", rank=rank,
                            world_size=args.world)
    torch.manual_seed(0)
    encoder, predictor = build_image_jepa(args.preset, img_size=args.img, patch_size=args.patch,
                                          pred_depth=args.pred_depth, pred_emb_dim=args.pred_width)
    model = JEPA(encoder, predictor).to(device)
    forward: torch.nn.Module = model
    if mode == "fsdp":
        shard(model, mesh_for(device, args.world))
    else:
        forward = torch.nn.parallel.DistributedDataParallel(model, device_ids=[rank] if cuda else None)
    optimizer = make_optimizer([model.encoder, model.predictor])
    del encoder, predictor
    share = args.batch // args.world
    grid = (args.img // args.patch,) * 2
    masks = sample_masks(grid, MaskConfig.official_compatible(), 0, args.batch)
    rows = slice(rank * share, (rank + 1) * share)
    context = [torch.from_numpy(m[rows]).to(device) for m in masks.context]
    targets = [torch.from_numpy(m[rows]).to(device) for m in masks.targets]
    images = torch.randn(args.batch, 3, args.img, args.img, generator=torch.Generator().manual_seed(1))[rows].to(device)
    _trim()
    sampler = _Sampler()
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
        start_bytes = torch.cuda.memory_allocated(device)
    else:
        start_bytes = _rss()
        sampler.start()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        result = train_step(model, optimizer, images, context, targets, 0.996, StepConfig(), forward=forward)
        float(result.loss)
        times.append(time.perf_counter() - start)
    sampler.done.set()
    if not cuda:
        sampler.join()
    tensors = [*model.parameters()]
    tensors += [p.grad for p in model.parameters() if p.grad is not None]
    tensors += [v for s in optimizer.state.values() for v in s.values() if isinstance(v, torch.Tensor)]
    report = {"rank": rank, "state": local_bytes(*tensors), "start": start_bytes,
              "peak": (torch.cuda.max_memory_allocated(device) if cuda else sampler.peak) - start_bytes,
              "kind": "cuda allocated" if cuda else "resident set",
              "step_s": statistics.median(times[1:] or times), "loss": float(result.loss)}
    Path(out, f"{mode}_{rank}.json").write_text(json.dumps(report))
    dist.barrier()
    dist.destroy_process_group()


def measure(args: argparse.Namespace) -> None:
    print(f"{args.preset}/{args.patch} at {args.img} px, predictor {args.pred_depth} x {args.pred_width}, global batch "
          f"{args.batch} over {args.world} processes, {args.steps} steps, {args.threads} thread(s) each, torch "
          f"{torch.__version__}")
    print(f"{'mode':<5} {'rank':>4} {'state MiB':>10} {'start MiB':>10} {'steps add MiB':>14} {'peak MiB':>9}  "
          f"{'memory is':<15} {'step s':>7} {'loss':>10}")
    losses = {}
    for mode in args.modes:
        with tempfile.TemporaryDirectory() as out:
            store = os.path.join(out, "store")
            mp.spawn(_worker, args=(args, mode, store, out), nprocs=args.world, join=True)
            reports = [json.loads(Path(out, f"{mode}_{r}.json").read_text()) for r in range(args.world)]
        for r in reports:
            print(f"{mode:<5} {r['rank']:>4} {r['state'] / MIB:>10.1f} {r['start'] / MIB:>10.1f} "
                  f"{r['peak'] / MIB:>14.1f} {(r['start'] + r['peak']) / MIB:>9.1f}  {r['kind']:<15} "
                  f"{r['step_s']:>7.3f} {r['loss']:>10.6f}")
        losses[mode] = reports[0]["loss"]
    if len(losses) > 1:
        spread = max(losses.values()) - min(losses.values())
        print(f"last loss of every mode within {spread:.2e} of each other")


def count(args: argparse.Namespace) -> None:
    with torch.device("meta"):
        encoder, predictor = build_image_jepa(args.count, img_size=args.img, patch_size=args.patch,
                                              pred_depth=args.pred_depth, pred_emb_dim=args.pred_width)
    world = args.world

    def rows(p: torch.Tensor, shards: int) -> int:  # the largest shard of dim 0 (torch.chunk's split)
        per = -(-p.shape[0] // shards) if p.ndim else 1
        return per * (p.numel() // max(p.shape[0], 1) if p.ndim else 1)

    print(f"{args.count}/{args.patch} at {args.img} px, predictor {args.pred_depth} x {args.pred_width}; fp32 "
          "parameters, gradients and AdamW moments; counted on the meta device")
    print(f"{'':<26} {'DDP GiB':>9} {f'FSDP x{world} GiB':>14}")
    trained = [p for net in (encoder, predictor) for p in net.parameters() if p.requires_grad]
    weights = [*encoder.parameters(), *predictor.parameters(), *encoder.parameters()]  # the target: a copy
    totals = [0, 0]
    for name, params, per_value in (("weights, all three nets", weights, 4), ("gradients", trained, 4),
                                    ("AdamW moments", trained, 8)):
        whole = sum(p.numel() for p in params) * per_value
        sharded = sum(rows(p, world) for p in params) * per_value
        totals = [totals[0] + whole, totals[1] + sharded]
        print(f"{name:<26} {whole / 2**30:>9.2f} {sharded / 2**30:>14.2f}")
    print(f"{'total per process':<26} {totals[0] / 2**30:>9.2f} {totals[1] / 2**30:>14.2f}")
    largest = max(sum(p.numel() for p in blk.parameters()) for blk in encoder.blocks) * 4
    print(f"one gathered encoder block: {largest / MIB:.0f} MiB (FSDP holds about two at a time: the running one and "
          "the prefetched next)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="vit_small")
    parser.add_argument("--img", type=int, default=64)
    parser.add_argument("--patch", type=int, default=8)
    parser.add_argument("--pred-depth", type=int, default=6)
    parser.add_argument("--pred-width", type=int, default=192)
    parser.add_argument("--batch", type=int, default=16, help="global batch, split over the processes")
    parser.add_argument("--world", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--modes", nargs="+", default=["ddp", "fsdp"], choices=["ddp", "fsdp"])
    parser.add_argument("--cpu", action="store_true", help="stay on the CPU even when GPUs are visible")
    parser.add_argument("--count", metavar="PRESET", help="count what each process holds of PRESET instead")
    args = parser.parse_args()
    if args.batch % args.world:
        parser.error(f"--batch {args.batch} must be divisible by --world {args.world}")
    if args.count:
        count(args)
    else:
        measure(args)


if __name__ == "__main__":
    main()
