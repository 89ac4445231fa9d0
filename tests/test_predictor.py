"""The predictor: official names, the official output order, equivalence with the oracle."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from jepa_torch.models.positions import sincos_pos_embed
from jepa_torch.models.predictor import Predictor
from jepa_torch.models.vit import VisionTransformer
from tests.official_oracle import predictor_forward, random_masks, randomize_

N, D, DP, HEADS = 16, 32, 16, 2


def make(seed: int = 0, **kw: object) -> Predictor:
    torch.manual_seed(seed)
    args: dict[str, object] = dict(embed_dim=D, predictor_embed_dim=DP, depth=2, num_heads=HEADS)
    args.update(kw)
    pred = Predictor(N, **args)  # type: ignore[arg-type]
    randomize_(pred, seed=seed + 1)
    return pred


def test_state_dict_names_and_shapes_are_the_official_ones() -> None:
    sd = make().state_dict()
    top = {k for k in sd if not k.startswith("predictor_blocks.")}
    assert top == {
        "predictor_embed.weight", "predictor_embed.bias", "mask_token", "predictor_pos_embed",
        "predictor_norm.weight", "predictor_norm.bias", "predictor_proj.weight", "predictor_proj.bias",
    }
    assert {k.split(".")[1] for k in sd if k.startswith("predictor_blocks.")} == {"0", "1"}
    assert sd["predictor_embed.weight"].shape == (DP, D)
    assert sd["mask_token"].shape == (1, 1, DP)
    assert sd["predictor_pos_embed"].shape == (1, N, DP)
    assert sd["predictor_proj.weight"].shape == (D, DP)


def test_positions_are_fixed_sincos_and_mask_token_is_learned() -> None:
    torch.manual_seed(0)
    pred = Predictor(N, embed_dim=D, predictor_embed_dim=DP, depth=1, num_heads=HEADS)
    assert not pred.predictor_pos_embed.requires_grad
    assert torch.equal(pred.predictor_pos_embed.data, sincos_pos_embed(DP, (4, 4)))
    assert pred.mask_token.requires_grad and pred.mask_token.std().item() > 0
    assert pred.num_patches == N and pred.grid == (4, 4)


@pytest.mark.parametrize(("n_ctx", "n_tgt", "batch"), [(1, 1, 2), (1, 4, 3), (2, 3, 2), (3, 2, 1)])
def test_predictor_equals_the_official_oracle(n_ctx: int, n_tgt: int, batch: int) -> None:
    pred = make()
    masks_x = random_masks(batch, N, 7, n_ctx, seed=5)
    masks = random_masks(batch, N, 4, n_tgt, seed=6)
    x = torch.randn(n_ctx * batch, 7, D)
    out = pred(x, masks_x, masks)
    assert out.shape == (n_tgt * n_ctx * batch, 4, D)
    want = predictor_forward(pred.state_dict(), x, masks_x, masks, HEADS)
    torch.testing.assert_close(out, want, rtol=0, atol=1e-5)


def test_encoder_and_predictor_together_equal_the_oracle_chain() -> None:
    torch.manual_seed(0)
    enc = VisionTransformer(16, 4, 3, D, depth=2, num_heads=HEADS)
    randomize_(enc, seed=9)
    pred = make()
    imgs = torch.randn(2, 3, 16, 16)
    masks_x, masks = random_masks(2, N, 9, 2, seed=7), random_masks(2, N, 3, 4, seed=8)
    z = enc(imgs, masks_x)
    want = predictor_forward(pred.state_dict(), z, masks_x, masks, HEADS)
    torch.testing.assert_close(pred(z, masks_x, masks), want, rtol=0, atol=1e-5)


@settings(max_examples=8, deadline=None)
@given(n_ctx=st.integers(1, 3), n_tgt=st.integers(1, 3), batch=st.integers(1, 3), seed=st.integers(0, 999))
def test_row_order_is_target_mask_then_context_mask_then_sample(n_ctx: int, n_tgt: int, batch: int, seed: int) -> None:
    pred = make()
    masks_x = random_masks(batch, N, 5, n_ctx, seed)
    masks = random_masks(batch, N, 3, n_tgt, seed + 1)
    x = torch.randn(n_ctx * batch, 5, D, generator=torch.Generator().manual_seed(seed))
    out = pred(x, masks_x, masks)
    for t in range(n_tgt):
        for c in range(n_ctx):
            for b in range(batch):
                alone = pred(x[c * batch + b][None], [masks_x[c][b][None]], [masks[t][b][None]])
                row = t * n_ctx * batch + c * batch + b
                torch.testing.assert_close(out[row], alone[0], rtol=0, atol=1e-5)


def test_gradients_reach_mask_token_and_context_but_not_positions() -> None:
    pred = make()
    x = torch.randn(2, 5, D, requires_grad=True)
    pred(x, random_masks(2, N, 5, 1, 0), random_masks(2, N, 3, 2, 1)).square().sum().backward()
    assert pred.mask_token.grad is not None and pred.mask_token.grad.abs().sum() > 0
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert pred.predictor_pos_embed.grad is None


def test_mismatched_context_tokens_are_one_clear_error() -> None:
    pred = make()
    masks_x, masks = random_masks(2, N, 5, 2, 0), random_masks(2, N, 3, 1, 1)
    with pytest.raises(ValueError, match=r"expected \(4, 5, D\)"):
        pred(torch.randn(2, 5, D), masks_x, masks)
    with pytest.raises(ValueError, match="masks_x is empty"):
        pred(torch.randn(2, 5, D), [], masks)


def test_non_square_needs_an_explicit_grid() -> None:
    with pytest.raises(ValueError, match="grid="):
        Predictor(12, embed_dim=D, predictor_embed_dim=DP, depth=1, num_heads=HEADS)
    pred = Predictor(grid=(3, 4), embed_dim=D, predictor_embed_dim=DP, depth=1, num_heads=HEADS)
    assert pred.num_patches == 12 and pred.predictor_pos_embed.shape == (1, 12, DP)
