"""What one training step keeps for its backward, with and without activation checkpointing.

    python benchmarks/bench_activation_memory.py                                  # ViT-H/14, 224 px, batch 32 and 128
    python benchmarks/bench_activation_memory.py --preset vit_base --patch 16 --pred-depth 6 --batch 128

The step's forward (target encoder, context encoder, predictor, loss) runs on PyTorch's ``meta``
device: shapes and dtypes only, no memory and no arithmetic, so a ViT-H at batch 128 is counted in
seconds on any machine. A ``saved_tensors_hooks`` pair adds up the bytes autograd keeps for the
backward: the activations. Beside them it prints the static memory of training: the weights of the
three networks, the gradients and AdamW's two moments (fp32) of the context encoder and predictor.

These are counts, not measurements of a device: a GPU's peak adds the backward's transient buffers,
the allocator's fragmentation and the CUDA context. With ``--dtype bfloat16`` the networks are cast
to bf16, an upper bound on what autocast keeps (autocast keeps fp32 copies of some inputs).
Masks: the official collator's law on the model's grid, one batch of seed 0 (``official_compatible``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jepa_core.masks import MaskConfig, sample_masks  # noqa: E402
from jepa_torch.objectives.loss import grouped_prediction_loss  # noqa: E402
from jepa_torch.models import JEPA, build_image_jepa  # noqa: E402

GIB = 2**30


def saved_bytes(args: argparse.Namespace, batch: int, recompute: bool, dtype: torch.dtype) -> tuple[int, int, int]:
    """(activation bytes kept for the backward, parameters of all three networks, trained parameters)."""
    with torch.device("meta"):
        encoder, predictor = build_image_jepa(args.preset, img_size=args.img, patch_size=args.patch,
                                              pred_depth=args.pred_depth, pred_emb_dim=args.pred_width)
        model = JEPA(encoder, predictor).to("meta", dtype)  # the fixed sin-cos tables are built on the CPU
    model.encoder.recompute = model.predictor.recompute = recompute
    grid = (args.img // args.patch,) * 2
    masks = sample_masks(grid, MaskConfig.official_compatible(), 0, batch)
    context = [torch.from_numpy(m).to("meta") for m in masks.context]
    targets = [torch.from_numpy(m).to("meta") for m in masks.targets]
    images = torch.empty(batch, 3, args.img, args.img, device="meta", dtype=dtype)
    kept = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal kept
        kept += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        predictions, target_tokens, _ = model(images, context, targets)
        grouped_prediction_loss(predictions, target_tokens, "smooth_l1")
    trained = sum(p.numel() for m in (model.encoder, model.predictor) for p in m.parameters() if p.requires_grad)
    return kept, sum(p.numel() for p in model.parameters()), trained


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="vit_huge")
    parser.add_argument("--img", type=int, default=224)
    parser.add_argument("--patch", type=int, default=14)
    parser.add_argument("--pred-depth", type=int, default=12)
    parser.add_argument("--pred-width", type=int, default=384)
    parser.add_argument("--batch", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], nargs="+", default=["bfloat16", "float32"])
    args = parser.parse_args()
    print(f"{args.preset}, {args.img} px, patch {args.patch}, predictor {args.pred_depth} x {args.pred_width}")
    static_printed = False
    for name in args.dtype:
        dtype = getattr(torch, name)
        for batch in args.batch:
            plain, params, trained = saved_bytes(args, batch, False, dtype)
            recomputed, _, _ = saved_bytes(args, batch, True, dtype)
            if not static_printed:
                weights = params * 4
                rest = trained * 4 * 3  # gradients + AdamW's exp_avg and exp_avg_sq, fp32
                print(f"static (fp32): weights of the three networks {weights / GIB:.1f} GiB ({params / 1e6:.0f} M), "
                      f"gradients and AdamW moments of the {trained / 1e6:.0f} M trained {rest / GIB:.1f} GiB")
                static_printed = True
            print(f"{name:9s} batch {batch:4d}: activations kept {plain / GIB:6.2f} GiB; with activation "
                  f"checkpointing {recomputed / GIB:6.2f} GiB ({plain / max(recomputed, 1):.0f}x less)")


if __name__ == "__main__":
    main()
