"""The one build path: a model config, ``build``, and checkpoints that carry the config."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from jepa_torch.io.checkpoint import CheckpointError, infer_model_config, load_official, save_official
from jepa_torch.config import ModelConfig
from jepa_torch.models import (
    EncoderConfig,
    JEPAConfig,
    ModelConfigError,
    PredictorConfig,
    ProjectorConfig,
    build,
    build_image_jepa,
    build_predictor,
    build_sequence_jepa,
    build_vit,
)


def test_shortcuts_and_build_draw_the_same_weights_from_one_seed() -> None:
    config = JEPAConfig.image("tiny", img_size=32, patch_size=8, depth=2, pred_depth=1, pred_emb_dim=48)
    torch.manual_seed(3)
    model = build(config)
    torch.manual_seed(3)
    encoder, predictor = build_image_jepa("vit_tiny", img_size=32, patch_size=8, depth=2, pred_depth=1,
                                          pred_emb_dim=48)
    for a, b in ((model.encoder, encoder), (model.predictor, predictor)):
        for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
            assert torch.equal(x, y), name
    torch.testing.assert_close(model.target_encoder.state_dict(), model.encoder.state_dict(), rtol=0, atol=0)


def test_the_config_round_trips_and_is_what_the_tensors_say() -> None:
    config = JEPAConfig.sequence(3, 10, preset="small", depth=1, pred_depth=2, pred_emb_dim=96)
    assert JEPAConfig.from_dict(config.to_dict()) == config
    encoder, predictor = build_sequence_jepa(3, 10, preset="small", depth=1, pred_depth=2, pred_emb_dim=96)
    assert infer_model_config(encoder.state_dict(), predictor.state_dict()) == config


def test_one_model_config_for_every_method_and_framework_round_trips() -> None:
    """The model config is jepa_core's: plain values, a LeJEPA shape (projector, no predictor) round-trips, and
    a config stored before the predictor width was renamed (``predictor_embed_dim``) still reads."""
    import jepa_core.model_config as core

    assert JEPAConfig is core.JEPAConfig and EncoderConfig is core.EncoderConfig
    lejepa = JEPAConfig(EncoderConfig(48, 1, 4, 96, 3, (4, 4), (4, 4)), None, projector=ProjectorConfig(48, 32, 16))
    assert JEPAConfig.from_dict(lejepa.to_dict()) == lejepa
    stored = JEPAConfig.image("tiny", img_size=16, patch_size=4, depth=1, pred_depth=1, pred_emb_dim=48).to_dict()
    stored["predictor"]["predictor_embed_dim"] = stored["predictor"].pop("pred_emb_dim")
    assert JEPAConfig.from_dict(stored).predictor == PredictorConfig(192, 48, 1, 3, 192, (4, 4))
    with pytest.raises(ModelConfigError, match="projector input width 32 must be the encoder's"):
        JEPAConfig(lejepa.encoder, None, projector=ProjectorConfig(32, 0, 8))


def test_the_predictor_width_has_one_name_and_the_old_keyword_still_works() -> None:
    encoder = build_vit("tiny", img_size=16, patch_size=4, depth=1)
    assert build_predictor(encoder, depth=1, pred_emb_dim=48).predictor_embed_dim == 48
    with pytest.warns(DeprecationWarning, match=r"emb_dim=\.\.\.\) is deprecated; use pred_emb_dim="):
        assert build_predictor(encoder, depth=1, emb_dim=24).predictor_embed_dim == 24


def test_a_checkpoint_carrying_its_config_loads_an_architecture_inference_cannot(tmp_path: Path) -> None:
    """A width of no official preset has no default head count: the stored config supplies it."""
    config = JEPAConfig(EncoderConfig(48, 1, 4, 96, 3, (4, 4), (4, 4)), PredictorConfig(48, 32, 1, 4, 64, (4, 4)))
    model = build(config)
    path = tmp_path / "c.pt"
    save_official(path, model.encoder, model.predictor, model.target_encoder)
    with pytest.raises(CheckpointError, match="not an official preset width"):
        load_official(path)
    save_official(path, model.encoder, model.predictor, model.target_encoder, model=config.to_dict())
    encoder, predictor, _ = load_official(path)
    assert encoder.num_heads == 4 and predictor.num_heads == 4
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(encoder(x), model.encoder(x))


@pytest.mark.parametrize("name", ["tiny", "vit_tiny", "giant"])
def test_preset_names_agree_between_config_and_builders(name: str) -> None:
    official = ModelConfig(preset=name).preset
    assert official.startswith("vit_")
    assert JEPAConfig.image(name, img_size=16, patch_size=8).encoder == JEPAConfig.image(official, img_size=16,
                                                                                         patch_size=8).encoder


def test_a_predictor_that_does_not_fit_is_one_line() -> None:
    with pytest.raises(ModelConfigError, match="pred_emb_dim=50 is not divisible by 3 heads"):
        JEPAConfig.image("tiny", img_size=16, patch_size=8, pred_emb_dim=50)
