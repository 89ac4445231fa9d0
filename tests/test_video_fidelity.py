"""Our video encoder and predictor equal the official V-JEPA 2 modules, weight for weight.

The official modules are imported from a checkout of facebookresearch/vjepa2 that the user names in
``VJEPA2_CHECKOUT`` (its ``src`` package needs ``timm`` and ``einops``, both in our dev extras);
without one every test here skips with that reason. ``VJEPA1_CHECKOUT``
(facebookresearch/jepa) does the same for the V-JEPA 1 modules, whose sin-cos path ours also equals. Each test builds the official module from its
own class at a small size, loads its state dict into ours *strictly*, and compares outputs on the
same clips and masks (masks from :mod:`jepa_core.video_masks`): at most 1e-5 apart in float32 on
the CPU. Run: ``VJEPA2_CHECKOUT=/path/to/vjepa2 pytest tests/test_video_fidelity.py``.
"""

from __future__ import annotations

import importlib
import math
import os
import sys
import warnings
from functools import partial
from types import ModuleType
from typing import Any

import pytest
import torch
from torch import nn

from jepa_core.video_masks import VideoMaskConfig, sample_video_masks
from jepa_torch.models.video import VideoPredictor, VideoTransformer

CHECKOUT = os.environ.get("VJEPA2_CHECKOUT")
TOL = 1e-5
SMALL = dict(img_size=32, patch_size=8, embed_dim=96, depth=2, num_heads=4, mlp_ratio=4.0, qkv_bias=True)
PRED = dict(pred_emb_dim=48, depth=2, num_heads=4, num_mask_tokens=2)


def _official(checkout: str | None = None) -> dict[str, ModuleType]:
    """The checkout's ``src.models`` modules, imported without disturbing any other ``src`` package."""
    checkout = checkout or CHECKOUT
    assert checkout is not None
    saved = {k: v for k, v in sys.modules.items() if k == "src" or k.startswith("src.")}
    for k in saved:
        del sys.modules[k]
    sys.path.insert(0, checkout)
    try:
        with warnings.catch_warnings():  # its timm import path is deprecated
            warnings.simplefilter("ignore")
            return {name: importlib.import_module(f"src.models.{name}") for name in ("vision_transformer", "predictor")}
    finally:
        sys.path.remove(checkout)
        for k in [k for k in sys.modules if k == "src" or k.startswith("src.")]:
            del sys.modules[k]
        sys.modules.update(saved)


@pytest.fixture(scope="module")
def official() -> dict[str, ModuleType]:
    if not CHECKOUT:
        pytest.skip("set VJEPA2_CHECKOUT to a facebookresearch/vjepa2 checkout to compare with the official modules")
    return _official()


def _quiet(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call official code, whose ``sdp_kernel`` context warns of its deprecation."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.no_grad():
            return fn(*args, **kwargs)


def _close(ours: torch.Tensor, theirs: torch.Tensor, what: str) -> float:
    assert ours.shape == theirs.shape, f"{what}: shape {tuple(ours.shape)} vs official {tuple(theirs.shape)}"
    err = float((ours.detach() - theirs).abs().max())
    assert err <= TOL, f"{what}: max |ours - official| = {err:.2e} > {TOL}"
    return err


def _masks(grid: tuple[int, int, int], batch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    cfg = VideoMaskConfig(num_blocks=2, spatial_scale=(0.2, 0.3), temporal_scale=(0.5, 1.0))
    (out,) = sample_video_masks(grid, cfg, seed, batch)
    return torch.from_numpy(out.context[0]), torch.from_numpy(out.targets[0])


def _pair(official: dict[str, ModuleType], positions: str, uniform_power: bool, frames: int = 4,
          tubelet: int = 2) -> tuple[nn.Module, VideoTransformer]:
    torch.manual_seed(0)
    theirs = official["vision_transformer"].VisionTransformer(
        num_frames=frames, tubelet_size=tubelet, norm_layer=partial(nn.LayerNorm, eps=1e-6),
        uniform_power=uniform_power, use_rope=positions == "rope", use_sdpa=True, **SMALL).eval()
    ours = VideoTransformer(num_frames=frames, tubelet_size=tubelet, positions=positions,  # type: ignore[arg-type]
                            uniform_power=uniform_power, **SMALL).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    return theirs, ours


CASES = [("rope", False), ("sincos", False), ("sincos", True)]


@pytest.mark.parametrize("positions, uniform_power", CASES)
def test_encoder_equals_the_official(official: dict[str, ModuleType], positions: str, uniform_power: bool) -> None:
    """Whole clips and masked contexts, at the built size."""
    theirs, ours = _pair(official, positions, uniform_power)
    clip = torch.randn(3, 3, 4, 32, 32, generator=torch.Generator().manual_seed(1))
    err = _close(ours(clip), _quiet(theirs, clip), f"{positions} encoder, whole clip")
    ctx, _ = _masks((2, 4, 4), 3, seed=5)
    err = max(err, _close(ours(clip, masks=[ctx]), _quiet(theirs, clip, masks=[ctx]), f"{positions} encoder, context"))
    print(f"encoder {positions} uniform_power={uniform_power}: max abs diff {err:.2e}")


@pytest.mark.parametrize("positions, frames", [("rope", 8), ("sincos", 2)])
def test_encoder_equals_the_official_on_other_clip_lengths(official: dict[str, ModuleType], positions: str,
                                                           frames: int) -> None:
    """RoPE models take clips of any length; sin-cos ones shorter clips (the official cuts its table)."""
    theirs, ours = _pair(official, positions, uniform_power=False)
    clip = torch.randn(2, 3, frames, 32, 32, generator=torch.Generator().manual_seed(2))
    _close(ours(clip), _quiet(theirs, clip), f"{positions} encoder on {frames} frames")


@pytest.mark.parametrize("positions", ["rope", "sincos2d"])
def test_image_model_is_one_frame_of_the_same_module(official: dict[str, ModuleType], positions: str) -> None:
    """An official image model (``num_frames=1``: a Conv2d patch embedding) loads strictly into our module
    with one-frame tubelets and gives the same outputs on images."""
    official_positions = "rope" if positions == "rope" else "sincos"
    torch.manual_seed(0)
    theirs = official["vision_transformer"].VisionTransformer(
        num_frames=1, tubelet_size=1, norm_layer=partial(nn.LayerNorm, eps=1e-6),
        use_rope=official_positions == "rope", use_sdpa=True, **SMALL).eval()
    ours = VideoTransformer(num_frames=1, tubelet_size=1, positions=positions, **SMALL).eval()  # type: ignore[arg-type]
    ours.load_state_dict(theirs.state_dict(), strict=True)
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    _close(ours(images), _quiet(theirs, images), f"{positions} image model")


@pytest.mark.parametrize("positions, uniform_power", CASES)
def test_predictor_equals_the_official(official: dict[str, ModuleType], positions: str, uniform_power: bool) -> None:
    """Context tokens, a context mask and the union target of V-JEPA's masks, with the second mask token."""
    torch.manual_seed(0)
    theirs = official["predictor"].VisionTransformerPredictor(
        img_size=32, patch_size=8, num_frames=4, tubelet_size=2, embed_dim=96, predictor_embed_dim=48, depth=2,
        num_heads=4, mlp_ratio=4.0, qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6),
        uniform_power=uniform_power, use_mask_tokens=True, num_mask_tokens=2, zero_init_mask_tokens=False,
        use_rope=positions == "rope", use_sdpa=True).eval()
    ours = VideoPredictor((2, 4, 4), embed_dim=96, positions=positions,  # type: ignore[arg-type]
                          uniform_power=uniform_power, **PRED).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    ctx, tgt = _masks((2, 4, 4), 3, seed=7)
    x = torch.randn(3, ctx.shape[1], 96, generator=torch.Generator().manual_seed(4))
    err = 0.0
    for index in (0, 1):
        err = max(err, _close(ours(x, ctx, tgt, mask_index=index),
                              _quiet(theirs, x, [ctx], [tgt], mask_index=index), f"{positions} predictor {index}"))
    print(f"predictor {positions} uniform_power={uniform_power}: max abs diff {err:.2e}")


@pytest.mark.parametrize("positions, uniform_power", CASES)
def test_official_checkpoint_layout_reads_into_equal_modules(official: dict[str, ModuleType], positions: str,
                                                             uniform_power: bool) -> None:
    """The official modules' state dicts under ``module.backbone.`` (as the official trainer saves them)
    rebuild, from the tensors alone, modules with equal outputs."""
    from jepa_torch.io.video_interop import read_official_video

    theirs, _ = _pair(official, positions, uniform_power)
    torch.manual_seed(0)
    pred = official["predictor"].VisionTransformerPredictor(
        img_size=32, patch_size=8, num_frames=4, tubelet_size=2, embed_dim=96, predictor_embed_dim=48, depth=2,
        num_heads=4, norm_layer=partial(nn.LayerNorm, eps=1e-6), uniform_power=uniform_power, use_mask_tokens=True,
        num_mask_tokens=2, use_rope=positions == "rope").eval()
    wrap = lambda m: {f"module.backbone.{k}": v for k, v in m.state_dict().items()}  # noqa: E731
    encoder, predictor = read_official_video({"target_encoder": wrap(theirs), "predictor": wrap(pred)},
                                             num_heads=4, num_frames=4, img_size=32, predictor_heads=4)
    assert predictor is not None and (encoder.positions, encoder.uniform_power) == (positions, uniform_power)
    clip = torch.randn(2, 3, 4, 32, 32, generator=torch.Generator().manual_seed(6))
    _close(encoder(clip), _quiet(theirs, clip), "encoder read from the official layout")
    ctx, tgt = _masks((2, 4, 4), 2, seed=8)
    x = torch.randn(2, ctx.shape[1], 96, generator=torch.Generator().manual_seed(9))
    _close(predictor(x, ctx, tgt), _quiet(pred, x, [ctx], [tgt], mask_index=0), "predictor read from the official layout")


# --- V-JEPA 1 (facebookresearch/jepa): sin-cos only; its predictor takes an extra, unused target argument ---

VJEPA1_CHECKOUT = os.environ.get("VJEPA1_CHECKOUT")


@pytest.mark.skipif(not VJEPA1_CHECKOUT, reason="set VJEPA1_CHECKOUT to a facebookresearch/jepa checkout to compare "
                                                "with the V-JEPA 1 modules")
@pytest.mark.parametrize("uniform_power", [False, True])
def test_vjepa1_encoder_and_predictor_equal_ours(uniform_power: bool) -> None:
    off = _official(VJEPA1_CHECKOUT)
    torch.manual_seed(0)
    theirs = off["vision_transformer"].VisionTransformer(
        num_frames=4, tubelet_size=2, norm_layer=partial(nn.LayerNorm, eps=1e-6), uniform_power=uniform_power,
        **SMALL).eval()
    ours = VideoTransformer(num_frames=4, tubelet_size=2, positions="sincos", uniform_power=uniform_power,
                            **SMALL).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    clip = torch.randn(2, 3, 4, 32, 32, generator=torch.Generator().manual_seed(1))
    ctx, tgt = _masks((2, 4, 4), 2, seed=5)
    _close(ours(clip), _quiet(theirs, clip), "V-JEPA 1 encoder")
    _close(ours(clip, masks=[ctx]), _quiet(theirs, clip, masks=[ctx]), "V-JEPA 1 encoder, context")
    pred_theirs = off["predictor"].VisionTransformerPredictor(
        img_size=32, patch_size=8, num_frames=4, tubelet_size=2, embed_dim=96, predictor_embed_dim=48, depth=2,
        num_heads=4, norm_layer=partial(nn.LayerNorm, eps=1e-6), uniform_power=uniform_power, use_mask_tokens=True,
        num_mask_tokens=2, zero_init_mask_tokens=False).eval()
    pred_ours = VideoPredictor((2, 4, 4), embed_dim=96, positions="sincos", uniform_power=uniform_power, **PRED).eval()
    pred_ours.load_state_dict(pred_theirs.state_dict(), strict=True)
    x = torch.randn(2, ctx.shape[1], 96, generator=torch.Generator().manual_seed(4))
    _close(pred_ours(x, ctx, tgt, mask_index=1), _quiet(pred_theirs, x, None, [ctx], [tgt], mask_index=1),
           "V-JEPA 1 predictor")


@pytest.mark.parametrize("preset, official_name", [("large", "vit_large_rope"), ("huge", "vit_huge_rope"),
                                                    ("giant_xformers", "vit_giant_xformers_rope")])
def test_presets_match_the_official_vjepa2_encoders(official: dict[str, ModuleType], preset: str,
                                                    official_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """V-JEPA 2's ViT-L, ViT-H and ViT-g (on the meta device): the same state-dict keys and shapes."""
    from jepa_torch.models.video import build_video_encoder

    linspace = torch.linspace  # the official drop-path rule reads .item() of it, which meta tensors refuse
    monkeypatch.setattr(torch, "linspace", lambda *a, **k: linspace(*a, **{**k, "device": "cpu"}))
    with torch.device("meta"):
        theirs = _quiet(getattr(official["vision_transformer"], official_name), img_size=256, patch_size=16,
                        num_frames=16, tubelet_size=2, uniform_power=True, use_sdpa=True)
        ours = build_video_encoder(preset)
    shapes = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    assert shapes == {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    print(f"{preset}: {sum(math.prod(s) for s in shapes.values()) / 1e6:.1f}M parameters")
