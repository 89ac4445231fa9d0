"""Video models to and from Hugging Face's VJEPA2Model and the official V-JEPA 2 checkpoint layout."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from jepa_core.video_masks import VideoMaskConfig, sample_video_masks
from jepa_torch.io.checkpoint import CheckpointError
from jepa_torch.io.video_interop import (
    from_hf_vjepa2,
    official_video_state,
    read_official_video,
    save_official_video,
    to_hf_vjepa2,
)
from jepa_torch.models.video import VideoPredictor, VideoTransformer
from jepa_torch.models.vit import apply_masks

transformers = pytest.importorskip("transformers")
TOL = 1e-5


def _hf_model() -> object:
    """A small VJEPA2Model as transformers itself builds it, with non-zero mask tokens."""
    torch.manual_seed(0)
    config = transformers.VJEPA2Config(crop_size=32, frames_per_clip=4, tubelet_size=2, patch_size=8, hidden_size=96,
                                       num_hidden_layers=2, num_attention_heads=4, pred_hidden_size=48,
                                       pred_num_hidden_layers=2, pred_num_attention_heads=4, pred_num_mask_tokens=2)
    model = transformers.VJEPA2Model(config).eval()
    with torch.no_grad():
        model.predictor.embeddings.mask_tokens.normal_(std=0.02)
    return model


def _compare(model: object, encoder: VideoTransformer, predictor: VideoPredictor) -> float:
    clip = torch.randn(2, 3, 4, 32, 32, generator=torch.Generator().manual_seed(1))  # (B, C, T, H, W)
    (m,) = sample_video_masks((2, 4, 4), VideoMaskConfig(num_blocks=2, spatial_scale=(0.2, 0.3)), 3, 2)
    ctx, tgt = torch.from_numpy(m.context[0]), torch.from_numpy(m.targets[0])
    with torch.no_grad():
        out = model(pixel_values_videos=clip.transpose(1, 2), context_mask=[ctx], target_mask=[tgt])  # type: ignore[operator]
        ours = encoder(clip)
        pred = predictor(apply_masks(ours, [ctx]), ctx, tgt, mask_index=1)  # HF's default mask token
    errs = [float((ours - out.last_hidden_state).abs().max()),
            float((pred - out.predictor_output.last_hidden_state).abs().max())]
    assert max(errs) <= TOL, f"encoder / predictor differ from VJEPA2Model by {errs}"
    return max(errs)


def test_from_hugging_face_vjepa2() -> None:
    model = _hf_model()
    encoder, predictor = from_hf_vjepa2(model)
    assert encoder.positions == "rope" and predictor.num_mask_tokens == 2
    _compare(model, encoder, predictor)


def test_to_hugging_face_vjepa2_and_back() -> None:
    torch.manual_seed(0)
    encoder = VideoTransformer(32, 8, 4, 2, 3, 96, 2, 4, positions="rope").eval()
    predictor = VideoPredictor(encoder.grid, embed_dim=96, pred_emb_dim=48, depth=2, num_heads=4,
                               positions="rope", zero_init_mask_tokens=False).eval()
    model = to_hf_vjepa2(encoder, predictor)
    _compare(model, encoder, predictor)
    enc2, pred2 = from_hf_vjepa2(model)
    for a, b in ((encoder, enc2), (predictor, pred2)):
        for (k, v), (k2, v2) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
            assert k == k2 and torch.equal(v, v2), k


def test_sincos_models_do_not_convert_to_vjepa2() -> None:
    encoder = VideoTransformer(32, 8, 4, 2, 3, 96, 1, 4, positions="sincos")
    with pytest.raises(ValueError, match="RoPE model"):
        to_hf_vjepa2(encoder, VideoPredictor(encoder.grid, embed_dim=96, pred_emb_dim=48, depth=1, num_heads=4))


@pytest.mark.parametrize("positions, uniform_power", [("rope", False), ("sincos", False), ("sincos", True)])
def test_official_layout_round_trip(tmp_path: Path, positions: str, uniform_power: bool) -> None:
    """Written as the official trainer saves (``module.backbone.`` keys), read back into equal modules."""
    torch.manual_seed(0)
    enc = VideoTransformer(32, 8, 4, 2, 3, 192, 2, 3, positions=positions,  # type: ignore[arg-type]
                           uniform_power=uniform_power)
    pred = VideoPredictor(enc.grid, embed_dim=192, pred_emb_dim=48, depth=2, num_heads=4, num_mask_tokens=3,
                          positions=positions, uniform_power=uniform_power)  # type: ignore[arg-type]
    state = official_video_state(enc, pred)
    assert all(k.startswith("module.backbone.") for k in state["encoder"]), "not the official prefixes"
    path = tmp_path / "latest.pt"
    save_official_video(path, enc, pred)
    enc2, pred2 = read_official_video(path, num_frames=4, img_size=32, predictor_heads=4)
    assert pred2 is not None and (enc2.positions, enc2.uniform_power, enc2.num_heads) == (positions, uniform_power, 3)
    for a, b in ((enc, enc2), (pred, pred2)):
        assert a.state_dict().keys() == b.state_dict().keys()
        assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())


def test_official_layout_errors_are_one_line() -> None:
    with pytest.raises(CheckpointError, match="no 'target_encoder' entry"):
        read_official_video({"encoder": {}})
    with pytest.raises(CheckpointError, match="missing key 'patch_embed.proj.weight'"):
        read_official_video({"target_encoder": {"module.backbone.norm.weight": torch.ones(3)}})
