"""Official-layout checkpoints: round trip, prefixes, strict loading, inference, atomic writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from jepa_torch.io.checkpoint import (
    CheckpointError,
    infer_predictor_config,
    infer_vit_config,
    load_official,
    read_official,
    save_official,
    strip_prefixes,
)
from jepa_torch.models import make_target_encoder
from jepa_torch.models.predictor import Predictor
from jepa_torch.models.tokens import SequenceTransformer
from jepa_torch.models.vit import VisionTransformer
from tests.official_oracle import encoder_forward, predictor_forward, random_masks, randomize_

HEADS = 4


def models(img: int | tuple[int, int] = 16) -> tuple[VisionTransformer, Predictor, VisionTransformer]:
    torch.manual_seed(0)
    enc = VisionTransformer(img, 4, 3, embed_dim=32, depth=2, num_heads=HEADS)
    pred = Predictor(grid=enc.grid, embed_dim=32, predictor_embed_dim=16, depth=3, num_heads=HEADS)
    randomize_(enc, 1)
    randomize_(pred, 2)
    target = make_target_encoder(enc)
    randomize_(target, 3)
    return enc, pred, target


def official_dict(prefix: str = "") -> dict[str, Any]:
    """What the official train.py saves, built here, with an optional key prefix on every state dict."""
    enc, pred, target = models()

    def add(m: nn.Module) -> dict[str, torch.Tensor]:
        return {prefix + k: v for k, v in m.state_dict().items()}

    return {
        "encoder": add(enc), "predictor": add(pred), "target_encoder": add(target),
        "opt": {"state": {}, "param_groups": []}, "scaler": None, "epoch": 3, "loss": 0.5,
        "batch_size": 2, "world_size": 1, "lr": 1e-3,
    }


def assert_same_weights(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def test_round_trip_through_a_file_keeps_every_tensor(tmp_path: Path) -> None:
    enc, pred, target = models()
    path = tmp_path / "ijepa-latest.pth.tar"
    opt = torch.optim.AdamW(list(enc.parameters()) + list(pred.parameters()), lr=0.001)
    save_official(path, enc, pred, target, opt=opt.state_dict(), scaler=None, epoch=7, lr=0.001)
    raw = torch.load(path, weights_only=True)
    assert set(raw) == {"encoder", "predictor", "target_encoder", "opt", "scaler", "epoch", "lr", "digest"}
    assert raw["epoch"] == 7 and raw["opt"]["param_groups"][0]["lr"] == 0.001
    assert all(k.startswith("module.") and not k.startswith("module.module.")
               for sd in (raw["encoder"], raw["predictor"]) for k in sd)  # the official trainer's keys
    enc2, pred2, target2 = load_official(path, num_heads=HEADS)
    for a, b in ((enc, enc2), (pred, pred2), (target, target2)):
        assert_same_weights(a, b)
    assert all(not p.requires_grad for p in target2.parameters())
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


@pytest.mark.parametrize("prefix", ["module.", "_orig_mod.", "module._orig_mod."])
def test_prefixed_official_state_dicts_load_strictly(prefix: str) -> None:
    ckpt = official_dict(prefix)
    enc, pred, target = load_official(ckpt, num_heads=HEADS)
    assert_same_weights(enc, models()[0])
    assert set(pred.state_dict()) == {k[len(prefix):] for k in ckpt["predictor"]}


def test_loaded_modules_compute_what_the_official_code_computes() -> None:
    ckpt = official_dict("module.")
    enc, pred, target = load_official(ckpt, num_heads=HEADS)
    imgs = torch.randn(2, 3, 16, 16)
    masks_x, masks = random_masks(2, 16, 8, 2, 0), random_masks(2, 16, 3, 3, 1)
    enc_sd, pred_sd = strip_prefixes(ckpt["encoder"]), strip_prefixes(ckpt["predictor"])
    z = enc(imgs, masks_x)
    torch.testing.assert_close(z, encoder_forward(enc_sd, imgs, masks_x, HEADS), rtol=0, atol=1e-5)
    want = predictor_forward(pred_sd, z, masks_x, masks, HEADS)
    torch.testing.assert_close(pred(z, masks_x, masks), want, rtol=0, atol=1e-5)
    tgt_sd = strip_prefixes(ckpt["target_encoder"])
    torch.testing.assert_close(target(imgs), encoder_forward(tgt_sd, imgs, None, HEADS), rtol=0, atol=1e-5)


def test_loaded_modules_own_their_tensors() -> None:
    ckpt = official_dict()
    ckpt["target_encoder"] = ckpt["encoder"]  # the same tensors for both, as after a fresh start
    enc, _, target = load_official(ckpt, num_heads=HEADS)
    with torch.no_grad():
        enc.norm.weight.add_(1.0)
        ckpt["encoder"]["norm.bias"].add_(1.0)
    assert not torch.equal(enc.norm.weight, target.norm.weight)
    assert not torch.equal(enc.norm.bias, ckpt["encoder"]["norm.bias"])
    assert all(p.device.type == "cpu" for p in enc.parameters())
    assert [n for n, p in enc.named_parameters() if not p.requires_grad] == ["pos_embed"]


def test_a_mis_shaped_key_fails_naming_it() -> None:
    ckpt = official_dict("module.")
    ckpt["target_encoder"]["module.blocks.1.mlp.fc2.bias"] = torch.zeros(31)
    with pytest.raises(CheckpointError, match=r"target_encoder: key 'blocks.1.mlp.fc2.bias' has shape \(31,\)"):
        load_official(ckpt, num_heads=HEADS)


def test_a_missing_key_fails_naming_it() -> None:
    ckpt = official_dict()
    del ckpt["predictor"]["predictor_norm.bias"]
    with pytest.raises(CheckpointError, match="predictor: missing key 'predictor_norm.bias'"):
        load_official(ckpt, num_heads=HEADS)


def test_an_unexpected_key_fails_naming_it() -> None:
    ckpt = official_dict()
    ckpt["encoder"]["cls_token"] = torch.zeros(1, 1, 32)
    with pytest.raises(CheckpointError, match="encoder: unexpected key 'cls_token'"):
        load_official(ckpt, num_heads=HEADS)


def test_a_missing_model_entry_fails_naming_it() -> None:
    ckpt = official_dict()
    del ckpt["target_encoder"]
    with pytest.raises(CheckpointError, match="no key 'target_encoder'"):
        load_official(ckpt, num_heads=HEADS)


def test_architecture_is_inferred_from_shapes() -> None:
    ckpt = official_dict("module.")
    cfg = infer_vit_config(ckpt["encoder"], num_heads=HEADS)
    assert (cfg.embed_dim, cfg.depth, cfg.num_heads, cfg.mlp_hidden_dim) == (32, 2, HEADS, 128)
    assert (cfg.patch_size, cfg.in_chans, cfg.grid) == ((4, 4), 3, (4, 4))
    pcfg = infer_predictor_config(ckpt["predictor"], num_heads=HEADS)
    assert (pcfg.embed_dim, pcfg.pred_emb_dim, pcfg.depth, pcfg.mlp_hidden_dim) == (32, 16, 3, 64)


def test_heads_come_from_the_official_preset_of_the_width() -> None:
    torch.manual_seed(0)
    enc = VisionTransformer(16, 8, 3, embed_dim=192, depth=1, num_heads=3)
    assert infer_vit_config(enc.state_dict()).num_heads == 3
    assert infer_vit_config(enc.state_dict(), num_heads=6).num_heads == 6
    with pytest.raises(CheckpointError, match="width 32 is not an official preset width.*num_heads="):
        infer_vit_config(official_dict()["encoder"])


def test_a_non_square_grid_needs_to_be_named() -> None:
    enc, pred, target = models((16, 12))
    ckpt = {"encoder": enc.state_dict(), "predictor": pred.state_dict(), "target_encoder": target.state_dict()}
    with pytest.raises(CheckpointError, match=r"12 positions, not a square grid; pass grid=\(rows, cols\)"):
        load_official(ckpt, num_heads=HEADS)
    enc2, _, _ = load_official(ckpt, num_heads=HEADS, grid=(4, 3))
    assert enc2.grid == (4, 3)
    assert_same_weights(enc, enc2)


def test_sequence_encoders_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    enc = SequenceTransformer(5, 10, embed_dim=32, depth=1, num_heads=HEADS)
    pred = Predictor(grid=(10,), embed_dim=32, predictor_embed_dim=16, depth=1, num_heads=HEADS)
    save_official(tmp_path / "seq.pth.tar", enc, pred, make_target_encoder(enc))
    enc2, pred2, _ = load_official(tmp_path / "seq.pth.tar", num_heads=HEADS)
    assert isinstance(enc2, SequenceTransformer) and pred2.grid == (10,)
    assert_same_weights(enc, enc2)


class Wrapper(nn.Module):
    """Stands in for DDP (``.module``) and torch.compile (``._orig_mod``) wrappers."""

    def __init__(self, inner: nn.Module, attr: str) -> None:
        super().__init__()
        self.add_module(attr, inner)


def test_wrapped_modules_are_saved_with_one_module_prefix(tmp_path: Path) -> None:
    """As the official trainer writes them (DDP-wrapped): ``module.<name>``, whatever wraps ours."""
    enc, pred, target = models()
    path = tmp_path / "w.pth.tar"
    save_official(path, Wrapper(enc, "module"), Wrapper(Wrapper(pred, "_orig_mod"), "module"), target)
    raw = read_official(path)
    for name, module in (("encoder", enc), ("predictor", pred), ("target_encoder", target)):
        assert set(raw[name]) == {f"module.{k}" for k in module.state_dict()}
    save_official(path, enc, pred, target, prefix="")
    assert set(read_official(path)["encoder"]) == set(enc.state_dict())


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    enc, pred, target = models()
    path = tmp_path / "ckpt.pth.tar"
    save_official(path, enc, pred, target, epoch=1)
    before = path.read_bytes()
    with pytest.raises(Exception):
        save_official(path, enc, pred, target, epoch=2, bad=lambda: None)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_unreadable_sources_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="checkpoint file not found"):
        read_official(tmp_path / "nope.pth.tar")
    (tmp_path / "junk.pth.tar").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable weights-only torch checkpoint"):
        read_official(tmp_path / "junk.pth.tar")
    torch.save([1, 2], tmp_path / "list.pth.tar")
    with pytest.raises(CheckpointError, match="holds a list"):
        read_official(tmp_path / "list.pth.tar")
    torch.save({"encoder": nn.Linear(2, 2)}, tmp_path / "pickled.pth.tar")
    with pytest.raises(CheckpointError, match="pickled.pth.tar: not a readable weights-only"):
        read_official(tmp_path / "pickled.pth.tar")
