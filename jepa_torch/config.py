"""The training configuration: typed frozen dataclasses, validated on construction.

A run is described by one :class:`TrainConfig` with five sections. Every field has a
default, so a YAML file names only what it changes. Values are checked once, here, and a
bad one raises :class:`ConfigError` naming the key (``optimization.lr``) and the fix.
Loading YAML, ``--set`` overrides and the official I-JEPA YAML layout live in
``jepa_torch.config_io``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Literal

from jepa_core.losses import LossKind
from jepa_core.masks import MaskConfig
from jepa_core.masks import validate as validate_masks

from .models import get_preset

__all__ = [
    "ConfigError",
    "DataConfig",
    "MaskSection",
    "MethodConfig",
    "ModelConfig",
    "OptimConfig",
    "RunConfig",
    "TrainConfig",
]

Dataset = Literal["digits", "image_folder", "sequence"]
Method = Literal["ijepa", "lejepa"]
SigregEmbedding = Literal["context_tokens", "context_pooled"]
Device = Literal["auto", "cpu", "cuda"]
Precision = Literal["auto", "fp32", "bf16"]

PRESETS = ("vit_tiny", "vit_small", "vit_base", "vit_large", "vit_huge", "vit_giant")


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names the key and the fix."""


def _fail(key: str, value: object, rule: str) -> ConfigError:
    return ConfigError(f"{key}={value!r}: {rule}")


def _positive(section: str, obj: object, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if not value > 0:
            raise _fail(f"{section}.{name}", value, "must be > 0")


def _non_negative(section: str, obj: object, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if not (value >= 0 and math.isfinite(value)):
            raise _fail(f"{section}.{name}", value, "must be a finite number >= 0")


def _range(key: str, value: tuple[float, float], low: float, high: float) -> None:
    if len(value) != 2 or not low <= value[0] <= value[1] <= high:
        raise _fail(key, value, f"must be [low, high] with {low} <= low <= high <= {high}")


@dataclass(frozen=True)
class ModelConfig:
    """The networks.

    Attributes:
        preset: encoder size, ``vit_tiny`` .. ``vit_giant`` (official widths and depths).
        depth: encoder blocks, overriding the preset's (None: the preset's).
        patch_size: patch side in pixels (images) - ignored for sequences.
        pred_depth: predictor blocks.
        pred_emb_dim: predictor width; must be divisible by the preset's heads.
        depth_rescale: keep the residual-projection depth rescaling at init (the official
            training overwrites it, so False reproduces official runs).
    """

    preset: str = "vit_tiny"
    depth: int | None = None
    patch_size: int = 4
    pred_depth: int = 6
    pred_emb_dim: int = 96
    depth_rescale: bool = False

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise _fail("model.preset", self.preset, f"use one of {', '.join(PRESETS)}")
        _positive("model", self, "patch_size", "pred_depth", "pred_emb_dim")
        if self.depth is not None and self.depth < 1:
            raise _fail("model.depth", self.depth, "must be >= 1, or null for the preset's depth")


@dataclass(frozen=True)
class DataConfig:
    """Where images (or sequences) come from and how they are augmented.

    Attributes:
        dataset: ``digits`` (scikit-learn's bundled 8x8 digits, upsampled; offline),
            ``image_folder`` (an ImageFolder tree at ``path``), or ``sequence`` (a ``.npy``
            file of shape ``(N, T, input_dim)`` at ``path``).
        path: the folder or file; unused for digits.
        img_size: the square crop side fed to the encoder (official ``crop_size``).
        crop_scale: random-resized-crop area range (official ``(0.3, 1.0)``).
        horizontal_flip, color_jitter, gaussian_blur: the official augmentations;
            ``color_jitter`` is the strength, 0 turns it off.
        batch_size: per-process batch size.
        num_workers: DataLoader worker processes.
        holdout_fraction: share of the data never trained on, kept for evaluation.
    """

    dataset: Dataset = "digits"
    path: str | None = None
    img_size: int = 32
    crop_scale: tuple[float, float] = (0.3, 1.0)
    horizontal_flip: bool = False
    color_jitter: float = 0.0
    gaussian_blur: bool = False
    batch_size: int = 64
    num_workers: int = 0
    holdout_fraction: float = 0.2

    def __post_init__(self) -> None:
        if self.dataset not in ("digits", "image_folder", "sequence"):
            raise _fail("data.dataset", self.dataset, "use digits, image_folder or sequence")
        if self.dataset != "digits" and not self.path:
            raise _fail("data.path", self.path, f"dataset {self.dataset} needs a path")
        _positive("data", self, "img_size", "batch_size")
        _range("data.crop_scale", self.crop_scale, 1e-6, 1.0)
        _non_negative("data", self, "color_jitter", "num_workers")
        if not 0.0 <= self.holdout_fraction < 1.0:
            raise _fail("data.holdout_fraction", self.holdout_fraction, "must be in [0, 1)")


@dataclass(frozen=True)
class MaskSection:
    """The multi-block masks (see ``jepa_core.masks.MaskConfig`` for each field).

    Attributes:
        official_compatible: reproduce the official sampler's distribution, defects included.
    """

    num_targets: int = 4
    target_scale: tuple[float, float] = (0.15, 0.2)
    target_aspect: tuple[float, float] = (0.75, 1.5)
    num_context: int = 1
    context_scale: tuple[float, float] = (0.85, 1.0)
    context_aspect: tuple[float, float] = (1.0, 1.0)
    min_keep: int = 10
    allow_overlap: bool = False
    official_compatible: bool = False

    def __post_init__(self) -> None:
        try:
            self.to_mask_config()
        except ValueError as exc:
            raise ConfigError(str(exc).replace("MaskConfig.", "mask.")) from None

    def to_mask_config(self) -> MaskConfig:
        """The sampler's config."""
        kw = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "official_compatible"}
        if self.official_compatible:
            kw["min_keep"] -= 1  # official_compatible() stores the official strict bound as m + 1
            return MaskConfig.official_compatible(**kw)
        return MaskConfig(**kw)


@dataclass(frozen=True)
class OptimConfig:
    """The official recipe: AdamW, LR warm-up then cosine, cosine weight decay, EMA 0.996 -> 1.

    Attributes:
        epochs: passes over the training split.
        ipe_scale: stretches the schedules beyond the run (official ``ipe_scale``).
        warmup_epochs: LR warm-up length.
        start_lr, lr, final_lr: LR at step 0, after warm-up, at the end.
        weight_decay, final_weight_decay: the cosine weight-decay ends.
        ema: EMA momentum at the start and at the end of the schedule.
        grad_clip: global gradient-norm clip (None: off, as official).
        loss: ``smooth_l1`` (official) or ``l2``.
        var_weight, cov_weight: VICReg variance / covariance terms on the context tokens (0: off).
        sigreg_weight: I-JEPA only: weight of SIGReg added to the prediction loss (0: off).
        sigreg_embedding: I-JEPA only: what SIGReg shapes: ``context_tokens`` (every context token of
            every sample, ``(Mx*B*Kc, D)``) or ``context_pooled`` (each sample's context tokens
            averaged, ``(Mx*B, D)``); docs/evaluation.md compares them.
        sigreg_slices: SIGReg's number of random directions per step (both methods).
        sigreg_knots: SIGReg's integration points, evenly over ``[-5, 5]`` (both methods).
    """

    epochs: int = 10
    ipe_scale: float = 1.0
    warmup_epochs: float = 1.0
    start_lr: float = 2e-4
    lr: float = 1e-3
    final_lr: float = 1e-6
    weight_decay: float = 0.04
    final_weight_decay: float = 0.4
    ema: tuple[float, float] = (0.996, 1.0)
    grad_clip: float | None = None
    loss: LossKind = "smooth_l1"
    var_weight: float = 0.0
    cov_weight: float = 0.0
    sigreg_weight: float = 0.0
    sigreg_embedding: SigregEmbedding = "context_tokens"
    sigreg_slices: int = 256
    sigreg_knots: int = 17

    def __post_init__(self) -> None:
        _positive("optimization", self, "epochs", "ipe_scale", "sigreg_slices")
        _non_negative("optimization", self, "warmup_epochs", "start_lr", "lr", "final_lr", "weight_decay",
                      "final_weight_decay", "var_weight", "cov_weight", "sigreg_weight")
        if self.sigreg_knots < 2:
            raise _fail("optimization.sigreg_knots", self.sigreg_knots, "must be >= 2 (points over [-5, 5])")
        if self.sigreg_embedding not in ("context_tokens", "context_pooled"):
            raise _fail("optimization.sigreg_embedding", self.sigreg_embedding, "use context_tokens or context_pooled")
        if self.warmup_epochs >= self.epochs * self.ipe_scale:
            raise _fail("optimization.warmup_epochs", self.warmup_epochs, "must be shorter than the run (epochs)")
        _range("optimization.ema", self.ema, 0.0, 1.0)
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise _fail("optimization.grad_clip", self.grad_clip, "must be > 0, or null to turn clipping off")
        if self.loss not in ("smooth_l1", "l2"):
            raise _fail("optimization.loss", self.loss, "use smooth_l1 or l2")


@dataclass(frozen=True)
class MethodConfig:
    """Which objective trains the encoder.

    ``ijepa`` (default): the masked prediction of ``mask.*`` with an EMA target (the official
    method). ``lejepa``: LeJEPA's multi-view prediction with SIGReg, no EMA, no predictor
    (``jepa_torch.lejepa``); ``mask.*`` and ``optimization.ema`` are then unused, and the
    data's own augmentation is replaced by these multi-crop views of the un-augmented image.

    Attributes:
        name: ``ijepa`` or ``lejepa``.
        global_views, local_views: LeJEPA's views per image (the global ones form the target).
        global_scale, local_scale: area fractions of their crops.
        local_size: side of a local view in pixels (a multiple of the patch; global views are
            ``data.img_size``).
        rotation: rotate views by up to this many degrees.
        flip: mirror views at random.
        projector_hidden, projector_dim: the projector head's widths (hidden 0: one linear layer).
        sigreg_lambda: ``loss = (1 - lambda) * prediction + lambda * SIGReg``.
    """

    name: Method = "ijepa"
    global_views: int = 2
    local_views: int = 4
    global_scale: tuple[float, float] = (0.3, 1.0)
    local_scale: tuple[float, float] = (0.05, 0.3)
    local_size: int = 16
    rotation: float = 0.0
    flip: bool = False
    projector_hidden: int = 512
    projector_dim: int = 128
    sigreg_lambda: float = 0.05

    def __post_init__(self) -> None:
        if self.name not in ("ijepa", "lejepa"):
            raise _fail("method.name", self.name, "use ijepa or lejepa")
        _positive("method", self, "global_views", "local_size", "projector_dim")
        _non_negative("method", self, "local_views", "rotation", "projector_hidden")
        _range("method.global_scale", self.global_scale, 1e-6, 1.0)
        _range("method.local_scale", self.local_scale, 1e-6, 1.0)
        if not 0.0 <= self.sigreg_lambda <= 1.0:
            raise _fail("method.sigreg_lambda", self.sigreg_lambda, "must be in [0, 1]")


@dataclass(frozen=True)
class RunConfig:
    """Where the run writes, how it runs, how often it logs and saves.

    Attributes:
        out_dir: run folder (config, checkpoints, logs, plots).
        seed: seeds weights, data order, augmentations and masks.
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        precision: ``auto`` (bf16 autocast on CUDA, fp32 on CPU), ``fp32`` or ``bf16``.
        compile: ``torch.compile`` the networks.
        max_steps: stop after this many optimiser steps (None: the whole schedule).
        log_every: steps between log lines (CSV, TensorBoard, progress bar).
        checkpoint_every: steps between checkpoints (a last one is written at the end).
        keep_checkpoints: how many step checkpoints to keep (the newest).
        resume: ``auto`` (the latest checkpoint in out_dir, if any), ``never``, or a path.
        monitor_every: steps between collapse-monitor evaluations (0: off).
        tensorboard: also log to TensorBoard when it is installed.
    """

    out_dir: str = "runs/default"
    seed: int = 0
    device: Device = "auto"
    precision: Precision = "auto"
    compile: bool = False
    max_steps: int | None = None
    log_every: int = 10
    checkpoint_every: int = 200
    keep_checkpoints: int = 3
    resume: str = "auto"
    monitor_every: int = 50
    tensorboard: bool = True

    def __post_init__(self) -> None:
        if self.device not in ("auto", "cpu", "cuda"):
            raise _fail("run.device", self.device, "use auto, cpu or cuda")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise _fail("run.precision", self.precision, "use auto, fp32 or bf16")
        if self.max_steps is not None and self.max_steps < 1:
            raise _fail("run.max_steps", self.max_steps, "must be >= 1, or null for the whole schedule")
        _positive("run", self, "log_every", "checkpoint_every", "keep_checkpoints")
        _non_negative("run", self, "monitor_every")
        if not self.out_dir:
            raise _fail("run.out_dir", self.out_dir, "give a folder for the run")


@dataclass(frozen=True)
class TrainConfig:
    """A whole run: ``method``, ``model``, ``data``, ``mask``, ``optimization``, ``run``."""

    method: MethodConfig = field(default_factory=MethodConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    mask: MaskSection = field(default_factory=MaskSection)
    optimization: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self) -> None:
        heads = get_preset(self.model.preset).num_heads
        if self.model.pred_emb_dim % heads:
            raise _fail("model.pred_emb_dim", self.model.pred_emb_dim,
                        f"must be divisible by {heads}, the heads of {self.model.preset}")
        if self.data.dataset == "sequence":
            if self.method.name == "lejepa":
                raise _fail("method.name", "lejepa", "needs images (its views are image crops); use ijepa for sequences")
            return  # the grid is the sequence length, known once the data is read
        if self.method.name == "lejepa" and self.method.local_views and self.method.local_size % self.model.patch_size:
            raise _fail("method.local_size", self.method.local_size,
                        f"must be a multiple of model.patch_size={self.model.patch_size}")
        if self.data.img_size % self.model.patch_size:
            raise _fail("model.patch_size", self.model.patch_size,
                        f"must divide data.img_size={self.data.img_size}")
        side = self.data.img_size // self.model.patch_size
        try:
            validate_masks((side, side), self.mask.to_mask_config())
        except ValueError as exc:
            raise ConfigError(f"{str(exc).replace('MaskConfig.', 'mask.')} (on the {side}x{side} patch grid)") from None

    def grid(self) -> tuple[int, int]:
        """The patch grid of an image run."""
        side = self.data.img_size // self.model.patch_size
        return side, side
