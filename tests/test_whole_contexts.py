"""Whole contexts (``mask.context_trim: none``): padded rows give each sample what it gets alone.

The law suite checks the forward on its small float64 model (``test_padded_contexts_equal_each_sample_alone``
and ``test_whole_contexts_drop_no_patch``); these tests check the training step itself (gradients,
regularisers, the optimiser's update), the sampler's batches and the config key.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from jepa_core.masks import MaskConfig, sample_masks
from jepa_torch.config import ConfigError, MaskSection
from jepa_torch.config.yaml_io import config_from_dict
from jepa_torch.models import JEPA, build_image_jepa
from jepa_torch.training.optim import make_optimizer
from jepa_torch.objectives.regularisers import variance_covariance
from jepa_torch.methods.step import StepConfig, train_step
from jepa_torch.training.loop import train
from jepa_torch.models.vit import context_valid

from .test_train import tiny_config

GRID = (6, 6)


def _model() -> JEPA:
    torch.manual_seed(0)
    encoder, predictor = build_image_jepa("vit_tiny", img_size=24, patch_size=4, depth=2, pred_depth=2,
                                          pred_emb_dim=48)
    return JEPA(encoder, predictor).double()


def _whole_batch(batch: int, seed: int) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
    law = MaskConfig(num_targets=3, target_scale=(0.1, 0.2), context_scale=(0.6, 0.9), min_keep=4,
                     context_trim="none")
    for s in range(seed, seed + 50):  # a draw whose contexts differ in length
        mb = sample_masks(GRID, law, s, batch)
        assert mb.context_lengths is not None
        if len(set(mb.context_lengths[0].tolist())) > 1:
            break
    else:
        raise AssertionError("no draw with unequal contexts")
    as_t = lambda arrays: [torch.from_numpy(a) for a in arrays]  # noqa: E731
    return as_t(mb.context), as_t(mb.targets), as_t(mb.context_lengths)


def _grads(model: JEPA) -> list[torch.Tensor]:
    return [p.grad.clone() for p in [*model.encoder.parameters(), *model.predictor.parameters()]
            if p.grad is not None]


def test_padded_step_equals_the_mean_of_each_sample_alone() -> None:
    """Loss and every gradient of a padded batch equal the mean over its samples, each alone and unpadded.

    Every sample has the same number of target tokens, so the batch's mean loss is the mean of the
    samples' losses, and its gradients the mean of theirs.
    """
    config = StepConfig(precision="fp32")
    images = torch.randn(3, 3, 24, 24, dtype=torch.float64)
    context, targets, lengths = _whole_batch(3, seed=1)
    model = _model()
    opt = make_optimizer([model.encoder, model.predictor], lr=0.0)
    whole = train_step(model, opt, images, context, targets, momentum=1.0, config=config, context_lengths=lengths)
    grads = _grads(model)
    alone_losses, alone_grads = [], []
    for b in range(3):
        m = _model()
        o = make_optimizer([m.encoder, m.predictor], lr=0.0)
        k = int(lengths[0][b])
        r = train_step(m, o, images[b : b + 1], [c[b : b + 1, :k] for c in context], [t[b : b + 1] for t in targets],
                       momentum=1.0, config=config)
        alone_losses.append(float(r.loss))
        alone_grads.append(_grads(m))
    assert float(whole.loss) == pytest.approx(np.mean(alone_losses), rel=1e-12)
    for i, g in enumerate(grads):
        mean = torch.stack([a[i] for a in alone_grads]).mean(0)
        torch.testing.assert_close(g, mean, rtol=1e-9, atol=1e-12)


def test_regularisers_see_the_real_context_tokens_only() -> None:
    """VICReg on whole contexts is computed on the real tokens: the padding is not a sample of it."""
    images = torch.randn(3, 3, 24, 24, dtype=torch.float64)
    context, targets, lengths = _whole_batch(3, seed=2)
    model = _model()
    reference = copy.deepcopy(model)
    opt = make_optimizer([model.encoder, model.predictor], lr=0.0)
    cfg = StepConfig(var_weight=1.0, cov_weight=0.5, precision="fp32")
    result = train_step(model, opt, images, context, targets, momentum=1.0, config=cfg, context_lengths=lengths)
    with torch.no_grad():
        real = torch.cat([reference.encoder(images[b : b + 1], [context[0][b : b + 1, : int(lengths[0][b])]])[0]
                          for b in range(3)])  # (n, D): every sample's context alone, unpadded
        variance, covariance = variance_covariance(real)
    assert float(result.regulariser) == pytest.approx(float(variance + 0.5 * covariance), rel=1e-10)


def test_ignoring_the_lengths_changes_the_step() -> None:
    """The check above can fail: the same padded batch without its lengths gives another loss."""
    images = torch.randn(3, 3, 24, 24, dtype=torch.float64)
    context, targets, lengths = _whole_batch(3, seed=1)
    losses = []
    for given in (lengths, None):
        model = _model()
        opt = make_optimizer([model.encoder, model.predictor], lr=0.0)
        losses.append(float(train_step(model, opt, images, context, targets, momentum=1.0,
                                       config=StepConfig(precision="fp32"), context_lengths=given).loss))
    assert abs(losses[0] - losses[1]) > 1e-6


def test_context_valid_is_mask_major() -> None:
    valid = context_valid([torch.tensor([1, 3]), torch.tensor([2, 2])], 3)
    assert valid.tolist() == [[True, False, False], [True, True, True], [True, True, False], [True, True, False]]


def test_sampler_pads_with_a_real_patch_and_batch_min_cuts_the_same_blocks() -> None:
    law = MaskConfig(num_targets=4, context_scale=(0.85, 1.0), min_keep=10, num_context=2, context_trim="none")
    whole = sample_masks((14, 14), law, 5, 8)
    cut = sample_masks((14, 14), dataclasses.replace(law, context_trim="batch_min"), 5, 8)
    assert whole.context_lengths is not None and cut.context_lengths is None
    for ctx, n, short in zip(whole.context, whole.context_lengths, cut.context):
        assert short.shape[1] == min(int(x.min()) for x in whole.context_lengths)
        for b in range(8):
            k = int(n[b])
            assert set(ctx[b, k:].tolist()) <= {int(ctx[b, k - 1])}  # padding repeats the row's last patch
            assert set(short[b].tolist()) <= set(ctx[b, :k].tolist())
    # the whole contexts are about a third longer than the cut ones at the paper's settings
    assert np.mean(whole.context_lengths[0]) > 1.1 * cut.context[0].shape[1]


def test_config_key_and_its_one_line_error(tmp_path: Path) -> None:
    assert MaskSection(context_trim="none").to_mask_config().context_trim == "none"
    with pytest.raises(ConfigError, match=r"mask\.context_trim='shortest': use one of batch_min, none") as info:
        config_from_dict({"mask": {"context_trim": "shortest"}})
    assert "\n" not in str(info.value)


def test_training_runs_on_whole_contexts(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path / "run", max_steps=4)
    cfg = dataclasses.replace(cfg, mask=dataclasses.replace(cfg.mask, context_trim="none"))
    result = train(cfg, progress=False)
    assert len(result.losses) == 4 and all(np.isfinite(v) for _, v in result.losses)
