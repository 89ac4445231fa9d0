"""``hubconf.py``: torch.hub builds our encoders and loads weights from a path or a URL."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from jepa_torch.io.checkpoint import save_official
from jepa_torch.io.export import load_encoder
from jepa_torch.models import JEPA, build_image_jepa

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def checkpoint(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    model = JEPA(*build_image_jepa("vit_tiny", img_size=32, patch_size=8, depth=2, pred_depth=1, pred_emb_dim=48))
    path = tmp_path / "tiny.pth.tar"
    save_official(path, model.encoder, model.predictor, model.target_encoder, epoch=3)
    return path


def _same(a: torch.nn.Module, b: torch.nn.Module) -> None:
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))


def test_entry_points_are_the_public_callables() -> None:
    spec = importlib.util.spec_from_file_location("hubconf_under_test", ROOT / "hubconf.py")
    assert spec is not None and spec.loader is not None
    hub = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hub)
    names = {n for n in dir(hub) if callable(getattr(hub, n)) and not n.startswith("_") and n[0].islower()}
    assert names >= {"encoder", "jepa", "vit_tiny16", "vit_base16", "vit_huge14", "vit_huge16", "vit_giant16"}
    assert hub.dependencies == ["torch", "numpy"]


def test_weights_from_a_path_and_from_a_url(checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = load_encoder(checkpoint)
    _same(torch.hub.load(str(ROOT), "encoder", source="local", weights=str(checkpoint)), expected)
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    from_url = torch.hub.load(str(ROOT), "vit_tiny16", source="local", weights=checkpoint.as_uri())
    _same(from_url, expected)
    assert (tmp_path / "hub" / "checkpoints" / checkpoint.name).is_file()  # cached for the next call
    model = torch.hub.load(str(ROOT), "jepa", source="local", weights=str(checkpoint))
    _same(model.target_encoder, expected)


def test_random_init_builds_the_preset() -> None:
    enc = torch.hub.load(str(ROOT), "vit_base16", source="local", img_size=64)
    assert enc.embed_dim == 768 and len(enc.blocks) == 12 and enc.grid == (4, 4)


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such file") as info:
        torch.hub.load(str(ROOT), "vit_huge14", source="local", weights=str(tmp_path / "nope.pth.tar"))
    assert "\n" not in str(info.value)
