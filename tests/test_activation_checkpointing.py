"""Activation checkpointing (``run.activation_checkpointing``): the same step, less saved for the backward."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import torch

from jepa_torch.models import JEPA, build_image_jepa
from jepa_torch.training.optim import make_optimizer
from jepa_torch.methods.step import StepConfig, train_step
from jepa_torch.training.loop import train

from .test_train import tiny_config
from .test_whole_contexts import _whole_batch


def _saved_bytes(model: JEPA, images: torch.Tensor, masks: tuple[list[torch.Tensor], ...]) -> tuple[int, list[torch.Tensor]]:
    """Bytes autograd keeps for the backward during one forward, and the gradients of that step."""
    total = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    opt = make_optimizer([model.encoder, model.predictor], lr=0.0)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        train_step(model, opt, images, masks[0], masks[1], momentum=1.0, config=StepConfig(precision="fp32"),
                   context_lengths=masks[2])
    grads = [p.grad.clone() for p in [*model.encoder.parameters(), *model.predictor.parameters()]
             if p.grad is not None]
    return total, grads


def test_recomputed_blocks_give_the_same_gradients_and_keep_less() -> None:
    torch.manual_seed(0)
    encoder, predictor = build_image_jepa("vit_tiny", img_size=24, patch_size=4, depth=4, pred_depth=3,
                                          pred_emb_dim=48)
    plain = JEPA(encoder, predictor)
    recomputed = copy.deepcopy(plain)
    recomputed.encoder.recompute = recomputed.predictor.recompute = True
    images = torch.randn(3, 3, 24, 24)
    masks = _whole_batch(3, seed=1)  # padded whole contexts: the valid mask goes through the checkpoint too
    kept_plain, grads_plain = _saved_bytes(plain, images, masks)
    kept_recomputed, grads_recomputed = _saved_bytes(recomputed, images, masks)
    for a, b in zip(grads_plain, grads_recomputed, strict=True):
        assert torch.equal(a, b)  # the recomputation runs the same kernels on the same inputs
    assert kept_recomputed < 0.35 * kept_plain, (kept_recomputed, kept_plain)


def test_a_run_with_activation_checkpointing_logs_the_same_losses(tmp_path: Path) -> None:
    plain = train(tiny_config(tmp_path / "plain", max_steps=3), progress=False).losses
    cfg = tiny_config(tmp_path / "recomputed", max_steps=3)
    cfg = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, activation_checkpointing=True))
    assert train(cfg, progress=False).losses == plain
