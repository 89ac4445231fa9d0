"""The sequence front end and the builders."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from jepa_torch.models import (
    build_image_jepa,
    build_predictor,
    build_sequence_jepa,
    get_preset,
    make_target_encoder,
    output_size,
)
from jepa_torch.training.optim import make_optimizer
from jepa_torch.models.positions import sincos_1d
from jepa_torch.models.tokens import SequenceTransformer
from jepa_torch.models.vit import apply_masks
from tests.official_oracle import predictor_forward, random_masks, randomize_, sequence_encoder_forward


def small_seq(input_dim: int = 5, seq_len: int = 12) -> SequenceTransformer:
    torch.manual_seed(0)
    enc = SequenceTransformer(input_dim, seq_len, embed_dim=32, depth=2, num_heads=4)
    randomize_(enc, seed=1)
    return enc


def test_sequence_encoder_layout_and_positions() -> None:
    enc = small_seq()
    sd = enc.state_dict()
    assert sd["patch_embed.proj.weight"].shape == (32, 5)
    assert "blocks.1.mlp.fc2.weight" in sd and "norm.weight" in sd
    assert torch.equal(SequenceTransformer(5, 12, 32, 1, 4).pos_embed.data[0], sincos_1d(32, 12))
    assert (enc.num_patches, enc.embed_dim, enc.grid) == (12, 32, (12,))


def test_sequence_encoder_equals_the_oracle_with_and_without_masks() -> None:
    enc = small_seq()
    x = torch.randn(3, 12, 5)
    masks = random_masks(3, 12, 4, 2, seed=2)
    sd = enc.state_dict()
    torch.testing.assert_close(enc(x, masks), sequence_encoder_forward(sd, x, masks, 4), rtol=0, atol=1e-5)
    torch.testing.assert_close(enc(x), sequence_encoder_forward(sd, x, None, 4), rtol=0, atol=1e-5)


def test_sequence_predictor_uses_1d_positions_and_the_official_order() -> None:
    enc = small_seq()
    pred = build_predictor(enc, depth=1, pred_emb_dim=16)
    randomize_(pred, seed=3)
    assert pred.grid == (12,) and pred.num_heads == 4
    x = torch.randn(2, 12, 5)
    masks_x, masks = random_masks(2, 12, 6, 1, 4), random_masks(2, 12, 3, 3, 5)
    z = enc(x, masks_x)
    want = predictor_forward(pred.state_dict(), z, masks_x, masks, 4)
    torch.testing.assert_close(pred(z, masks_x, masks), want, rtol=0, atol=1e-5)


def test_feature_rows_are_read_as_one_feature_per_token() -> None:
    enc = small_seq(input_dim=1, seq_len=8)
    rows = torch.randn(3, 8)
    torch.testing.assert_close(enc(rows), enc(rows.unsqueeze(-1)), rtol=0, atol=0)


def test_wrong_sequence_shape_is_one_clear_error() -> None:
    with pytest.raises(ValueError, match=r"expects \(B, 12, 5\)"):
        small_seq()(torch.randn(2, 10, 5))


def test_sequence_jepa_trains_one_step() -> None:
    """One real optimiser step on the sequence model: the loss on the same batch drops, every
    trained tensor that got a gradient moves, and the target encoder (no EMA here) stays put."""
    torch.manual_seed(0)
    encoder, predictor = build_sequence_jepa(3, 16, preset="tiny", pred_depth=1, pred_emb_dim=24)
    target = make_target_encoder(encoder)
    opt = make_optimizer([encoder, predictor], lr=1e-4, weight_decay=0.0)
    x = torch.randn(4, 16, 3)
    masks_x, masks = random_masks(4, 16, 8, 1, 0), random_masks(4, 16, 4, 2, 1)

    def loss_on_batch() -> torch.Tensor:
        with torch.no_grad():
            h = target(x)
            h = apply_masks(F.layer_norm(h, (h.size(-1),)), masks)  # (2*4, 4, D)
        z = predictor(encoder(x, masks_x), masks_x, masks)  # (2*4, 4, D)
        return F.smooth_l1_loss(z, h)

    trained = {f"{i}.{n}": p for i, m in enumerate((encoder, predictor)) for n, p in m.named_parameters()
               if p.requires_grad}
    before = {n: p.detach().clone() for n, p in trained.items()}
    target_before = {k: v.clone() for k, v in target.state_dict().items()}
    loss = loss_on_batch()
    opt.zero_grad(set_to_none=True)
    loss.backward()  # type: ignore[no-untyped-call]
    opt.step()
    assert float(loss_on_batch().detach()) < float(loss.detach()), "one step did not lower the loss on its batch"
    with_grad = [n for n, p in trained.items() if p.grad is not None and bool(p.grad.any())]
    assert with_grad, "no gradient reached the context encoder or the predictor"
    for n in with_grad:
        assert not torch.equal(trained[n], before[n]), f"{n} has a gradient but the step did not move it"
    for k, v in target.state_dict().items():
        assert torch.equal(v, target_before[k]), f"the target encoder's {k} moved without an EMA"


def test_builders_follow_the_official_helper() -> None:
    torch.manual_seed(0)
    encoder, predictor = build_image_jepa("vit_tiny", img_size=32, patch_size=8, pred_depth=2, pred_emb_dim=48)
    assert (encoder.embed_dim, len(encoder.blocks), encoder.num_heads, encoder.num_patches) == (192, 12, 3, 16)
    assert (predictor.predictor_embed_dim, len(predictor.predictor_blocks), predictor.num_heads) == (48, 2, 3)
    assert predictor.num_patches == encoder.num_patches
    assert output_size(encoder) == 192 == output_size("vit_tiny")
    assert output_size("vit_huge") == 1280


def test_target_encoder_is_a_frozen_independent_copy() -> None:
    enc = small_seq()
    target = make_target_encoder(enc)
    assert all(not p.requires_grad for p in target.parameters())
    assert any(p.requires_grad for p in enc.parameters())
    with torch.no_grad():
        target.norm.weight.add_(1.0)
    assert not torch.equal(target.norm.weight, enc.norm.weight)


def test_builder_errors_name_the_option() -> None:
    with pytest.raises(ValueError, match="unknown preset 'vit_enormous'"):
        get_preset("vit_enormous")
    with pytest.raises(ValueError, match="pred_emb_dim=100"):
        build_image_jepa("vit_tiny", img_size=32, patch_size=8, pred_depth=1, pred_emb_dim=100)
