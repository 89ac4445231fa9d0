"""The official trainer resumes from our training checkpoints.

The layout half runs everywhere. The resume itself needs a checkout of facebookresearch/ijepa, named by
the environment variable ``IJEPA_CHECKOUT``; without one it is skipped with that reason. It builds the
official networks and optimiser from the checkout's own modules, wraps them in DDP on a one-process
gloo group as its ``src/train.py`` does, and calls its ``src.helper.load_checkpoint`` on a checkpoint our
trainer wrote. Nothing of the official code is copied here.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import os
import sys
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
from torch import nn

from jepa_torch.io.checkpoint import read_official
from jepa_torch.io.export import export_encoder
from jepa_torch.models import JEPA, build_image_jepa
from jepa_torch.training.optim import (from_official_optimizer_state, make_optimizer, official_param_groups,
                                       to_official_optimizer_state)
from jepa_torch.training.resume import list_checkpoints
from jepa_torch.methods.step import StepConfig, train_step
from jepa_torch.training.loop import train

from .test_train import tiny_config


def _trained(steps: int = 3) -> tuple[JEPA, torch.optim.AdamW]:
    torch.manual_seed(0)
    encoder, predictor = build_image_jepa("vit_tiny", img_size=16, patch_size=4, depth=2, pred_depth=1,
                                          pred_emb_dim=48)
    model = JEPA(encoder, predictor)
    opt = make_optimizer([model.encoder, model.predictor], lr=1e-3)
    images = torch.randn(2, 3, 16, 16)
    for _ in range(steps):
        train_step(model, opt, images, [torch.tensor([[0, 1, 2, 5, 6], [3, 4, 8, 9, 10]])],
                   [torch.tensor([[12, 13], [14, 15]])], 0.99, StepConfig(precision="fp32"))
    return model, opt


def test_official_optimizer_layout_has_the_official_groups() -> None:
    model, opt = _trained()
    state = to_official_optimizer_state(opt, model.encoder, model.predictor)
    members = official_param_groups(model.encoder, model.predictor)
    assert [len(g["params"]) for g in state["param_groups"]] == [len(p) for p, _ in members]
    assert [g.get("WD_exclude", False) for g in state["param_groups"]] == [False, False, True, True]
    assert all(g["fused"] is None and g["foreach"] is None for g in state["param_groups"])
    # the frozen position embeddings are numbered (the official optimiser holds them) but have no state
    numbered = [p for params, _ in members for p in params]
    frozen = [i for i, p in enumerate(numbered) if not p.requires_grad]
    assert frozen and not set(frozen) & set(state["state"])
    for i, p in enumerate(numbered):
        if p.requires_grad:
            assert state["state"][i]["exp_avg"].shape == p.shape


def test_official_layout_round_trips_into_our_optimiser() -> None:
    model, opt = _trained()
    official = to_official_optimizer_state(opt, model.encoder, model.predictor)
    twin = copy.deepcopy(model)
    twin_opt = make_optimizer([twin.encoder, twin.predictor], lr=1e-3)
    twin_opt.load_state_dict(from_official_optimizer_state(official, twin_opt, twin.encoder, twin.predictor))
    assert twin_opt.param_groups[0]["fused"] == opt.param_groups[0]["fused"]  # our kernels stay ours
    for a, b in zip(opt.param_groups, twin_opt.param_groups, strict=True):
        for p, q in zip(a["params"], b["params"], strict=True):
            for key, value in opt.state[p].items():
                assert torch.equal(value, twin_opt.state[q][key]), key


def test_our_checkpoint_has_the_entries_the_official_resume_reads(tmp_path: Path) -> None:
    train(tiny_config(tmp_path / "run", max_steps=4), progress=False)
    _, path = list_checkpoints(tmp_path / "run" / "checkpoints")[-1]
    ckpt = read_official(path)
    assert all(k.startswith("module.") for name in ("encoder", "predictor", "target_encoder") for k in ckpt[name])
    assert {"opt", "scaler", "epoch", "loss", "batch_size", "world_size", "lr"} <= set(ckpt)
    assert len(ckpt["opt"]["param_groups"]) == 4 and ckpt["scaler"]["scale"] == 65536.0
    exported = export_encoder(path, tmp_path / "official.pth.tar", fmt="official")  # `jepa-torch export --format official`
    out = read_official(exported)
    for key in ("encoder", "predictor", "target_encoder", "opt", "scaler", "epoch"):
        assert key in out, key
        if key in ("encoder", "predictor", "target_encoder"):
            assert out[key].keys() == ckpt[key].keys()


def _official(checkout: Path) -> dict[str, Any]:
    if "src" in sys.modules and not str(getattr(sys.modules["src"], "__file__", "")).startswith(str(checkout)):
        pytest.skip("another package named 'src' is imported in this process")
    sys.path.insert(0, str(checkout))
    try:
        return {name: importlib.import_module(f"src.{name}") for name in ("helper", "models.vision_transformer")}
    finally:
        sys.path.pop(0)


@pytest.mark.skipif(not os.environ.get("IJEPA_CHECKOUT"),
                    reason="set IJEPA_CHECKOUT to a facebookresearch/ijepa checkout to drive its resume")
def test_the_official_trainer_resumes_from_our_checkpoint(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path / "run", max_steps=28)  # 898 training digits in batches of 64: 14 per epoch
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, batch_size=64))
    train(cfg, progress=False)
    step, path = list_checkpoints(tmp_path / "run" / "checkpoints")[-1]
    ours = read_official(path)
    off = _official(Path(os.environ["IJEPA_CHECKOUT"]))
    vit = off["models.vision_transformer"]
    encoder = vit.VisionTransformer(img_size=[16], patch_size=4, embed_dim=192, depth=2, num_heads=3, mlp_ratio=4,
                                    qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6))
    predictor = vit.vit_predictor(num_patches=16, embed_dim=192, predictor_embed_dim=48, depth=1, num_heads=3)
    target = copy.deepcopy(encoder)
    opt, _, _, _ = off["helper"].init_opt(encoder, predictor, iterations_per_epoch=4, start_lr=1e-4, ref_lr=1e-3,
                                          warmup=1, num_epochs=2)
    scaler = torch.amp.GradScaler("cpu")  # the bf16 path loads a scaler too
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        wrapped = [nn.parallel.DistributedDataParallel(m) for m in (encoder, predictor, target)]
        _, _, _, opt, scaler, epoch = off["helper"].load_checkpoint(
            torch.device("cpu"), str(path), wrapped[0], wrapped[1], wrapped[2], opt, scaler)
    finally:
        dist.destroy_process_group()
    assert epoch == ours["epoch"] == 2 and step == 28  # not 0: the official resume swallowed no error
    for name, module in (("encoder", encoder), ("predictor", predictor), ("target_encoder", target)):
        for key, value in module.state_dict().items():
            assert torch.equal(value, ours[name][f"module.{key}"]), (name, key)
    images = torch.randn(2, 3, 16, 16)
    ctx, tgt = [torch.tensor([[0, 1, 2, 5, 6], [3, 4, 8, 9, 10]])], [torch.tensor([[12, 13], [14, 15]])]
    mine = JEPA(*build_image_jepa("vit_tiny", img_size=16, patch_size=4, depth=2, pred_depth=1, pred_emb_dim=48))
    for module, name in ((mine.encoder, "encoder"), (mine.predictor, "predictor"), (mine.target_encoder, "target_encoder")):
        module.load_state_dict({k.removeprefix("module."): v for k, v in ours[name].items()})
    with torch.no_grad():
        torch.testing.assert_close(target(images), mine.target_encoder(images), rtol=0, atol=1e-6)
        z = encoder(images, ctx)
        torch.testing.assert_close(predictor(z, ctx, tgt), mine.predictor(mine.encoder(images, ctx), ctx, tgt),
                                   rtol=0, atol=1e-5)
    # every trained parameter's AdamW state is where the official optimiser looks for it
    members = official_param_groups(mine.encoder, mine.predictor)
    names = [n for m, decay in ((mine.encoder, True), (mine.predictor, True), (mine.encoder, False),
                                (mine.predictor, False))
             for n, p in m.named_parameters() if ("bias" not in n and p.ndim != 1) == decay]
    official_params = [p for g in opt.param_groups for p in g["params"]]
    assert len(official_params) == len(names) == sum(len(p) for p, _ in members)
    saved = ours["opt"]["state"]
    for i, p in enumerate(official_params):
        if i in saved:
            assert torch.equal(opt.state[p]["exp_avg"], saved[i]["exp_avg"]) and p.shape == saved[i]["exp_avg"].shape
    assert scaler.get_scale() == 65536.0
