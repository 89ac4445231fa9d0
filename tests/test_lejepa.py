"""LeJEPA: the views, the objective against the spec, the model, the method in the trainer, the online probe."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from jepa_core import regularisers as spec
from jepa_torch.io.checkpoint import CheckpointError, atomic_save, load_official
from jepa_torch.config import DataConfig, MethodConfig, ModelConfig, OptimConfig, RunConfig, TrainConfig
from jepa_torch.evaluation import EvalConfig, evaluate
from jepa_torch.io.export import export_encoder, load_encoder
from jepa_torch.methods.lejepa import LeJEPAStepConfig, lejepa_step
from jepa_torch.models.lejepa import LeJEPA
from jepa_torch.objectives.lejepa import lejepa_loss, prediction_term_as_spec
from jepa_torch.models import build_vit
from jepa_torch.evaluation.monitor import FixedBatchMonitor
from jepa_torch.methods.inputs import directions_for_step
from jepa_torch.training.loop import train
from jepa_torch.data.views import MultiCrop, view_generator

ROOT = Path(__file__).resolve().parent.parent


def images(b: int = 3, size: int = 16) -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randn(b, 3, size, size)


# ----------------------------------------------------------------------------- views


def test_views_come_global_first_at_their_sizes_and_are_a_function_of_seed_and_step() -> None:
    crop = MultiCrop(global_views=2, local_views=3, global_size=16, local_size=8, rotation=10, flip=True)
    x = images()
    views = crop(x, view_generator(7, 3))
    assert [tuple(v.shape) for v in views] == [(3, 3, 16, 16)] * 2 + [(3, 3, 8, 8)] * 3
    again = crop(x, view_generator(7, 3))
    assert all(torch.equal(a, b) for a, b in zip(views, again, strict=True))
    other = crop(x, view_generator(7, 4))
    assert not torch.equal(views[0], other[0])
    assert not torch.equal(views[0], views[1])  # each view its own crop


def test_a_whole_image_crop_is_the_image_and_a_flip_mirrors_it() -> None:
    x = images()
    whole = MultiCrop(1, 0, global_size=16, global_scale=(1.0, 1.0), ratio=(1.0, 1.0))
    torch.testing.assert_close(whole(x, view_generator(0, 0))[0], x, rtol=0, atol=1e-5)
    mirrored = MultiCrop(1, 0, global_size=16, global_scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=True)
    seen = {bool(torch.allclose(v, x[:1].flip(-1), atol=1e-5)) for s in range(8)
            for v in mirrored(x[:1], view_generator(s, 0))}
    assert seen == {True, False}  # mirrored in about half the draws, and only mirrored or kept


def test_a_quarter_area_crop_spans_half_the_side_and_moves() -> None:
    """Area 1/4 at ratio 1 is half the side: on a ramp image a view spans half the ramp, at varying offsets."""
    ramp = torch.linspace(0, 1, 16)
    x = torch.stack([ramp.expand(16, 16), ramp[:, None].expand(16, 16)])[None]  # (1, 2, 16, 16): columns, rows
    crop = MultiCrop(1, 0, global_size=16, global_scale=(0.25, 0.25), ratio=(1.0, 1.0))
    views = [crop(x, view_generator(s, 0))[0][0] for s in range(20)]  # each (2, 16, 16)
    for v in views:
        for channel in v:  # the crop covers half of each axis: about 8 of the 16 ramp steps
            assert 0.4 < float(channel.max() - channel.min()) < 0.6
    starts = [float(v[0].min()) for v in views]
    assert max(starts) - min(starts) > 0.2  # placed at different offsets


# ----------------------------------------------------------------------------- the objective


@settings(max_examples=40, deadline=None)
@given(views=st.integers(1, 5), batch=st.integers(2, 6), width=st.integers(1, 6), data=st.data())
def test_prediction_term_is_the_spec_loss_over_views(views: int, batch: int, width: int, data: st.DataObject) -> None:
    """LeJEPA's prediction term is ``jepa_core.jepa_loss`` with the views as target indices, the mean of the
    global views as every view's target, the identity as predictor and squared L2, mean-normalised."""
    num_global = data.draw(st.integers(1, views), label="num_global")
    seed = data.draw(st.integers(0, 2**16), label="seed")
    z = torch.from_numpy(np.random.default_rng(seed).standard_normal((views, batch, width)))  # (V, B, K) float64
    directions = torch.from_numpy(spec.sigreg_directions(width, 3, seed))
    _, prediction, _ = lejepa_loss(z, num_global, directions, torch.linspace(-5, 5, 17, dtype=torch.float64), 0.3)
    assert prediction.dtype == torch.float64
    assert float(prediction) == pytest.approx(prediction_term_as_spec(z, num_global), rel=1e-12, abs=1e-15)


def test_sigreg_term_is_the_views_mean_of_the_spec_sigreg_and_lambda_mixes() -> None:
    rng = np.random.default_rng(3)
    z = rng.standard_normal((4, 32, 8))  # (V, B, K)
    d = spec.sigreg_directions(8, 16, 1)
    loss, prediction, regulariser = lejepa_loss(torch.from_numpy(z), 2, torch.from_numpy(d),
                                                torch.from_numpy(np.array(spec.DEFAULT_KNOTS)), 0.25)
    expected = np.mean([spec.sigreg(view, d) for view in z])
    assert float(regulariser) == pytest.approx(expected, rel=1e-9)
    assert float(loss) == pytest.approx(0.75 * float(prediction) + 0.25 * expected, rel=1e-12)


def test_views_of_one_size_share_an_encoder_call_without_changing_the_result() -> None:
    torch.manual_seed(0)
    model = LeJEPA(build_vit("vit_tiny", img_size=16, patch_size=4, depth=1), 32, 8).eval()
    views = [images(2, 16), images(2, 8) * 2, images(2, 16) + 1]
    together = model(views)  # (3, 2, 8)
    alone = torch.stack([model([v])[0] for v in views])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-6)


def test_a_step_trains_encoder_and_projector_and_lowers_the_loss_on_a_fixed_batch() -> None:
    torch.manual_seed(0)
    model = LeJEPA(build_vit("vit_tiny", img_size=16, patch_size=4, depth=1), 64, 16)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    views = MultiCrop(2, 2, global_size=16, local_size=8)(images(16, 16), view_generator(0, 0))
    d, knots = torch.from_numpy(spec.sigreg_directions(16, 32, 0)).float(), torch.linspace(-5, 5, 17)
    trained = [p for p in model.parameters() if p.requires_grad]  # all but the fixed sin-cos positions
    before = [p.detach().clone() for p in trained]
    losses = [float(lejepa_step(model, optimizer, views, d, knots, LeJEPAStepConfig(lam=0.1)).loss) for _ in range(15)]
    assert losses[-1] < losses[0]
    changed = [not torch.equal(a, b) for a, b in zip(before, trained, strict=True)]
    assert all(changed)  # every parameter of the encoder and the projector gets a gradient


# ----------------------------------------------------------------------------- in the trainer


def lejepa_config(out: Path, **run: object) -> TrainConfig:
    return TrainConfig(
        method=MethodConfig(name="lejepa", global_views=2, local_views=2, local_size=8, projector_hidden=32,
                            projector_dim=16),
        model=ModelConfig(preset="vit_tiny", depth=1, patch_size=4),
        data=DataConfig(img_size=16, batch_size=16, holdout_fraction=0.5),
        optimization=OptimConfig(epochs=2, warmup_epochs=0.5, lr=1e-3, sigreg_slices=16),
        run=RunConfig(out_dir=str(out), device="cpu", log_every=1, checkpoint_every=3, keep_checkpoints=2,
                      monitor_every=0, tensorboard=False, **run),  # type: ignore[arg-type]
    )


def test_sigreg_directions_are_unit_columns_and_a_function_of_seed_and_step(tmp_path: Path) -> None:
    cfg = lejepa_config(tmp_path)
    d = directions_for_step(cfg, 5, 16, torch.device("cpu"))
    assert d.shape == (16, 16)
    torch.testing.assert_close(d.norm(dim=0), torch.ones(16))
    assert torch.equal(d, directions_for_step(cfg, 5, 16, torch.device("cpu")))
    assert not torch.equal(d, directions_for_step(cfg, 6, 16, torch.device("cpu")))


def _as_format_2(path: Path, dest: Path) -> None:
    """``path`` as LeJEPA checkpoints were written before format 3: the projector as ``predictor``, the encoder
    again as ``target_encoder``, no ``method``, ``model`` or ``encoders``."""
    ckpt = torch.load(path, weights_only=True)
    old = {k: v for k, v in ckpt.items() if k not in ("method", "model", "encoders", "projector", "digest")}
    dest.parent.mkdir(parents=True)
    atomic_save({**old, "predictor": ckpt["projector"], "target_encoder": ckpt["encoder"], "format_version": 2}, dest)


def test_lejepa_run_resumes_bit_for_bit_and_evaluates_its_one_encoder(tmp_path: Path) -> None:
    whole = train(lejepa_config(tmp_path / "whole", max_steps=6), progress=False)
    first = train(lejepa_config(tmp_path / "split", max_steps=3), progress=False)
    assert first.last_checkpoint is not None
    _as_format_2(first.last_checkpoint, tmp_path / "old" / "checkpoints" / first.last_checkpoint.name)
    second = train(lejepa_config(tmp_path / "split", max_steps=6), progress=False)
    assert second.resumed_from == 3
    assert first.losses + second.losses == whole.losses
    from_old = train(lejepa_config(tmp_path / "old", max_steps=6), progress=False)  # format 2 still resumes
    assert from_old.resumed_from == 3 and from_old.losses == second.losses
    with (tmp_path / "whole" / "log.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["momentum"] == ""  # no EMA to log
    assert whole.last_checkpoint is not None
    ckpt = torch.load(whole.last_checkpoint, weights_only=True)
    assert {"encoder", "projector"} <= set(ckpt) and not {"predictor", "target_encoder"} & set(ckpt)
    assert (ckpt["method"], ckpt["format_version"], ckpt["encoders"]) == ("lejepa", 3, {"target": "encoder",
                                                                                       "context": "encoder"})
    report = evaluate(whole.last_checkpoint, baselines=False, config=EvalConfig(probes=("knn",), progress=False))
    assert list(report.rows) == ["LeJEPA encoder"]


def test_a_lejepa_checkpoint_loads_as_what_it_holds(tmp_path: Path) -> None:
    """hub's 'jepa' gives the method's model, load_encoder its encoder; I-JEPA-only readers say what the file holds."""
    run = train(lejepa_config(tmp_path / "run", max_steps=1), progress=False)
    path = run.last_checkpoint
    assert path is not None
    ckpt = torch.load(path, weights_only=True)
    encoder_state = {k.removeprefix("module."): v for k, v in ckpt["encoder"].items()}
    model = torch.hub.load(str(ROOT), "jepa", source="local", weights=str(path))
    assert isinstance(model, LeJEPA) and model.projector_dim == 16 and not model.training
    encoder = load_encoder(path)
    for module in (model.encoder, encoder):
        assert all(torch.equal(v, encoder_state[k]) for k, v in module.state_dict().items())
    with pytest.raises(CheckpointError, match=r": a lejepa checkpoint \(entries encoder, projector\), not I-JEPA's") as e:
        load_official(path)
    assert "\n" not in str(e.value)
    with pytest.raises(CheckpointError, match=r"a lejepa checkpoint has no 'predictor'.*--format safetensors"):
        export_encoder(path, tmp_path / "x.pth.tar", fmt="official")
    assert load_encoder(export_encoder(path, tmp_path / "x.safetensors")).state_dict().keys() == encoder_state.keys()


def test_an_ijepa_run_with_sigreg_logs_the_term(tmp_path: Path) -> None:
    from tests.test_train import tiny_config

    cfg = tiny_config(tmp_path / "run", max_steps=3)
    cfg = replace(cfg, optimization=replace(cfg.optimization, sigreg_weight=0.1, sigreg_slices=8))
    train(cfg, progress=False)
    with (tmp_path / "run" / "log.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert all(float(r["regulariser"]) > 0 for r in rows)
    assert all(float(r["loss"]) == pytest.approx(float(r["prediction_loss"]) + float(r["regulariser"]), rel=1e-5)
               for r in rows)


# ----------------------------------------------------------------------------- the online probe


class _Pixels(nn.Module):
    """An 'encoder' whose tokens are the image's pixel rows: its pooled features are informative."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :1].flatten(2)  # (B, 1, H*W): one token, the whole image


class _Constant(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ones(x.shape[0], 4, 8)


def test_online_probe_separates_an_informative_encoder_from_a_collapsed_one() -> None:
    from jepa_torch.data import build_dataset

    cfg = TrainConfig(model=ModelConfig(patch_size=1), data=DataConfig(img_size=8))
    monitor = FixedBatchMonitor(build_dataset(cfg, "train", augment=False), torch.device("cpu"),
                                holdout=build_dataset(cfg, "holdout", augment=False))
    informative, collapsed = monitor.measure(_Pixels(), 1), monitor.measure(_Constant(), 1)
    assert informative["probe_linear"] > 0.8 and informative["probe_knn"] > 0.8
    assert collapsed["probe_linear"] < 0.2 and collapsed["probe_knn"] < 0.2


def test_monitor_inputs_are_spread_over_the_split() -> None:
    """A split sorted by class (image folders) must not give the monitor one class only."""
    from jepa_torch.evaluation.monitor import _spread

    assert _spread(10, 4) == [0, 3, 6, 9]
    assert _spread(3, 10) == [0, 1, 2]
    labels = [c for c in range(8) for _ in range(100)]  # 800 samples sorted by class
    assert {labels[i] for i in _spread(800, 64)} == set(range(8))
