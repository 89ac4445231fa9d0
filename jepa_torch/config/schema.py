"""The training configuration: typed frozen dataclasses, validated on construction.

A run is described by one :class:`TrainConfig` with five sections. Every field has a
default, so a YAML file names only what it changes. Values are checked once, here, and a
bad one raises :class:`ConfigError` naming the key (``optimization.lr``) and the fix.
Loading YAML, ``--set`` overrides and the official I-JEPA YAML layout live in
``jepa_torch.config.yaml_io``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Literal

from jepa_core.mask_schedules import TargetScaleSchedule
from jepa_core.masks import OFFICIAL_FLAGS, ContextTrim, MaskConfig
from jepa_core.masks import validate as validate_masks
from jepa_core.video_masks import VIDEO_OFFICIAL_FLAGS, VideoMaskConfig, validate_video
from jepa_core.presets import VIT_PRESETS, canonical_preset, get_preset
from jepa_core.representation import LossKind, check_loss_kind

__all__ = [
    "ConfigError",
    "DataConfig",
    "MaskSection",
    "MethodConfig",
    "ModelConfig",
    "OptimConfig",
    "RunConfig",
    "TrainConfig",
    "check_precision",
    "check_step_options",
    "known_methods",
    "register_method_check",
]

Dataset = Literal["digits", "image_folder", "sequence", "video_folder", "moving_digits", "video_frames"]
VIDEO_DATASETS = ("video_folder", "moving_digits")
ClipSampling = Literal["random", "uniform"]
VideoPositions = Literal["rope", "sincos"]
SigregEmbedding = Literal["context_tokens", "context_pooled"]
Device = Literal["auto", "cpu", "cuda"]
Precision = Literal["auto", "fp32", "bf16"]
Parallel = Literal["ddp", "fsdp"]

PRESETS = tuple(VIT_PRESETS)


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names the key and the fix."""


MethodCheck = Callable[["TrainConfig"], None]
_METHOD_CHECKS: dict[str, MethodCheck] = {}


def register_method_check(name: str, check: MethodCheck) -> None:
    """Accept ``method.name=name`` from now on, and run ``check`` on every config that names it.

    The methods registry (``jepa_torch.methods.register``) calls this: the config knows which
    methods exist and what each refuses without importing any of them. ``check`` raises
    :class:`ConfigError` for an option the method does not support.
    """
    _METHOD_CHECKS[name] = check


def known_methods() -> tuple[str, ...]:
    """The registered method names, sorted."""
    return tuple(sorted(_METHOD_CHECKS))


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


def check_step_options(section: str, options: object) -> None:
    """The rules of the options a training step reads (``loss``, ``var_weight``, ``cov_weight``,
    ``sigreg_weight``, ``sigreg_embedding``, ``grad_clip``), stated once for the config's
    ``optimization`` section and for ``jepa_torch.methods.step.StepConfig``.

    Raises:
        ConfigError: naming ``<section>.<option>`` and the fix.
    """
    _non_negative(section, options, "var_weight", "cov_weight", "sigreg_weight")
    embedding = getattr(options, "sigreg_embedding")
    if embedding not in ("context_tokens", "context_pooled"):
        raise _fail(f"{section}.sigreg_embedding", embedding, "use context_tokens or context_pooled")
    clip = getattr(options, "grad_clip")
    if clip is not None and not clip > 0:
        raise _fail(f"{section}.grad_clip", clip, "must be > 0, or null to turn clipping off")
    try:
        check_loss_kind(getattr(options, "loss"), f"{section}.loss")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def check_precision(key: str, precision: object) -> None:
    """``precision`` is one of :data:`Precision`'s values; else :class:`ConfigError` naming ``key``."""
    if precision not in ("auto", "fp32", "bf16"):
        raise _fail(key, precision, "use auto, fp32 or bf16")


def _range(key: str, value: tuple[float, float], low: float, high: float) -> None:
    if len(value) != 2 or not low <= value[0] <= value[1] <= high:
        raise _fail(key, value, f"must be [low, high] with {low} <= low <= high <= {high}")


@dataclass(frozen=True)
class ModelConfig:
    """The networks.

    Attributes:
        preset: encoder size, ``vit_tiny`` .. ``vit_giant`` (official widths and depths); ``tiny`` ..
            ``giant`` are read as the official names.
        depth: encoder blocks, overriding the preset's (None: the preset's).
        patch_size: patch side in pixels (images) - ignored for sequences.
        pred_depth: predictor blocks.
        pred_emb_dim: predictor width; must be divisible by the preset's heads.
        depth_rescale: keep the residual-projection depth rescaling at init (the official
            training overwrites it, so False reproduces official runs).
        tubelet_size: video only: frames per tubelet (V-JEPA's 2).
        positions: video only: ``rope`` (V-JEPA 2's 3-D RoPE) or ``sincos`` (V-JEPA 1's fixed 3-D table).
    """

    preset: str = "vit_tiny"
    depth: int | None = None
    patch_size: int = 4
    pred_depth: int = 6
    pred_emb_dim: int = 96
    depth_rescale: bool = False
    tubelet_size: int = 2
    positions: VideoPositions = "rope"

    def __post_init__(self) -> None:
        if self.positions not in ("rope", "sincos"):
            raise _fail("model.positions", self.positions, "use rope or sincos")
        try:
            official = canonical_preset(self.preset) if isinstance(self.preset, str) else ""
        except ValueError:
            official = ""
        if not official:
            raise _fail("model.preset", self.preset, f"use one of {', '.join(PRESETS)} (or tiny .. giant)")
        object.__setattr__(self, "preset", official)  # one spelling from here on
        _positive("model", self, "patch_size", "pred_depth", "pred_emb_dim", "tubelet_size")
        if self.depth is not None and self.depth < 1:
            raise _fail("model.depth", self.depth, "must be >= 1, or null for the preset's depth")


@dataclass(frozen=True)
class DataConfig:
    """Where images (or sequences) come from and how they are augmented.

    Attributes:
        dataset: ``digits`` (scikit-learn's bundled 8x8 digits, upsampled; offline),
            ``image_folder`` (a folder of images at ``path``: ``<path>/<class>/<image>`` with labels, or
            ``<path>/<image>`` without), or ``sequence`` (a ``.npy`` file of shape ``(N, T, input_dim)``
            at ``path``), ``video_folder`` (videos at ``path``: ``<path>/<class>/<video>``, files or
            folders of frames, or a ``labels.csv``; ``jepa_torch.data.video``) or ``moving_digits``
            (the bundled video set, written once from the digits; ``jepa_torch.data.moving_digits``), or
            ``video_frames`` (the frames of the video folder at ``path`` as images, one drawn per video and
            epoch: what a frame-wise image encoder trains on).
            Left out (null), it is read from ``path``: none gives digits, a ``.npy`` file a sequence,
            anything else an image folder.
        path: the folder or file (a leading ``~`` is the home folder); digits take none, and a path
            given beside them is refused; moving digits are written there (default: a folder under
            ``$JEPA_DATA``).
        img_size: the square crop side fed to the encoder (official ``crop_size``).
        crop_scale: random-resized-crop area range (official ``(0.3, 1.0)``).
        horizontal_flip, color_jitter, gaussian_blur: the official augmentations;
            ``color_jitter`` is the strength, 0 turns it off.
        batch_size: per-process batch size.
        num_workers: DataLoader worker processes.
        cache_mb: video only: MiB of decoded frames a run keeps in memory (0: none). The training split's
            videos are decoded once, before the first step, up to this size, and every clip (or frame) is
            cut from memory: the same batches, without decoding each sample (the moving digits' training
            split takes 152 MiB). Each process (and not each worker) holds its own copy.
        holdout_fraction: share of the data never trained on, kept for evaluation.
        frames_per_clip, frame_step: video only: a clip is ``frames_per_clip`` frames, ``frame_step``
            apart.
        clip_sampling: video only: where a training clip starts: ``random`` (uniform over the video)
            or ``uniform`` (its middle).
        label: video only: which labels the probes and the online probe read (a column of the
            folder's ``labels.csv``; moving digits: ``digit`` or ``direction``); null: the first.
    """

    dataset: Dataset | None = None
    path: str | None = None
    img_size: int = 32
    crop_scale: tuple[float, float] = (0.3, 1.0)
    horizontal_flip: bool = False
    color_jitter: float = 0.0
    gaussian_blur: bool = False
    batch_size: int = 64
    num_workers: int = 0
    cache_mb: int = 0
    holdout_fraction: float = 0.2
    frames_per_clip: int = 16
    frame_step: int = 4
    clip_sampling: ClipSampling = "random"
    label: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.path, str) and self.path.startswith("~"):  # a shell leaves ~ in --set data.path=~/x
            object.__setattr__(self, "path", os.path.expanduser(self.path))
        if self.dataset is None:  # one spelling from here on: the dataset the path names
            inferred = "digits" if not self.path else "sequence" if self.path.endswith(".npy") else "image_folder"
            object.__setattr__(self, "dataset", inferred)
        if self.dataset not in ("digits", "image_folder", "sequence", "video_frames", *VIDEO_DATASETS):
            raise _fail("data.dataset", self.dataset,
                        "use digits, image_folder, sequence, video_folder, moving_digits or video_frames")
        if self.dataset not in ("digits", "moving_digits") and not self.path:
            raise _fail("data.path", self.path, f"dataset {self.dataset} needs a path")
        if self.dataset == "digits" and self.path:
            raise _fail("data.path", self.path, "data.dataset=digits reads the bundled digits and ignores a path; "
                        "set data.dataset=image_folder (or sequence for a .npy file) to train on it")
        _positive("data", self, "img_size", "batch_size", "frames_per_clip", "frame_step")
        if self.clip_sampling not in ("random", "uniform"):
            raise _fail("data.clip_sampling", self.clip_sampling, "use random or uniform")
        _range("data.crop_scale", self.crop_scale, 1e-6, 1.0)
        _non_negative("data", self, "color_jitter", "num_workers", "cache_mb")
        if self.cache_mb and self.dataset not in ("video_frames", *VIDEO_DATASETS):
            raise _fail("data.cache_mb", self.cache_mb, f"keeps decoded videos; data.dataset={self.dataset} has "
                        "none, so set it to 0")
        if not 0.0 <= self.holdout_fraction < 1.0:
            raise _fail("data.holdout_fraction", self.holdout_fraction, "must be in [0, 1)")


@dataclass(frozen=True)
class MaskSection:
    """The multi-block masks: the sampler's law, its official mode, and the target-scale schedule.

    The keys ``num_targets`` .. ``allow_overlap`` are the fields of ``jepa_core.masks.MaskConfig``
    of the same names and defaults (see it for each); :meth:`to_mask_config` passes them on as
    they are, so ``min_keep`` is the sampler's bound (the context keeps ``>= min_keep`` patches)
    in both modes. The official flags (``jepa_core.masks.OFFICIAL_FLAGS``) are one key,
    ``official_compatible``.

    Attributes:
        context_trim: ``batch_min`` (official: contexts cut to the batch's shortest) or ``none``
            (whole contexts, padded, the padding masked out of attention; see
            ``jepa_core.masks.MaskConfig.context_trim``). Independent of ``official_compatible``.
        official_compatible: turn every official flag on: the official sampler's distribution,
            defects included, but ``min_keep`` keeps its ``>=`` meaning (docs/fidelity.md, row f).
        final_target_scale: the target scale range at the end of the schedules; both bounds move
            linearly from ``target_scale`` to it over the run's schedule steps, as the learning
            rate moves to ``optimization.final_lr``. None: ``target_scale`` throughout (official).
        target_scale_warmup_epochs: epochs held at ``target_scale`` before the move starts
            (unused while ``final_target_scale`` is None).
        video_blocks, video_spatial_scale: video only: the mask configurations, one per entry
            (``jepa_core.video_masks.VideoMaskConfig``): ``video_blocks[i]`` boxes, each covering
            ``video_spatial_scale[i]`` of a frame. V-JEPA 2's are 8 of 0.15 and 2 of 0.7. The boxes'
            aspect is ``target_aspect``, their contexts keep ``min_keep`` tokens, ``context_trim`` and
            ``official_compatible`` apply as for images.
        video_temporal_scale: video only: the share of the clip's tubelets a box spans (1: all).
        video_context_frames: video only: the context lies in this first share of the clip (1: all).
    """

    num_targets: int = 4
    target_scale: tuple[float, float] = (0.15, 0.2)
    target_aspect: tuple[float, float] = (0.75, 1.5)
    num_context: int = 1
    context_scale: tuple[float, float] = (0.85, 1.0)
    context_aspect: tuple[float, float] = (1.0, 1.0)
    min_keep: int = 10
    allow_overlap: bool = False
    context_trim: ContextTrim = "batch_min"
    official_compatible: bool = False
    final_target_scale: tuple[float, float] | None = None
    target_scale_warmup_epochs: float = 0.0
    video_blocks: tuple[int, ...] = (8, 2)
    video_spatial_scale: tuple[float, ...] = (0.15, 0.7)
    video_temporal_scale: tuple[float, float] = (1.0, 1.0)
    video_context_frames: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.official_compatible, bool):
            raise _fail("mask.official_compatible", self.official_compatible, "must be true or false")
        try:
            self.to_mask_config()
        except ValueError as exc:
            raise ConfigError(str(exc).replace("MaskConfig.", "mask.")) from None
        end = self.final_target_scale
        if end is not None and not (len(end) == 2 and 0.0 < end[0] <= end[1] <= 1.0):
            raise _fail("mask.final_target_scale", end,
                        "must be [low, high] with 0 < low <= high <= 1, or null for a fixed target_scale")
        _non_negative("mask", self, "target_scale_warmup_epochs")
        if not self.video_blocks or len(self.video_blocks) != len(self.video_spatial_scale):
            raise _fail("mask.video_blocks", self.video_blocks,
                        f"give one entry per entry of mask.video_spatial_scale={self.video_spatial_scale!r}")
        self.to_video_configs()

    def to_video_configs(self) -> tuple[VideoMaskConfig, ...]:
        """The video mask configurations, one per entry of ``video_blocks``.

        Raises:
            ConfigError: naming the ``mask.`` key.
        """
        names = {"num_blocks": "video_blocks", "spatial_scale": "video_spatial_scale", "aspect": "target_aspect",
                 "temporal_scale": "video_temporal_scale", "context_frames": "video_context_frames",
                 "trim": "context_trim"}
        try:
            return tuple(VideoMaskConfig(
                num_blocks=blocks, spatial_scale=(scale, scale), temporal_scale=self.video_temporal_scale,
                aspect=self.target_aspect, context_frames=self.video_context_frames, min_keep=self.min_keep,
                trim=self.context_trim, **dict.fromkeys(VIDEO_OFFICIAL_FLAGS, self.official_compatible))
                for blocks, scale in zip(self.video_blocks, self.video_spatial_scale, strict=True))
        except (ValueError, TypeError) as exc:
            text = str(exc)
            for field_name, key in names.items():
                text = text.replace(f"VideoMaskConfig.{field_name}=", f"mask.{key}: one entry is ")
            raise ConfigError(text) from None

    def check_video_grid(self, grid: tuple[int, int, int]) -> None:
        """Refuse video mask configurations that are impossible on the ``(T, H, W)`` tubelet grid, in one line."""
        for i, config in enumerate(self.to_video_configs()):
            try:
                validate_video(grid, config)
            except ValueError as exc:
                raise ConfigError(f"mask.video_blocks[{i}]: {str(exc).replace('VideoMaskConfig.', '')} (on the "
                                  f"{grid[0]}x{grid[1]}x{grid[2]} tubelet grid)") from None

    def to_mask_config(self) -> MaskConfig:
        """The sampler's config at ``target_scale`` (the start of the schedule)."""
        law = {f.name: getattr(self, f.name) for f in fields(MaskConfig) if f.name not in OFFICIAL_FLAGS}
        return MaskConfig(**{**law, **dict.fromkeys(OFFICIAL_FLAGS, self.official_compatible)})

    def target_scale_schedule(self, steps_per_epoch: int, total_steps: int) -> TargetScaleSchedule:
        """The target scale range at each step, over a run whose schedules last ``total_steps``.

        Constant at ``target_scale`` when ``final_target_scale`` is None. The warm-up is
        ``int(target_scale_warmup_epochs * steps_per_epoch)`` steps, as the learning rate's.
        """
        total = max(1, total_steps)
        warmup = min(int(self.target_scale_warmup_epochs * steps_per_epoch), total - 1)
        end = self.target_scale if self.final_target_scale is None else self.final_target_scale
        return TargetScaleSchedule(self.target_scale, end, total, warmup)

    def check_grid(self, grid: tuple[int, int]) -> None:
        """Refuse masks that are impossible on ``grid`` at the start or at the end of the schedule.

        Raises:
            ConfigError: one line naming ``mask.<key>`` and the grid.
        """
        where = f"on the {grid[0]}x{grid[1]} patch grid"
        start = self.to_mask_config()
        try:
            validate_masks(grid, start)
        except ValueError as exc:
            raise ConfigError(f"{str(exc).replace('MaskConfig.', 'mask.')} ({where})") from None
        if self.final_target_scale is not None:
            try:
                validate_masks(grid, replace(start, target_scale=self.final_target_scale))
            except ValueError as exc:
                raise _fail("mask.final_target_scale", self.final_target_scale,
                            f"the masks at the end of the schedule are impossible {where} ({exc})") from None


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
        loss: ``smooth_l1`` (official I-JEPA), ``l2`` or ``l1`` (official V-JEPA).
        var_weight, cov_weight: VICReg variance / covariance terms on the context tokens (0: off).
        sigreg_weight: I-JEPA only: weight of SIGReg added to the prediction loss (0: off).
        sigreg_embedding: I-JEPA only: what SIGReg shapes: ``context_tokens`` (every context token of
            every sample, ``(Mx*B*Kc, D)``) or ``context_pooled`` (each sample's context tokens
            averaged, ``(Mx*B, D)``); docs/evaluation.md compares them.
        sigreg_slices: SIGReg's number of random directions per step (both methods).
        sigreg_knots: SIGReg's integration points, evenly over ``[-5, 5]`` (both methods).
        accumulate: I-JEPA only: micro-batches per optimiser step. Each process then takes
            ``data.batch_size x accumulate`` images per step (the global batch, its data order, masks
            and schedules are those of that larger batch) and runs them ``data.batch_size`` at a time,
            adding the gradients before one optimiser step and one EMA update. The prediction loss and
            its gradients equal the large batch's; VICReg and SIGReg, statistics of a batch, are then
            computed per micro-batch and averaged.
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
    accumulate: int = 1

    def __post_init__(self) -> None:
        _positive("optimization", self, "epochs", "ipe_scale", "sigreg_slices", "accumulate")
        _non_negative("optimization", self, "warmup_epochs", "start_lr", "lr", "final_lr", "weight_decay",
                      "final_weight_decay")
        check_step_options("optimization", self)
        if self.sigreg_knots < 2:
            raise _fail("optimization.sigreg_knots", self.sigreg_knots, "must be >= 2 (points over [-5, 5])")
        if self.warmup_epochs >= self.epochs * self.ipe_scale:
            raise _fail("optimization.warmup_epochs", self.warmup_epochs, "must be shorter than the run (epochs)")
        _range("optimization.ema", self.ema, 0.0, 1.0)


@dataclass(frozen=True)
class MethodConfig:
    """Which objective trains the encoder.

    ``name`` is a registered method (``jepa_torch.methods``): ``ijepa`` (default), the masked
    prediction of ``mask.*`` with an EMA target (the official method), or ``lejepa``, LeJEPA's
    multi-view prediction with SIGReg, no EMA, no predictor; ``mask.*`` and ``optimization.ema``
    are then unused, and the data's own augmentation is replaced by these multi-crop views of the
    un-augmented image; or ``vjepa``, V-JEPA's masked prediction on videos with the 3-D masks of
    ``mask.video_*``. Each method checks the options it does not support when a config names it.

    Attributes:
        name: a registered method, ``ijepa``, ``lejepa`` or ``vjepa`` out of the box.
        global_views, local_views: LeJEPA's views per image (the global ones form the target).
        global_scale, local_scale: area fractions of their crops.
        local_size: side of a local view in pixels (a multiple of the patch; global views are
            ``data.img_size``).
        rotation: rotate views by up to this many degrees.
        flip: mirror views at random.
        projector_hidden, projector_dim: the projector head's widths (hidden 0: one linear layer).
        sigreg_lambda: ``loss = (1 - lambda) * prediction + lambda * SIGReg``.
    """

    name: str = "ijepa"
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
        if self.name not in _METHOD_CHECKS:
            raise _fail("method.name", self.name, f"use one of {', '.join(known_methods())}")
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
        parallel: how several processes (torchrun) share the work: ``ddp`` (each holds the whole
            networks and optimiser state, gradients are averaged) or ``fsdp`` (FSDP2: each holds
            ``1 / N`` of every parameter, gradient, optimiser state and of the EMA target, which is
            updated shard by shard; ``jepa_torch.models.sharding``). The same losses either way; one process
            ignores it.
        activation_checkpointing: keep only each block's input of the context encoder and the
            predictor for the backward and recompute the block there (less memory, about a third
            more time; the same values and gradients).
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
    parallel: Parallel = "ddp"
    activation_checkpointing: bool = False
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
        check_precision("run.precision", self.precision)
        if self.parallel not in ("ddp", "fsdp"):
            raise _fail("run.parallel", self.parallel, "use ddp or fsdp")
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
        if self.mask.final_target_scale is not None and (
                self.mask.target_scale_warmup_epochs >= self.optimization.epochs * self.optimization.ipe_scale):
            raise _fail("mask.target_scale_warmup_epochs", self.mask.target_scale_warmup_epochs,
                        "must be shorter than the run (optimization.epochs)")
        if self.data.dataset != "sequence":  # a sequence's grid is its length, known once the data is read
            if self.data.img_size % self.model.patch_size:
                raise _fail("model.patch_size", self.model.patch_size,
                            f"must divide data.img_size={self.data.img_size}")
            if self.is_video and self.data.frames_per_clip % self.model.tubelet_size:
                raise _fail("model.tubelet_size", self.model.tubelet_size,
                            f"must divide data.frames_per_clip={self.data.frames_per_clip}")
        # what the method does not support, and its masks on the grid (I-JEPA's, V-JEPA's), in one line
        _METHOD_CHECKS[self.method.name](self)

    @property
    def is_video(self) -> bool:
        """Whether the run trains on videos (``data.dataset`` is a video set)."""
        return self.data.dataset in VIDEO_DATASETS

    def video_grid(self) -> tuple[int, int, int]:
        """The tubelet grid ``(T, H, W)`` of a video run."""
        side = self.data.img_size // self.model.patch_size
        return self.data.frames_per_clip // self.model.tubelet_size, side, side

    def grid(self) -> tuple[int, int]:
        """The patch grid of an image run."""
        side = self.data.img_size // self.model.patch_size
        return side, side
