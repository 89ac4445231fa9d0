"""CUDA checks of the step: bf16 autocast, fused AdamW, agreement with the CPU. Skipped without a GPU."""

from __future__ import annotations

import copy

import pytest
import torch

from jepa_core.masks import MaskConfig, sample_masks
from jepa_torch.models import build_image_jepa
from jepa_torch.training.optim import make_optimizer
from jepa_torch.models import JEPA
from jepa_torch.methods.step import train_step

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _setup(batch: int = 8) -> tuple[JEPA, torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    torch.manual_seed(0)
    encoder, predictor = build_image_jepa("vit_tiny", img_size=64, patch_size=8, pred_depth=2, pred_emb_dim=96)
    masks = sample_masks((8, 8), MaskConfig(min_keep=4), 0, batch)
    x = torch.randn(batch, 3, 64, 64)
    return (JEPA(encoder, predictor), x, [torch.from_numpy(m) for m in masks.context],
            [torch.from_numpy(m) for m in masks.targets])


def test_cuda_forward_matches_cpu_in_fp32() -> None:
    model, x, context_masks, target_masks = _setup()
    cpu_pred, cpu_tgt, cpu_ctx = model(x, context_masks, target_masks)
    gpu_model = copy.deepcopy(model).cuda()
    torch.backends.cuda.matmul.allow_tf32 = False  # true fp32 on the GPU, for the comparison
    torch.backends.cudnn.allow_tf32 = False  # the patch-embedding convolution
    gpu_pred, gpu_tgt, gpu_ctx = gpu_model(x.cuda(), [m.cuda() for m in context_masks], [m.cuda() for m in target_masks])
    for a, b in zip([*cpu_pred, *cpu_tgt, cpu_ctx], [*gpu_pred, *gpu_tgt, gpu_ctx], strict=True):
        torch.testing.assert_close(b.cpu(), a, rtol=1e-4, atol=1e-4)


def test_bf16_step_on_cuda_trains_and_keeps_fp32_weights() -> None:
    model, x, context_masks, target_masks = _setup()
    model = model.cuda()
    opt = make_optimizer([model.encoder, model.predictor], lr=3e-4, weight_decay=0.0)
    assert opt.defaults.get("fused") is True
    x, context_masks, target_masks = x.cuda(), [m.cuda() for m in context_masks], [m.cuda() for m in target_masks]
    with torch.autocast("cuda", dtype=torch.bfloat16):
        predictions, _, _ = model(x, context_masks, target_masks)
    assert all(p.dtype == torch.bfloat16 for p in predictions)
    losses = [float(train_step(model, opt, x, context_masks, target_masks, momentum=0.996).loss) for _ in range(30)]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0]
    assert all(p.dtype == torch.float32 for p in model.parameters())
