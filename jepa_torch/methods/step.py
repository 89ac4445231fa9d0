"""One JEPA training step as a reusable unit.

    images (B,C,H,W), context masks [Mx x (B,Kc)], target masks [Mt x (B,Kt)]
      -> target encoder on the whole image (no grad), layer-norm, gather targets
      -> context encoder on the context tokens
      -> predictor: context + mask tokens at the target positions
      -> loss (smooth-L1 mean by default; optional VICReg variance/covariance and SIGReg terms)
      -> backward, optional gradient clipping, optimiser step
      -> EMA of the target encoder toward the context encoder

Row order everywhere is the official one: target-mask-major, then context mask,
then batch. On CUDA the forward runs under bf16 autocast; bf16 keeps fp32's
exponent range, so no gradient scaler is used (a scaler is for fp16 only).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn
from torch.distributed.tensor import DTensor

from jepa_core.representation import LossKind

from jepa_torch.config.schema import Precision, check_precision, check_step_options
from jepa_torch.models.ema import update_target_encoder_
from jepa_torch.objectives.loss import grouped_prediction_loss
from jepa_torch.models.jepa import JEPA
from jepa_torch.objectives.regularisers import sigreg, variance_covariance
from jepa_torch.models.vit import context_valid

__all__ = ["StepConfig", "StepResult", "autocast_for", "backward_and_step", "clip_and_step", "compile_model",
           "cpu_bf16_units", "pooled", "precision_note", "resolved_precision", "train_step"]

def compile_model(model: JEPA, dynamic: bool | None = None) -> JEPA:
    """Compile the three networks in place with ``torch.compile`` (inductor); returns ``model``.

    ``nn.Module.compile`` keeps the modules themselves, so state-dict names, checkpoints, the
    optimiser's parameters and the EMA are unchanged (no ``_orig_mod.`` prefix). The compiled
    forward is the same function (exact GELU, LayerNorm eps 1e-6): on the CPU it matches the
    eager one within 1e-5 (2e-6 on the benchmark's models; ``benchmarks/bench_step.py`` checks it
    before it times anything).

    Shapes: the first call compiles for its mask sizes. With ``dynamic=None`` (the default) a
    later batch with other mask lengths recompiles once with those sizes symbolic and then reuses
    that graph for every length (the corrected sampler); ``dynamic=True`` starts symbolic
    (slower first compile); ``dynamic=False`` compiles a graph per length. The official sampler
    keeps the lengths fixed within a run, so it compiles once. A different number of target
    groups per batch is a different graph too (guarded by dynamo, one compile each).

    Args:
        model: the three networks, on their device.
        dynamic: passed to ``torch.compile``.

    Returns:
        ``model``, whose encoder, target encoder and predictor now run compiled.
    """
    for module in (model.encoder, model.target_encoder, model.predictor):
        module.compile(dynamic=dynamic)
    return model


@dataclass(frozen=True)
class StepConfig:
    """What one step computes.

    Attributes:
        loss: ``"smooth_l1"`` (official I-JEPA), ``"l2"`` or ``"l1"`` (V-JEPA).
        var_weight: weight of VICReg's variance hinge on the context tokens (0: off, official).
        cov_weight: weight of VICReg's covariance penalty on the context tokens (0: off).
        sigreg_weight: weight of SIGReg on the context encoder's output (0: off); ``train_step``
            then needs the step's directions and knots.
        sigreg_embedding: ``"context_tokens"`` (every context token a sample of SIGReg) or
            ``"context_pooled"`` (each context view's tokens averaged first).
        grad_clip: clip the global gradient norm to this value (None: off, official).
        precision: ``"auto"`` (bf16 on CUDA, fp32 elsewhere), ``"fp32"`` or ``"bf16"``.
    """

    loss: LossKind = "smooth_l1"
    var_weight: float = 0.0
    cov_weight: float = 0.0
    sigreg_weight: float = 0.0
    sigreg_embedding: Literal["context_tokens", "context_pooled"] = "context_tokens"
    grad_clip: float | None = None
    precision: Precision = "auto"

    def __post_init__(self) -> None:
        check_step_options("StepConfig", self)  # the rules of the config's optimization section, said once
        check_precision("StepConfig.precision", self.precision)


@dataclass(frozen=True)
class StepResult:
    """Detached 0-d tensors of one step (read with ``.item()`` when logging, to avoid a sync per step).

    Attributes:
        loss: the optimised total.
        prediction_loss: the JEPA term alone.
        regulariser: the weighted regularisers' sum (VICReg, SIGReg; 0 when off).
        grad_norm: the global gradient norm before clipping (None when clipping is off).
    """

    loss: Tensor
    prediction_loss: Tensor
    regulariser: Tensor
    grad_norm: Tensor | None


def _cpu_reports(name: str) -> bool:
    probe = getattr(torch.cpu, name, None)  # torch's own CPU feature probes (cpuinfo), private but stable
    try:
        return bool(probe()) if callable(probe) else False
    except (RuntimeError, OSError):
        return False


def cpu_bf16_units() -> str | None:
    """The bf16 matrix units of this CPU that torch's oneDNN kernels use: ``"AMX"`` (Intel AMX tiles),
    ``"AVX512-BF16"`` (AVX-512 bf16 dot products, also on AMD Zen 4 and later), or None (bf16 would be
    emulated, slower than fp32)."""
    if not torch.backends.mkldnn.is_available():  # type: ignore[no-untyped-call]
        return None
    if _cpu_reports("_is_amx_tile_supported"):
        return "AMX"
    if _cpu_reports("_is_avx512_bf16_supported"):
        return "AVX512-BF16"
    return None


def precision_note(device: torch.device, precision: Precision = "auto") -> str:
    """How a run's header says its precision: ``bf16`` or ``fp32``, and on the CPU the bf16 units found
    (``fp32 (bf16 units: AMX)``: ``run.precision=bf16`` would use them; ``bf16 (bf16 units: none)``: emulated)."""
    chosen = resolved_precision(device, precision)
    if device.type != "cpu":
        return chosen
    units = cpu_bf16_units()
    return f"{chosen} (bf16 units: {units or 'none'})"


def resolved_precision(device: torch.device, precision: Precision = "auto") -> Literal["fp32", "bf16"]:
    """What ``precision`` means on ``device``: ``auto`` is bf16 on CUDA and fp32 elsewhere.

    On the CPU ``auto`` stays fp32 even where the CPU has bf16 units: on the shipped recipes' small
    steps bf16 autocast is slower there (its casts and fp32 norms outweigh the faster matmuls; measured
    by ``benchmarks/bench_precision.py``, docs/performance.md), and faster only from ViT-S-sized steps
    up. ``run.precision: bf16`` asks for it.
    """
    if precision == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    return precision


def autocast_for(device: torch.device, precision: Precision = "auto") -> contextlib.AbstractContextManager[None]:
    """bf16 autocast on CUDA (``auto`` or ``bf16``); a no-op for fp32 and on the CPU under ``auto``."""
    if resolved_precision(device, precision) != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def backward_and_step(loss: Tensor, optimizer: torch.optim.Optimizer, grad_clip: float | None) -> Tensor | None:
    """Backpropagate ``loss``, clip the global gradient norm (when ``grad_clip`` is set), step the optimiser.

    Returns:
        The gradient norm before clipping, or None when clipping is off.
    """
    loss.backward()  # type: ignore[no-untyped-call]
    return clip_and_step(optimizer, grad_clip)


def clip_and_step(optimizer: torch.optim.Optimizer, grad_clip: float | None) -> Tensor | None:
    """Clip the global gradient norm (when ``grad_clip`` is set) and step the optimiser; returns the norm or None."""
    grad_norm = None
    if grad_clip is not None:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        grad_norm = torch.nn.utils.clip_grad_norm_(params, grad_clip)
        if isinstance(grad_norm, DTensor):  # sharded gradients (FSDP): the norm over all shards, on every process
            grad_norm = grad_norm.full_tensor()
    optimizer.step()
    return grad_norm


def pooled(context: Tensor, valid: Tensor | None) -> Tensor:
    """Each context row's mean token ``(rows, D)``, over its real entries only when ``valid`` is given."""
    if valid is None:
        return context.mean(dim=1)  # (rows, D)
    w = valid.to(context.dtype).unsqueeze(-1)  # (rows, Kc, 1)
    return (context * w).sum(dim=1) / w.sum(dim=1)  # (rows, D)


def train_step(
    model: JEPA,
    optimizer: torch.optim.Optimizer,
    images: Tensor,
    context_masks: list[Tensor],
    target_masks: list[Tensor],
    momentum: float,
    config: StepConfig = StepConfig(),
    directions: Tensor | None = None,
    knots: Tensor | None = None,
    forward: nn.Module | None = None,
    context_lengths: list[Tensor] | None = None,
    accumulate: int = 1,
) -> StepResult:
    """One optimisation step of the context encoder and predictor, then the EMA.

    The caller sets the learning rate and weight decay of ``optimizer`` for this step
    (see ``jepa_torch.training.optim.apply_schedules``) and passes the step's EMA ``momentum``.

    Args:
        model: the three networks.
        optimizer: over the context encoder's and predictor's parameters.
        images: ``(B, C, H, W)`` (or ``(B, T, F)`` for sequences), on the model's device.
        context_masks: ``Mx`` context masks ``(B, Kc)``.
        target_masks: ``Mt`` target masks ``(B, Kt)``.
        momentum: EMA momentum of this step.
        config: loss, regulariser, clipping and precision.
        directions: ``(D, M)`` SIGReg directions of this step (needed when ``config.sigreg_weight > 0``).
        knots: ``(T,)`` SIGReg integration points (None: the spec's default).
        forward: what runs the forward pass: ``model`` (None) or its DDP wrapper; the EMA always
            reads the raw ``model``.
        context_lengths: whole contexts (``mask.context_trim: none``): one ``(B,)`` tensor per
            context mask, the real entries of each padded row. Padding is masked out of attention
            and left out of the regularisers. None: every entry is real.
        accumulate: split the batch into this many equal micro-batches, run each forward and
            backward (under DDP, gradients are synchronised on the last only) and add their
            gradients, scaled by ``1 / accumulate``, before the one optimiser step and EMA update: the
            prediction loss and its gradient are the whole batch's. ``B`` must be divisible by it.
    """
    batch = images.shape[0]
    if accumulate < 1 or batch % accumulate:
        raise ValueError(f"accumulate={accumulate}: must be >= 1 and divide the batch of {batch}")
    optimizer.zero_grad(set_to_none=True)
    run = model if forward is None else forward
    size = batch // accumulate
    parts: list[tuple[Tensor, Tensor]] = []  # each micro-batch's (prediction loss, regulariser), detached
    for i in range(accumulate):
        rows = slice(i * size, (i + 1) * size)
        last = i == accumulate - 1
        no_sync = getattr(run, "no_sync", None)
        with contextlib.nullcontext() if last or no_sync is None else no_sync():
            pred_loss, reg = _losses(run, images[rows], [m[rows] for m in context_masks],
                                     [m[rows] for m in target_masks], config, directions, knots,
                                     None if context_lengths is None else [n[rows] for n in context_lengths])
            ((pred_loss + reg) / accumulate).backward()  # type: ignore[no-untyped-call]
        parts.append((pred_loss.detach(), reg.detach()))
    grad_norm = clip_and_step(optimizer, config.grad_clip)
    update_target_encoder_(model.target_encoder, model.encoder, momentum)
    pred_total, reg_total = (torch.stack(list(xs)).mean() for xs in zip(*parts))  # in the losses' own dtype
    return StepResult(pred_total + reg_total, pred_total, reg_total, grad_norm)


def _losses(run: nn.Module, images: Tensor, context_masks: list[Tensor], target_masks: list[Tensor],
            config: StepConfig, directions: Tensor | None, knots: Tensor | None,
            context_lengths: list[Tensor] | None) -> tuple[Tensor, Tensor]:
    """The prediction loss and the weighted regularisers of one (micro-)batch, with their graphs."""
    valid = None if context_lengths is None else context_valid(context_lengths, context_masks[0].shape[1])
    with autocast_for(images.device, config.precision):
        predictions, targets, context = run(images, context_masks, target_masks, valid)
        pred_loss = grouped_prediction_loss(predictions, targets, config.loss)
    reg = pred_loss.new_zeros(())
    tokens = context if valid is None else context[valid]  # (Mx*B, Kc, D), or (n, D) without padding
    if config.var_weight or config.cov_weight:
        variance, covariance = variance_covariance(tokens)
        reg = config.var_weight * variance + config.cov_weight * covariance
    if config.sigreg_weight:
        if directions is None:
            raise ValueError("StepConfig.sigreg_weight > 0 needs the step's SIGReg directions")
        embeddings = tokens if config.sigreg_embedding == "context_tokens" else pooled(context, valid)
        reg = reg + config.sigreg_weight * sigreg(embeddings, directions, knots)
    return pred_loss, reg
