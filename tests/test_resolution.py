"""A checkpoint used at another image size: position tables carried to the new patch grid."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from jepa_torch.io.checkpoint import CheckpointError, load_official, save_official
from jepa_torch.models import JEPA, build_image_jepa

OPTIONS = {"patch_size": 8, "depth": 2, "pred_depth": 1, "pred_emb_dim": 48}


def _model(img_size: int | tuple[int, int], seed: int) -> JEPA:
    torch.manual_seed(seed)
    return JEPA(*build_image_jepa("vit_tiny", img_size=img_size, **OPTIONS))  # type: ignore[arg-type]


def _saved(tmp_path: Path, model: JEPA) -> Path:
    path = tmp_path / "ckpt.pth.tar"
    save_official(path, model.encoder, model.predictor, model.target_encoder)
    return path


@pytest.mark.parametrize("size", [48, (32, 48)])
def test_loaded_at_another_size_equals_a_model_built_there(tmp_path: Path, size: int | tuple[int, int]) -> None:
    trained = _model(32, seed=0)
    encoder, predictor, target = load_official(_saved(tmp_path, trained), img_size=size)
    built = _model(size, seed=1)  # its own sin-cos tables for the new grid; every other weight from the checkpoint
    for mine, theirs in ((built.encoder, trained.encoder), (built.predictor, trained.predictor)):
        own = mine.state_dict()
        mine.load_state_dict({k: (own[k] if "pos_embed" in k else v) for k, v in theirs.state_dict().items()})
    h, w = (size, size) if isinstance(size, int) else size
    images = torch.randn(2, 3, h, w)
    n = (h // 8) * (w // 8)
    ctx, tgt = [torch.arange(0, n - 3).expand(2, -1)], [torch.arange(n - 3, n).expand(2, -1)]
    with torch.no_grad():
        assert torch.equal(encoder(images), built.encoder(images))
        assert torch.equal(target(images), built.encoder(images))
        z = built.encoder(images, ctx)
        assert torch.equal(predictor(z, ctx, tgt), built.predictor(z, ctx, tgt))


def test_learned_tables_are_resampled_bicubically_without_a_class_token(tmp_path: Path) -> None:
    trained = _model(32, seed=0)
    with torch.no_grad():
        trained.encoder.pos_embed.add_(0.1 * torch.randn_like(trained.encoder.pos_embed))  # no longer sin-cos
    path = _saved(tmp_path, trained)
    encoder, _, _ = load_official(path, img_size=48)
    table = trained.encoder.pos_embed.detach()  # (1, 16, D) on a 4x4 grid
    grid = table.reshape(1, 4, 4, -1).permute(0, 3, 1, 2)
    expected = F.interpolate(grid, size=(6, 6), mode="bicubic", align_corners=False).permute(0, 2, 3, 1).reshape(1, 36, -1)
    torch.testing.assert_close(encoder.pos_embed.detach(), expected, rtol=0, atol=1e-6)
    same, _, _ = load_official(path, img_size=32)
    assert torch.equal(same.pos_embed, trained.encoder.pos_embed)


def test_a_size_that_is_not_a_multiple_of_the_patch_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"img_size=50: must be a positive multiple of the patch \(8, 8\)") as info:
        load_official(_saved(tmp_path, _model(32, seed=0)), img_size=50)
    assert "\n" not in str(info.value)
