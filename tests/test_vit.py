"""The ViT encoder: official names, positions, masks, initialisation, equivalence with the oracle."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from jepa_torch.models.positions import sincos_1d, sincos_pos_embed
from jepa_torch.models import VIT_PRESETS
from jepa_torch.models.vit import VisionTransformer, apply_masks, repeat_interleave_batch
from tests.official_oracle import encoder_forward, gather_masks, interleave_chunks, random_masks, randomize_


def tiny(img: int | tuple[int, int] = 16, patch: int | tuple[int, int] = 4, **kw: object) -> VisionTransformer:
    torch.manual_seed(0)
    args: dict[str, object] = dict(embed_dim=32, depth=2, num_heads=2)
    args.update(kw)
    return VisionTransformer(img, patch, 3, **args)  # type: ignore[arg-type]


def test_state_dict_names_are_the_official_ones() -> None:
    enc = tiny()
    per_block = [
        "norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight",
        "attn.proj.bias", "norm2.weight", "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias",
        "mlp.fc2.weight", "mlp.fc2.bias",
    ]
    expected = {"patch_embed.proj.weight", "patch_embed.proj.bias", "pos_embed", "norm.weight", "norm.bias"}
    expected |= {f"blocks.{i}.{n}" for i in range(2) for n in per_block}
    sd = enc.state_dict()
    assert set(sd) == expected
    assert sd["patch_embed.proj.weight"].shape == (32, 3, 4, 4)
    assert sd["pos_embed"].shape == (1, 16, 32)
    assert sd["blocks.0.mlp.fc1.weight"].shape == (128, 32)
    assert (enc.num_patches, enc.embed_dim, enc.grid) == (16, 32, (4, 4))
    norms = [m for m in enc.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert len(norms) == 5 and all(m.eps == 1e-6 for m in norms)


def test_pos_embed_is_a_frozen_parameter_with_the_sincos_values() -> None:
    enc = tiny()
    params = dict(enc.named_parameters())
    assert "pos_embed" in params and not params["pos_embed"].requires_grad
    assert torch.equal(enc.pos_embed.data, sincos_pos_embed(32, (4, 4)))
    enc(torch.randn(2, 3, 16, 16)).sum().backward()
    assert enc.pos_embed.grad is None


def test_2d_sincos_follows_the_official_formula() -> None:
    dim, rows, cols = 8, 2, 3
    emb = sincos_pos_embed(dim, (rows, cols))[0]  # (6, 8)
    quarter = dim // 4
    for n in range(rows * cols):
        r, c = divmod(n, cols)
        for k in range(quarter):
            omega = 1.0 / 10000 ** (k / quarter)
            want = [math.sin(c * omega), math.cos(c * omega), math.sin(r * omega), math.cos(r * omega)]
            got = [emb[n, k], emb[n, quarter + k], emb[n, 2 * quarter + k], emb[n, 3 * quarter + k]]
            assert [float(g) for g in got] == pytest.approx(want, abs=1e-7)


def test_1d_sincos_follows_the_official_formula() -> None:
    emb = sincos_1d(6, 5)
    for p in range(5):
        for k in range(3):
            omega = 1.0 / 10000 ** (k / 3)
            assert float(emb[p, k]) == pytest.approx(math.sin(p * omega), abs=1e-7)
            assert float(emb[p, 3 + k]) == pytest.approx(math.cos(p * omega), abs=1e-7)


def test_sincos_rejects_widths_it_cannot_split() -> None:
    with pytest.raises(ValueError, match="divisible by 4"):
        sincos_pos_embed(6, (2, 2))
    with pytest.raises(ValueError, match="even"):
        sincos_pos_embed(5, (4,))


@pytest.mark.parametrize(
    ("img", "patch", "n_masks"),
    [(16, 4, 1), (16, 4, 3), ((16, 12), (4, 2), 2), ((12, 8), 4, 1)],
)
def test_encoder_equals_the_official_oracle(img: int | tuple[int, int], patch: int | tuple[int, int], n_masks: int) -> None:
    enc = tiny(img, patch)
    randomize_(enc, seed=1)
    h, w = (img, img) if isinstance(img, int) else img
    x = torch.randn(3, 3, h, w)
    masks = random_masks(3, enc.num_patches, 5, n_masks, seed=2)
    sd = enc.state_dict()
    torch.testing.assert_close(enc(x, masks), encoder_forward(sd, x, masks, 2), rtol=0, atol=1e-5)
    torch.testing.assert_close(enc(x), encoder_forward(sd, x, None, 2), rtol=0, atol=1e-5)


def test_masked_forward_is_the_mask_major_concatenation_of_single_masks() -> None:
    enc = tiny()
    x = torch.randn(2, 3, 16, 16)
    m1, m2 = random_masks(2, 16, 6, 2, seed=3)
    out = enc(x, [m1, m2])
    assert out.shape == (4, 6, 32)
    torch.testing.assert_close(out, torch.cat([enc(x, [m1]), enc(x, m2)]), rtol=0, atol=1e-6)


def test_keeping_every_index_in_order_equals_no_mask() -> None:
    enc = tiny()
    x = torch.randn(2, 3, 16, 16)
    everything = torch.arange(16).expand(2, 16)
    torch.testing.assert_close(enc(x, [everything]), enc(x), rtol=0, atol=1e-6)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16), k=st.integers(1, 16))
def test_permuting_a_mask_permutes_the_tokens(seed: int, k: int) -> None:
    enc = tiny()
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, 16, 16, generator=gen)
    (mask,) = random_masks(2, 16, k, 1, seed)
    perm = torch.randperm(k, generator=gen)
    torch.testing.assert_close(enc(x, [mask[:, perm]]), enc(x, [mask])[:, perm], rtol=0, atol=1e-5)


def test_apply_masks_and_interleave_equal_the_official_helpers() -> None:
    x = torch.randn(3, 10, 4)
    masks = random_masks(3, 10, 4, 3, seed=4)
    torch.testing.assert_close(apply_masks(x, masks), gather_masks(x, masks), rtol=0, atol=0)
    y = torch.randn(3 * 2, 5)
    torch.testing.assert_close(repeat_interleave_batch(y, 2, 3), interleave_chunks(y, 2, 3), rtol=0, atol=0)


def test_attention_goes_through_sdpa(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    original = torch.nn.functional.scaled_dot_product_attention

    def spy(*args: torch.Tensor, **kwargs: object) -> torch.Tensor:
        calls.append(args[0].shape)
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    tiny()(torch.randn(2, 3, 16, 16), [torch.zeros(2, 5, dtype=torch.long)])
    assert calls == [(2, 2, 5, 16)] * 2


def test_init_is_truncated_normal_with_zero_biases_and_unit_norms() -> None:
    enc = tiny(embed_dim=64, depth=3, num_heads=4, depth_rescale=False)
    for name, p in enc.named_parameters():
        if name.endswith("bias"):
            assert torch.all(p == 0), name
        elif "norm" in name:
            assert torch.all(p == 1), name
        elif name != "pos_embed":
            assert p.std().item() == pytest.approx(0.02, rel=0.15), name


def test_depth_rescale_divides_residual_projections_by_sqrt_2_layer() -> None:
    plain, scaled = tiny(depth=3, depth_rescale=False), tiny(depth=3, depth_rescale=True)
    for i in range(3):
        for name in ("attn.proj.weight", "mlp.fc2.weight"):
            want = plain.state_dict()[f"blocks.{i}.{name}"] / math.sqrt(2 * (i + 1))
            torch.testing.assert_close(scaled.state_dict()[f"blocks.{i}.{name}"], want)
        qkv = f"blocks.{i}.attn.qkv.weight"
        assert torch.equal(scaled.state_dict()[qkv], plain.state_dict()[qkv])


def test_presets_have_the_official_dimensions() -> None:
    table = {k: (p.embed_dim, p.depth, p.num_heads, int(p.embed_dim * p.mlp_ratio)) for k, p in VIT_PRESETS.items()}
    assert table == {
        "vit_tiny": (192, 12, 3, 768),
        "vit_small": (384, 12, 6, 1536),
        "vit_base": (768, 12, 12, 3072),
        "vit_large": (1024, 24, 16, 4096),
        "vit_huge": (1280, 32, 16, 5120),
        "vit_giant": (1408, 40, 16, 6144),
        "vit_giant_xformers": (1408, 40, 22, 6144),
    }


def test_wrong_image_size_is_one_clear_error() -> None:
    with pytest.raises(ValueError, match=r"expects \(B, 3, H, W\) with H, W multiples of the patch \(4, 4\)"):
        tiny()(torch.randn(1, 3, 18, 16))
    with pytest.raises(ValueError, match=r"expects \(B, 3, H, W\)"):
        tiny()(torch.randn(1, 1, 16, 16))


def test_other_image_size_gets_positions_spread_over_the_built_grid() -> None:
    """An 8x12 image on a model built for 16x16 (patch 4): a 2x3 grid whose sin-cos positions sit at
    rows {0, 3} and columns {0, 1.5, 3} of the built 4x4 grid; the built size keeps ``pos_embed``."""
    enc = tiny()
    x = torch.randn(2, 3, 8, 12)
    pos = sincos_pos_embed(32, (2, 3), span=(4, 4))  # (1, 6, 32)
    tokens = enc.patch_embed(x) + pos  # (2, 6, 32)
    for blk in enc.blocks:
        tokens = blk(tokens)
    torch.testing.assert_close(enc(x), enc.norm(tokens), rtol=0, atol=0)
    full = sincos_pos_embed(32, (4, 4))[0].view(4, 4, 32)  # (rows, cols, D)
    spread = pos[0].view(2, 3, 32)
    torch.testing.assert_close(spread[:, 0], full[[0, 3], 0], rtol=0, atol=1e-7)  # rows 0 and 3, column 0
    torch.testing.assert_close(spread[1, 2], full[3, 3], rtol=0, atol=1e-7)  # the far corner stays the far corner
    assert enc.positions((4, 4)) is enc.pos_embed
    assert torch.equal(sincos_pos_embed(32, (4, 4), span=(4, 4)), enc.pos_embed.detach())


def test_masks_must_agree_in_shape_and_batch() -> None:
    enc = tiny()
    x = torch.randn(2, 3, 16, 16)
    with pytest.raises(ValueError, match=r"masks\[1\] has shape"):
        enc(x, [torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 4, dtype=torch.long)])
    with pytest.raises(ValueError, match="batch size 3"):
        enc(x, [torch.zeros(3, 3, dtype=torch.long)])
    with pytest.raises(ValueError, match="integer index tensor"):
        enc(x, [torch.zeros(2, 3)])


def test_heads_must_divide_the_width() -> None:
    with pytest.raises(ValueError, match="num_heads=5"):
        tiny(num_heads=5)
