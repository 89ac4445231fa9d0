"""The JEPA step: what it computes, where gradients go, what the EMA does."""

from __future__ import annotations

import copy

import pytest
import torch

import jepa_core as jc
from jepa_torch.models import build_image_jepa, build_sequence_jepa
from jepa_torch.training.optim import apply_schedules, make_optimizer, param_groups
from jepa_torch.objectives.loss import grouped_prediction_loss
from jepa_torch.conformance.protocol_adapters import (BlockPredictor, ContextView, MaskedContextEncoder,
                                                      NormalisedTargetEncoder, smooth_l1_loss)
from jepa_torch.models import JEPA, group_by_length
from jepa_torch.methods import step as step_module
from jepa_torch.methods.step import StepConfig, train_step


def _tiny_image_model(seed: int = 0) -> JEPA:
    torch.manual_seed(seed)
    encoder, predictor = build_image_jepa("vit_tiny", img_size=32, patch_size=8, pred_depth=2, pred_emb_dim=48)
    return JEPA(encoder, predictor)


def _masks(batch: int, seed: int = 0) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    perm = torch.stack([torch.randperm(16, generator=g) for _ in range(batch)])  # (B, 16) on a 4x4 grid
    # target blocks of 3, 4 and 3 tokens: two predictor groups
    targets = [perm[:, 0:3].sort(1).values, perm[:, 3:7].sort(1).values, perm[:, 7:10].sort(1).values]
    context = [perm[:, 10:].sort(1).values]
    return context, targets


def test_targets_carry_no_gradient_and_target_encoder_moves_only_by_ema() -> None:
    """Stop-gradient is in the forward, not in the freezing: with the target encoder's parameters
    unfrozen, the targets still carry no graph and a step leaves those parameters without a
    gradient; the target then moves by exactly one EMA toward the stepped context encoder."""
    model = _tiny_image_model()
    opt = make_optimizer([model.encoder, model.predictor], lr=1e-3)
    x = torch.randn(2, 3, 32, 32)
    context_masks, target_masks = _masks(2)
    model.target_encoder.requires_grad_(True)
    _, targets, _ = model(x, context_masks, target_masks)
    assert len(targets) == 2 and not any(t.requires_grad for t in targets)
    before_target = copy.deepcopy(model.target_encoder.state_dict())
    train_step(model, opt, x, context_masks, target_masks, momentum=0.9)
    assert all(p.grad is None for p in model.target_encoder.parameters()), "a gradient reached the target encoder"
    after_ctx = model.encoder.state_dict()
    assert not all(torch.equal(after_ctx[k], before_target[k]) for k in before_target), "the step moved nothing"
    for name, value in model.target_encoder.state_dict().items():
        expected = 0.9 * before_target[name] + 0.1 * after_ctx[name]
        torch.testing.assert_close(value, expected, rtol=1e-6, atol=1e-7, msg=f"EMA of {name}")


def test_step_loss_is_the_spec_objective_normalised() -> None:
    """The step's mean loss equals jepa_core.jepa_loss over target blocks, through the Protocol adapters."""
    model = _tiny_image_model().double()
    x = torch.randn(3, 3, 32, 32, dtype=torch.float64)
    context_masks, target_masks = _masks(3)
    predictions, targets, _ = model(x, context_masks, target_masks)
    step_mean = float(grouped_prediction_loss(predictions, targets).detach())
    context = MaskedContextEncoder(model.encoder)(ContextView(x, context_masks[0]))
    target = NormalisedTargetEncoder(model.target_encoder)(x)
    total = jc.jepa_loss(target_masks, context, target, BlockPredictor(model.predictor), smooth_l1_loss)
    tokens = sum(int(b.numel()) for b in target_masks)
    assert step_mean == pytest.approx(jc.mean_normalised(total, tokens, model.encoder.embed_dim), rel=1e-10)


def test_equal_size_targets_take_one_predictor_call_and_the_official_loss() -> None:
    """With one target size (the official case) the loss is F.smooth_l1_loss over the stacked rows."""
    model = _tiny_image_model()
    x = torch.randn(2, 3, 32, 32)
    context_masks, target_masks = _masks(2)
    same = [target_masks[0], target_masks[2]]
    assert len(group_by_length(same)) == 1 and len(group_by_length(target_masks)) == 2
    with torch.no_grad():
        predictions, targets, _ = model(x, context_masks, same)
        assert len(predictions) == 1 and predictions[0].shape == (4, 3, 192)
        official = torch.nn.functional.smooth_l1_loss(predictions[0], targets[0])
        torch.testing.assert_close(grouped_prediction_loss(predictions, targets), official)


def test_steps_reduce_the_loss_on_a_fixed_batch() -> None:
    model = _tiny_image_model(1)
    opt = make_optimizer([model.encoder, model.predictor], lr=3e-4, weight_decay=0.0)
    x = torch.randn(4, 3, 32, 32)
    context_masks, target_masks = _masks(4, seed=1)
    losses = [float(train_step(model, opt, x, context_masks, target_masks, momentum=1.0).loss) for _ in range(25)]
    assert losses[-1] < 0.75 * losses[0], losses


def test_variance_covariance_term_is_added_and_trained() -> None:
    model = _tiny_image_model(2)
    opt = make_optimizer([model.encoder, model.predictor])
    x = torch.randn(4, 3, 32, 32)
    context_masks, target_masks = _masks(4)
    out = train_step(model, opt, x, context_masks, target_masks, momentum=0.996,
                     config=StepConfig(var_weight=1.0, cov_weight=0.04, grad_clip=1.0))
    assert float(out.regulariser) > 0.0
    assert float(out.loss) == pytest.approx(float(out.prediction_loss) + float(out.regulariser), rel=1e-6)
    assert out.grad_norm is not None and float(out.grad_norm) > 0.0


def test_bf16_autocast_runs_on_cpu_when_asked() -> None:
    model = _tiny_image_model(3)
    opt = make_optimizer([model.encoder, model.predictor])
    x = torch.randn(2, 3, 32, 32)
    context_masks, target_masks = _masks(2)
    out = train_step(model, opt, x, context_masks, target_masks, momentum=0.996, config=StepConfig(precision="bf16"))
    assert torch.isfinite(out.loss)
    assert all(p.dtype == torch.float32 for p in model.parameters()), "autocast must not change parameter dtypes"


@pytest.mark.parametrize(("amx", "avx512_bf16", "mkldnn", "units"), [
    (True, True, True, "AMX"), (False, True, True, "AVX512-BF16"), (False, False, True, None),
    (True, True, False, None)])
def test_the_cpu_bf16_units_are_read_from_torch_and_said_in_the_header(
        amx: bool, avx512_bf16: bool, mkldnn: bool, units: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: mkldnn)
    assert step_module.cpu_bf16_units() == units
    cpu = torch.device("cpu")
    assert step_module.resolved_precision(cpu, "auto") == "fp32"  # auto stays fp32 on every CPU
    assert step_module.precision_note(cpu, "auto") == f"fp32 (bf16 units: {units or 'none'})"
    assert step_module.precision_note(cpu, "bf16") == f"bf16 (bf16 units: {units or 'none'})"
    assert step_module.precision_note(torch.device("cuda"), "auto") == "bf16"


def test_sequence_model_trains_with_the_same_step() -> None:
    torch.manual_seed(0)
    encoder, predictor = build_sequence_jepa(input_dim=3, seq_len=16, pred_depth=1, pred_emb_dim=48)
    model = JEPA(encoder, predictor)
    opt = make_optimizer([model.encoder, model.predictor])
    x = torch.randn(2, 16, 3)
    context_masks, target_masks = _masks(2)
    out = train_step(model, opt, x, context_masks, target_masks, momentum=0.996)
    assert torch.isfinite(out.loss)


def test_weight_decay_groups_follow_the_official_rule() -> None:
    model = _tiny_image_model()
    decay, no_decay = param_groups([model.encoder, model.predictor], 0.04)
    decay_ids = {id(p) for p in decay["params"]}  # type: ignore[attr-defined]
    for name, p in [*model.encoder.named_parameters(), *model.predictor.named_parameters()]:
        if not p.requires_grad:
            continue
        assert (id(p) in decay_ids) == (not name.endswith(".bias") and p.ndim > 1), name
    opt = make_optimizer([model.encoder, model.predictor])
    apply_schedules(opt, lr=0.5, weight_decay=0.3)
    assert [g["lr"] for g in opt.param_groups] == [0.5, 0.5]
    assert [g["weight_decay"] for g in opt.param_groups] == [0.3, 0.0]
    assert not any(p is model.encoder.pos_embed for g in opt.param_groups for p in g["params"])


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"loss": "huber"}, "loss="), ({"grad_clip": 0.0}, "grad_clip"), ({"precision": "fp16"}, "precision"),
    ({"var_weight": -1.0}, "var_weight"),
])
def test_step_config_rejects_bad_values(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StepConfig(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [{"loss": "huber"}, {"grad_clip": -1.0}, {"cov_weight": float("nan")},
                                 {"sigreg_embedding": "pooled"}])
def test_the_step_and_the_config_state_one_rule(bad: dict[str, object]) -> None:
    """StepConfig and the config's optimization section are checked by one function: one message each."""
    from jepa_torch.config import ConfigError, OptimConfig

    with pytest.raises(ConfigError) as step:
        StepConfig(**bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as config:
        OptimConfig(**bad)  # type: ignore[arg-type]
    assert str(step.value).removeprefix("StepConfig.") == str(config.value).removeprefix("optimization.")


def test_predictor_of_other_width_is_refused() -> None:
    torch.manual_seed(0)
    encoder, _ = build_image_jepa("vit_tiny", img_size=32, patch_size=8, pred_depth=1, pred_emb_dim=48)
    _, other = build_image_jepa("vit_small", img_size=32, patch_size=8, pred_depth=1, pred_emb_dim=48)
    with pytest.raises(ValueError, match="predictor width"):
        JEPA(encoder, other)


def test_masked_tokens_equal_the_full_forward_when_all_tokens_are_kept() -> None:
    """A context mask naming every position in order reproduces the unmasked encoder."""
    model = _tiny_image_model()
    x = torch.randn(2, 3, 32, 32)
    everything = [torch.arange(16).expand(2, 16)]
    torch.testing.assert_close(model.encoder(x, everything), model.encoder(x))
