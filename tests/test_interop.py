"""timm and Hugging Face: our encoders convert both ways with equal outputs (skipped when the library is absent)."""

from __future__ import annotations

import pytest
import torch

from jepa_torch.io.checkpoint import CheckpointError
from jepa_torch.io.interop import from_hf, from_timm, hf_state_dict, our_state_dict_from_hf, to_hf, to_timm
from jepa_torch.models import build_vit
from jepa_torch.models.vit import TransformerEncoder

TOL = 1e-5


def _encoder(preset: str = "vit_tiny", **options: object) -> TransformerEncoder:
    torch.manual_seed(0)
    enc = build_vit(preset, img_size=32, patch_size=8, depth=3, **options)  # type: ignore[arg-type]
    with torch.no_grad():  # weights away from their init, so a swapped tensor shows
        for p in enc.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return enc.eval()


def _diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max())


def test_timm_both_ways() -> None:
    pytest.importorskip("timm", reason="timm is not installed (pip install 'jepa-reference[interop]')")
    enc = _encoder()
    images = torch.randn(2, 3, 32, 32)
    timm_model = to_timm(enc)
    with torch.no_grad():
        ours = enc(images)
        assert _diff(timm_model.forward_features(images), ours) <= TOL
        assert _diff(timm_model(images), ours.mean(dim=1)) <= TOL  # timm's average pool, no head
        back = from_timm(timm_model)
        assert torch.equal(back(images), ours)
    for k, v in enc.state_dict().items():
        assert torch.equal(back.state_dict()[k], v), k


def test_a_model_timm_made_loads_into_ours() -> None:
    """timm's own I-JEPA architecture (``vit_huge_patch14_gap_224``, cut to 2 blocks at 56 px), its own init."""
    timm = pytest.importorskip("timm", reason="timm is not installed (pip install 'jepa-reference[interop]')")
    torch.manual_seed(0)
    theirs = timm.create_model("vit_huge_patch14_gap_224", pretrained=False, img_size=56, depth=2).eval()
    ours = from_timm(theirs)
    images = torch.randn(2, 3, 56, 56)
    with torch.no_grad():
        assert _diff(theirs.forward_features(images), ours(images)) <= TOL


def test_a_model_hugging_face_made_loads_into_ours() -> None:
    """``IJepaModel`` built by transformers, at its config's default LayerNorm eps (1e-12), which comes along."""
    transformers = pytest.importorskip("transformers", reason="transformers is not installed")
    torch.manual_seed(0)
    config = transformers.IJepaConfig(hidden_size=96, num_hidden_layers=2, num_attention_heads=3,
                                      intermediate_size=384, image_size=32, patch_size=8)
    theirs = transformers.IJepaModel(config).eval()
    ours = from_hf(theirs)
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert _diff(theirs(pixel_values=images).last_hidden_state, ours(images)) <= TOL
        assert _diff(to_hf(ours)(pixel_values=images).last_hidden_state, ours(images)) <= TOL
    with pytest.raises(CheckpointError, match="hidden_act"):
        from_hf(transformers.IJepaModel(transformers.IJepaConfig(**{**config.to_dict(), "hidden_act": "relu"})))


def test_hugging_face_both_ways() -> None:
    pytest.importorskip("transformers", reason="transformers is not installed (pip install 'jepa-reference[interop]')")
    enc = _encoder()
    images = torch.randn(2, 3, 32, 32)
    hf = to_hf(enc)
    with torch.no_grad():
        ours = enc(images)
        assert _diff(hf(pixel_values=images).last_hidden_state, ours) <= TOL
        back = from_hf(hf)
        assert torch.equal(back(images), ours)


@pytest.mark.parametrize("generation", [4, 5])
def test_hugging_face_names_round_trip_for_both_generations(generation: int) -> None:
    """The name mapping alone, no transformers needed: every tensor comes back to its place."""
    enc = _encoder()
    theirs = hf_state_dict(enc, generation)
    assert len(theirs) == len(enc.state_dict()) + 2 * 2 * len(enc.blocks)  # qkv weight and bias become three each
    back = our_state_dict_from_hf(theirs)
    assert back.keys() == enc.state_dict().keys()
    for k, v in enc.state_dict().items():
        assert torch.equal(back[k], v), k


def test_sequence_encoders_do_not_convert() -> None:
    from jepa_torch.models import build_sequence_jepa

    enc, _ = build_sequence_jepa(4, 8, preset="vit_tiny", depth=1, pred_depth=1, pred_emb_dim=48)
    with pytest.raises(ValueError, match="only image encoders"):
        to_timm(enc)
