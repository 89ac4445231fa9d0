"""The video encoder and predictor on their own: tubelets, 3-D positions, RoPE, images, padding, mask tokens.

Equality with the official V-JEPA 2 modules is in tests/test_video_fidelity.py (needs a checkout).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from jepa_core.video_masks import VideoMaskConfig, sample_video_masks
from jepa_torch.models.positions import sincos_3d
from jepa_torch.models.video import (
    VideoPredictor,
    VideoTransformer,
    build_video_encoder,
    build_video_predictor,
    rope_rotate,
    token_positions,
)

SMALL = dict(img_size=16, patch_size=4, num_frames=4, tubelet_size=2, embed_dim=48, depth=2, num_heads=2)


def _encoder(**kw: object) -> VideoTransformer:
    torch.manual_seed(0)
    return VideoTransformer(**{**SMALL, **kw}).eval()  # type: ignore[arg-type]


def test_tubelet_embedding_is_a_linear_map_of_each_tubelet() -> None:
    """Token ``(t, r, c)`` is the Conv3d weight applied to frames ``2t, 2t+1`` of patch ``(r, c)``, raster order."""
    enc = _encoder()
    clip = torch.randn(2, 3, 4, 16, 16)
    tokens = enc.patch_embed(clip)  # (2, 2*4*4, 48)
    w, b = enc.patch_embed.proj.weight, enc.patch_embed.proj.bias
    assert b is not None
    t, r, c = 1, 2, 3
    cube = clip[:, :, 2 * t:2 * t + 2, 4 * r:4 * r + 4, 4 * c:4 * c + 4]  # (2, 3, 2, 4, 4)
    want = torch.einsum("bcthw,dcthw->bd", cube, w) + b
    torch.testing.assert_close(tokens[:, t * 16 + r * 4 + c], want, atol=1e-5, rtol=1e-5)


def test_3d_sincos_layout() -> None:
    """Frame channels first (D/2), then rows and columns (D/4 each); equal thirds with uniform_power."""
    emb = sincos_3d(16, (2, 3, 4))  # (24, 16)
    ids = torch.arange(24)
    pos = token_positions(ids, (2, 3, 4))
    for axis, (lo, hi) in enumerate([(0, 8), (8, 12), (12, 16)]):
        width = hi - lo
        omega = 1.0 / 10000 ** (torch.arange(width // 2, dtype=torch.float64) / (width / 2))
        angle = pos[:, axis, None].double() * omega
        torch.testing.assert_close(emb[:, lo:hi].double(), torch.cat([angle.sin(), angle.cos()], 1).float().double(),
                                   atol=1e-6, rtol=0)
    assert sincos_3d(16, (2, 3, 4), uniform_power=True).shape == (24, 16)
    with pytest.raises(ValueError, match="divisible by 8"):
        sincos_3d(12, (1, 2, 2))


def test_textbook_rope_depends_on_relative_positions_only() -> None:
    """With one frequency per channel pair, <R(p) q, R(p') k> depends on p - p' alone; the official tiling
    does not (which is why it is a flag, kept for the official checkpoints)."""
    q, k = torch.randn(1, 1, 1, 8).double(), torch.randn(1, 1, 1, 8).double()

    def score(p: float, p2: float, interleave: bool) -> float:
        a = rope_rotate(q, torch.tensor([p]).double(), interleave)
        b = rope_rotate(k, torch.tensor([p2]).double(), interleave)
        return float((a * b).sum())

    assert math.isclose(score(3, 1, True), score(7, 5, True), rel_tol=1e-12)
    assert not math.isclose(score(3, 1, False), score(7, 5, False), rel_tol=1e-6)


def test_an_image_is_a_still_clip_of_one_tubelet() -> None:
    for positions in ("sincos", "rope"):
        enc = _encoder(positions=positions)
        image = torch.randn(2, 3, 16, 16)
        still = image.unsqueeze(2).expand(-1, -1, 2, -1, -1)
        torch.testing.assert_close(enc(image), enc(still))
        assert enc(image).shape == (2, 16, 48)


def test_official_image_weights_load_into_one_frame_tubelets() -> None:
    """A Conv2d patch weight ``(D, C, p, p)`` loads into the one-frame Conv3d; outputs equal the 2-D conv's."""
    enc = _encoder(num_frames=1, tubelet_size=1, positions="sincos2d")
    sd = enc.state_dict()
    conv2d = sd["patch_embed.proj.weight"][:, :, 0].clone()
    sd["patch_embed.proj.weight"] = conv2d
    enc.load_state_dict(sd, strict=True)
    image = torch.randn(1, 3, 16, 16)
    want = F.conv2d(image, conv2d, enc.patch_embed.proj.bias, stride=4).flatten(2).transpose(1, 2)
    torch.testing.assert_close(enc.patch_embed(image), want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("positions", ["sincos", "rope"])
def test_padding_changes_no_real_token(positions: str) -> None:
    """Whole contexts and targets (trim='none') padded into one batch: each real output equals the sample alone."""
    enc = _encoder(positions=positions)
    pred = VideoPredictor(enc.grid, embed_dim=48, pred_emb_dim=24, depth=2, num_heads=2,
                          positions=positions).eval()  # type: ignore[arg-type]
    (m,) = sample_video_masks(enc.grid, VideoMaskConfig(num_blocks=2, spatial_scale=(0.1, 0.4),
                                                        temporal_scale=(0.5, 1.0), trim="none"), 3, 3)
    assert m.context_lengths is not None and m.target_lengths is not None
    ctx, tgt = torch.from_numpy(m.context[0]), torch.from_numpy(m.targets[0])
    nc, nt = torch.from_numpy(m.context_lengths[0]), torch.from_numpy(m.target_lengths[0])
    assert len(set(nc.tolist())) > 1 or len(set(nt.tolist())) > 1, "pick a seed with unequal rows"
    clip = torch.randn(3, 3, 4, 16, 16)
    cv = torch.arange(ctx.shape[1]) < nc[:, None]
    tv = torch.arange(tgt.shape[1]) < nt[:, None]
    with torch.no_grad():
        z = enc(clip, masks=[ctx], valid=cv)
        out = pred(z, ctx, tgt, valid=cv, target_valid=tv)
        for b in range(3):
            c, t = ctx[b:b + 1, :nc[b]], tgt[b:b + 1, :nt[b]]
            alone = pred(enc(clip[b:b + 1], masks=[c]), c, t)
            torch.testing.assert_close(out[b:b + 1, :nt[b]], alone, atol=1e-5, rtol=1e-5)


def test_mask_index_picks_the_configurations_token() -> None:
    torch.manual_seed(0)
    pred = VideoPredictor((2, 4, 4), embed_dim=48, pred_emb_dim=24, depth=1, num_heads=2, num_mask_tokens=2,
                          zero_init_mask_tokens=False).eval()
    assert not torch.equal(pred.mask_tokens[0], pred.mask_tokens[1])
    x, ctx, tgt = torch.randn(2, 5, 48), torch.arange(5).repeat(2, 1), torch.arange(20, 26).repeat(2, 1)
    a, b, c = (pred(x, ctx, tgt, mask_index=i) for i in (0, 1, 2))
    assert not torch.allclose(a, b)
    torch.testing.assert_close(a, c)  # taken modulo the number of tokens, as the official
    assert torch.count_nonzero(VideoPredictor((2, 4, 4), embed_dim=48, pred_emb_dim=24, depth=1,
                                              num_heads=2).mask_tokens[0]) == 0  # zero-initialised by default


def test_rope_models_take_other_clip_lengths_and_sizes() -> None:
    enc = _encoder(positions="rope")
    assert enc(torch.randn(1, 3, 8, 16, 24)).shape == (1, 4 * 4 * 6, 48)
    sincos = _encoder()
    assert sincos(torch.randn(1, 3, 2, 16, 16)).shape == (1, 16, 48)
    with pytest.raises(ValueError, match="multiple of the tubelet 2"):
        enc(torch.randn(1, 3, 3, 16, 16))


def test_builders_follow_the_presets_and_vjepa2_defaults() -> None:
    enc = build_video_encoder("tiny", img_size=32, num_frames=4, patch_size=16)
    assert (enc.embed_dim, len(enc.blocks), enc.num_heads, enc.positions, enc.grid) == (192, 12, 3, "rope", (2, 2, 2))
    pred = build_video_predictor(enc, depth=2)
    assert (pred.pred_emb_dim, pred.num_mask_tokens, pred.positions, pred.grid) == (384, 2, "rope", (2, 2, 2))
    assert sum(p.numel() for p in enc.parameters()) > 0 and enc.pos_embed is None


@pytest.mark.parametrize("positions", ["sincos", "rope"])
def test_activation_checkpointing_keeps_values_and_gradients(positions: str) -> None:
    enc = _encoder(positions=positions).train()
    pred = VideoPredictor(enc.grid, embed_dim=48, pred_emb_dim=24, depth=2, num_heads=2,
                          positions=positions).train()  # type: ignore[arg-type]
    clip, ctx, tgt = torch.randn(2, 3, 4, 16, 16), torch.arange(10).repeat(2, 1), torch.arange(20, 28).repeat(2, 1)
    results = []
    for recompute in (False, True):
        enc.recompute = pred.recompute = recompute
        enc.zero_grad()
        pred.zero_grad()
        loss = pred(enc(clip, masks=[ctx]), ctx, tgt).square().mean()
        loss.backward()
        results.append((loss.detach(), [p.grad.clone() for p in enc.parameters() if p.grad is not None]))
    torch.testing.assert_close(results[0][0], results[1][0])
    assert len(results[0][1]) == len(results[1][1]) > 0
    for a, b in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(a, b)
