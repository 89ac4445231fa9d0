"""Gradient accumulation (``optimization.accumulate``): the large batch's step, a micro-batch at a time."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest
import torch

from jepa_torch.config import ConfigError, MethodConfig
from jepa_torch.models import JEPA, build_image_jepa
from jepa_torch.training.optim import make_optimizer
from jepa_torch.training.resume import list_checkpoints
from jepa_torch.io.checkpoint import read_official
from jepa_torch.methods.step import StepConfig, train_step
from jepa_torch.training.loop import train

from .test_train import tiny_config
from .test_whole_contexts import _whole_batch


def test_micro_batches_give_the_batch_gradient() -> None:
    torch.manual_seed(0)
    model = JEPA(*build_image_jepa("vit_tiny", img_size=24, patch_size=4, depth=2, pred_depth=2, pred_emb_dim=48))
    model = model.double()
    twin = copy.deepcopy(model)
    images = torch.randn(4, 3, 24, 24, dtype=torch.float64)
    context, targets, lengths = _whole_batch(4, seed=3)  # padded whole contexts, sliced with the rows
    results = []
    for m, accumulate in ((model, 1), (twin, 2)):
        opt = make_optimizer([m.encoder, m.predictor], lr=1e-3)
        results.append(train_step(m, opt, images, context, targets, 0.99, StepConfig(precision="fp32"),
                                  context_lengths=lengths, accumulate=accumulate))
    assert float(results[1].loss) == pytest.approx(float(results[0].loss), rel=1e-12)
    for a, b in zip(model.state_dict().values(), twin.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_a_run_with_accumulation_equals_the_large_batch_run(tmp_path: Path) -> None:
    """batch 8 x accumulate 2 is batch 16: the same data order, masks, schedules, losses and weights."""
    large = tiny_config(tmp_path / "large", max_steps=6)
    small = tiny_config(tmp_path / "small", max_steps=6)
    small = dataclasses.replace(small, data=dataclasses.replace(small.data, batch_size=8),
                                optimization=dataclasses.replace(small.optimization, accumulate=2))
    a = train(large, progress=False).losses
    b = train(small, progress=False).losses
    assert [s for s, _ in a] == [s for s, _ in b]
    for (_, x), (_, y) in zip(a, b, strict=True):
        assert abs(x - y) <= 1e-5 * max(1.0, abs(x)), (x, y)
    wa = read_official(list_checkpoints(tmp_path / "large" / "checkpoints")[-1][1])["encoder"]
    wb = read_official(list_checkpoints(tmp_path / "small" / "checkpoints")[-1][1])["encoder"]
    assert max(float((wa[k] - wb[k]).abs().max()) for k in wa) <= 1e-5


def test_accumulation_is_refused_for_lejepa_in_one_line() -> None:
    cfg = tiny_config(Path("unused"))
    with pytest.raises(ConfigError, match=r"optimization.accumulate=2: method lejepa does not support gradient accumulation; use 1") as info:
        dataclasses.replace(cfg, method=MethodConfig(name="lejepa"),
                            optimization=dataclasses.replace(cfg.optimization, accumulate=2))
    assert "\n" not in str(info.value)
