"""Peak memory of ``jepa-torch eval`` as the dataset grows: it must stay flat.

    python benchmarks/bench_eval_memory.py                      # 5k and 50k synthetic 64 px images
    python benchmarks/bench_eval_memory.py --sizes 2000 20000 --workers 2

Writes a synthetic ImageFolder (10 classes of 64 x 64 PNGs: a class colour and stripe frequency under
noise; 80% train, 20% val), an official-layout checkpoint of a 4-block ViT (width 192, patch 8) at
initialisation (``--preset vit_huge --patch 14 --depth 0 --img 224``: the ViT-H/14 layout), then
runs the whole command for each size in a fresh process, every probe on (linear, last-k, attentive,
kNN, and 10-shot low-shot), and prints its peak resident memory (the process and its DataLoader
workers, from ``getrusage``) and time. Memory that grew with the dataset would show here; what the
dataset itself would take in memory is printed beside it.

The probes train for one epoch (``--epochs 1 --attentive-epochs 1``): memory, not accuracy, is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CLASSES = 10


def write_images(root: Path, count: int, size: int) -> None:
    """``count`` synthetic images, split 80 / 20 into ``root/train`` and ``root/val``, 10 classes."""
    from PIL import Image

    rng = np.random.default_rng(0)
    hues = rng.uniform(40, 215, (CLASSES, 3))
    yy = np.arange(size)[:, None, None]
    for i in range(count):
        c = i % CLASSES
        split = "val" if (i // CLASSES) % 5 == 4 else "train"
        folder = root / split / f"class{c}"
        folder.mkdir(parents=True, exist_ok=True)
        stripes = 30 * np.sin(yy * (c + 1) * np.pi / size)
        pixels = np.clip(hues[c] + stripes + rng.normal(0, 30, (size, size, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:06d}.png", compress_level=1)


def link_subset(source: Path, dest: Path, count: int) -> None:
    """The first ``count`` images of ``source`` (by number) as symlinks under ``dest``."""
    for split in ("train", "val"):
        for folder in sorted((source / split).iterdir()):
            (dest / split / folder.name).mkdir(parents=True, exist_ok=True)
            for image in folder.iterdir():
                if int(image.stem) < count:
                    (dest / split / folder.name / image.name).symlink_to(image)


def write_checkpoint(path: Path, size: int, preset: str, patch: int, depth: int | None) -> None:
    """An official-layout checkpoint as the official trainer writes it (``module.`` prefixes), at init."""
    import torch

    from jepa_torch.models import build_predictor, build_vit

    torch.manual_seed(0)
    encoder = build_vit(preset, img_size=size, patch_size=patch, **({"depth": depth} if depth else {}))
    predictor = build_predictor(encoder, depth=1, pred_emb_dim=96)

    def ddp(module: torch.nn.Module) -> dict[str, torch.Tensor]:
        return {f"module.{k}": v for k, v in module.state_dict().items()}

    state = ddp(encoder)
    torch.save({"encoder": state, "predictor": ddp(predictor), "target_encoder": state, "epoch": 0,
                "opt": {"state": {}, "param_groups": []}, "scaler": None}, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 50000])
    parser.add_argument("--img", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers decoding the PNGs")
    parser.add_argument("--work", help="folder for the images and checkpoint (default: a temporary one)")
    parser.add_argument("--preset", default="vit_tiny", help="the encoder's preset (vit_huge: the ViT-H/14 layout)")
    parser.add_argument("--patch", type=int, default=8)
    parser.add_argument("--depth", type=int, default=4, help="blocks (0: the preset's)")
    parser.add_argument("--baselines", action="store_true", help="also the random-init and raw-pixel rows")
    args = parser.parse_args()

    import torch

    with tempfile.TemporaryDirectory(prefix="bench-eval-") as scratch:
        work = Path(args.work or scratch)
        work.mkdir(parents=True, exist_ok=True)
        full = work / f"images{max(args.sizes)}"
        if not (full / "val").is_dir():
            t = time.perf_counter()
            write_images(full, max(args.sizes), args.img)
            print(f"wrote {max(args.sizes)} images of {args.img} px in {time.perf_counter() - t:.0f} s", flush=True)
        checkpoint = work / "vit.pth.tar"
        write_checkpoint(checkpoint, args.img, args.preset, args.patch, args.depth or None)
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores; "
              f"DataLoader workers {args.workers}\n")
        print(f"{'images':>7s} {'train':>6s} {'val':>6s} {'peak RSS MiB':>13s} {'seconds':>8s} "
              f"{'images in memory MiB':>21s} {'tokens in memory MiB':>21s}")
        for count in sorted(args.sizes):
            root = full if count == max(args.sizes) else work / f"images{count}"
            if root != full and not (root / "val").is_dir():
                link_subset(full, root, count)
            report = work / f"report{count}.json"
            command = [sys.executable, "-m", "jepa_torch.cli", "eval", "--checkpoint", str(checkpoint),
                       "--train", str(root / "train"), "--val", str(root / "val"),
                       *([] if args.baselines else ["--no-baselines"]),
                       "--epochs", "1", "--attentive-epochs", "1", "--low-shot", "10", "--draws", "1",
                       "--workers", str(args.workers), "--batch-size", "256", "--no-progress", "--json", str(report)]
            t = time.perf_counter()
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
            seconds = time.perf_counter() - t
            result = json.loads(report.read_text())
            n = result["train_size"] + result["val_size"]
            tokens, width = (args.img // args.patch) ** 2, result["rows"][next(iter(result["rows"]))]["linear"]["dim"]
            print(f"{n:7d} {result['train_size']:6d} {result['val_size']:6d} {result['peak_rss_mib']:13.0f} "
                  f"{seconds:8.0f} {n * 3 * args.img ** 2 * 4 / 2**20:21.0f} {n * tokens * width * 4 / 2**20:21.0f}",
                  flush=True)


if __name__ == "__main__":
    main()
