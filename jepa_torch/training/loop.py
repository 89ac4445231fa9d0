"""The training loop: devices, torchrun/DDP, exact resume, logging, checkpoints, NaN guard.

Everything a step depends on is a pure function of the run's seed and the step:
the data order (of the seed and epoch), each sample's augmentation (of the seed,
epoch and sample index), the masks (of the seed and step) and every schedule (of
the step). A checkpoint therefore needs only the weights, the optimiser state and
the step, and a resumed run repeats the uninterrupted run's losses bit for bit (on
the same device and thread count).

Under torchrun each process takes a contiguous share of every global batch, the
masks of the global batch are drawn once and sliced, and DDP (or, with
``run.parallel: fsdp``, FSDP2, which also shards the networks, their optimiser state and the
EMA target) averages gradients: ``N`` processes at batch ``b`` compute what one process
computes at batch ``N * b``. Rank 0 alone writes files.

The loop knows no method: ``method.name`` names one of ``jepa_torch.methods``, which builds the
networks, names their checkpoint entries, draws each step's inputs (masks, views)
from (seed, step, rank) and runs the step; the loop places the networks, schedules the learning rate
and weight decay, reads the losses, logs, monitors and saves.
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from jepa_core.schedules import CosineWeightDecay, WarmupCosineLR

from jepa_torch.io.checkpoint import CheckpointError, UnreadableCheckpoint
from jepa_torch.config.schema import ConfigError, TrainConfig
from jepa_torch.config.yaml_io import config_to_dict, save_config
from jepa_torch.data.datasets import EpochBatches, InputSpec, build_dataset, input_spec, make_loader
from jepa_torch.data.video import VideoSplit
from jepa_torch.models.sharding import held, is_sharded, mesh_for
from jepa_torch.methods import Method, RunInfo, encoder_of, get_method
from jepa_torch.evaluation.monitor import FixedBatchMonitor
from jepa_torch.training.optim import apply_schedules, make_optimizer
from jepa_torch.config.plan import Plan, make_plan
from jepa_torch.training.runlog import RunLogger
from jepa_torch.training.resume import (
    ResumeState,
    checkpoint_path,
    last_verified_checkpoint,
    list_checkpoints,
    load_training_checkpoint,
    prune_checkpoints,
    remove_stale_temporaries,
    save_training_checkpoint,
    set_rng_state,
)
from jepa_torch.methods.step import precision_note

__all__ = ["Plan", "TrainingDiverged", "TrainingSummary", "build_model", "make_plan", "train"]

log = logging.getLogger(__name__)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message names the step and the last good checkpoint."""


@dataclass(frozen=True)
class TrainingSummary:
    """What a finished run reports."""

    out_dir: Path
    steps: int
    resumed_from: int
    last_checkpoint: Path | None
    losses: list[tuple[int, float]]
    images_per_s: float
    rank: int = 0
    """This process's rank: under torchrun every process returns a summary; rank 0's speaks for the job."""


@dataclass(frozen=True)
class _Dist:
    rank: int
    world_size: int
    device: torch.device
    owns_group: bool = False  # the process group was made here, so it is torn down here

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _setup(cfg: TrainConfig) -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    want = cfg.run.device
    if want == "cuda" and not torch.cuda.is_available():
        raise ConfigError("run.device='cuda': no CUDA device is visible; use run.device=cpu or auto")
    use_cuda = want == "cuda" or (want == "auto" and torch.cuda.is_available())
    device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    owns = world > 1 and not dist.is_initialized()
    if owns:
        dist.init_process_group("nccl" if use_cuda else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    return _Dist(rank, world, device, owns)


def _last_good(folder: Path, last_ckpt: Path | None) -> str:
    """How a failure message names the checkpoint to go back to: the newest one whose digest verifies."""
    good = last_verified_checkpoint(folder, last_ckpt)
    return str(good) if good is not None else "none (no checkpoint that verifies was written yet)"


def _read_losses(pending: list[Tensor], step: int, folder: Path, last_ckpt: Path | None) -> list[tuple[int, float]]:
    """``(step, loss)`` of the pending device losses (ending at ``step``), emptied; a non-finite one stops the run.

    Raises:
        TrainingDiverged: naming the first step whose loss is NaN or infinite and the last good checkpoint
            (read back and verified against its digest now, not assumed).
    """
    values = torch.stack(pending).tolist()
    pending.clear()
    first = step - len(values) + 1
    for i, value in enumerate(values):
        if not math.isfinite(value):
            raise TrainingDiverged(
                f"loss is {value} at step {first + i}; the last good checkpoint is {_last_good(folder, last_ckpt)}; "
                "lower optimization.lr, set optimization.grad_clip, or resume from it")
    return [(first + i, value) for i, value in enumerate(values)]


def _save_checkpoint(folder: Path, step: int, loss: float, method: Method, model: nn.Module,
                     optimizer: torch.optim.Optimizer, env: _Dist, plan: Plan, cfg: TrainConfig, config: dict[str, Any],
                     last_ckpt: Path | None, arch: dict[str, Any]) -> Path:
    """Write the checkpoint of ``step`` (the main process; every process checks the weights first).

    Under FSDP every process takes part (the shards are gathered) and each checks its own shards.

    Raises:
        TrainingDiverged: a weight is not finite; nothing is written and the last good checkpoint stays.
    """
    networks = method.networks(model)
    named = [(f"{entry}.{n}", p) for entry in method.trained for n, p in networks[entry].named_parameters()]
    bad = [n for n, p in named if not bool(torch.isfinite(held(p)).all())]
    sharded = is_sharded(model)
    if env.world_size > 1 and sharded:  # each process saw its shards only: agree before gathering
        count = torch.tensor([len(bad)], device=env.device)
        dist.all_reduce(count)
        if count.item() and not bad:
            bad = ["a parameter shard of another process"]
    if bad:
        raise TrainingDiverged(
            f"weights are not finite at step {step} (first: {bad[0]}); not saving them; the last good "
            f"checkpoint is {_last_good(folder, last_ckpt)}")
    path = checkpoint_path(folder, step)
    if env.is_main or sharded:
        save_training_checkpoint(
            path, networks=networks, trained=method.trained, optimizer=optimizer, step=step,
            epoch=step // plan.iterations_per_epoch, config=config, global_batch=plan.global_batch,
            world_size=env.world_size, loss=loss, method=method.name, model=arch, encoders=method.encoders,
            write=env.is_main)
    if env.is_main:
        prune_checkpoints(folder, cfg.run.keep_checkpoints)
    return path


def _header(cfg: TrainConfig, train_size: int, holdout_size: int, plan: Plan, env: _Dist, start: int,
            resume_from: Path | None) -> str:
    """The run's first line: what trains, on what, how long, where, and from where it resumes."""
    d = cfg.data
    what = d.dataset if d.path is None else f"{d.dataset} {d.path}"
    unit = "sequences" if d.dataset == "sequence" else "videos" if cfg.is_video else "images"
    precision = precision_note(env.device, cfg.run.precision)
    where = f"{env.device.type} x {env.world_size} processes" if env.world_size > 1 else str(env.device)
    line = (f"{cfg.method.name} on {what}: {train_size} training and {holdout_size} held-out {unit}; "
            f"{plan.run_steps} steps of {plan.global_batch}; {where}, {precision}; writing to {cfg.run.out_dir}")
    if resume_from is not None:
        line += f"; resuming from step {start} ({resume_from})"
    return line


def build_model(cfg: TrainConfig, spec: InputSpec) -> tuple[nn.Module, dict[str, Any]]:
    """The run's networks at initialisation (from the current torch seed) and their model config
    (``JEPAConfig.to_dict()``, the checkpoints' ``model``), as the run's method builds them."""
    method = get_method(cfg.method.name)
    config = method.model_config(cfg, spec)
    return method.build(config), config.to_dict()


def _resume_candidates(cfg: TrainConfig, folder: Path) -> list[Path]:
    if cfg.run.resume == "never":
        return []
    if cfg.run.resume != "auto":
        path = Path(cfg.run.resume)
        if not path.is_file():
            raise CheckpointError(f"run.resume={cfg.run.resume!r}: no such checkpoint file; give a path, auto or never")
        return [path]
    return [path for _, path in reversed(list_checkpoints(folder))]


def _load_resume(cfg: TrainConfig, folder: Path, method: Method, model: nn.Module, optimizer: torch.optim.Optimizer,
                 arch: dict[str, Any]) -> tuple[Path, ResumeState] | None:
    """Load the checkpoint to resume from into the model and optimiser.

    With ``run.resume=auto`` an unreadable newest file (truncated, corrupt) is skipped with a
    one-line warning and the next newer one is tried; a readable file that does not fit still stops
    the run. A named file (``run.resume=<path>``) must load.
    """
    candidates = _resume_candidates(cfg, folder)
    for path in candidates:
        try:
            state = load_training_checkpoint(path, networks=method.networks(model), trained=method.trained,
                                             optimizer=optimizer, legacy_entries=method.legacy_entries, model=arch)
        except UnreadableCheckpoint as exc:
            if cfg.run.resume != "auto":
                raise
            log.warning("run.resume=auto: %s; falling back to the previous checkpoint", exc)
            continue
        return path, state
    if candidates and cfg.run.resume == "auto":
        raise CheckpointError(f"run.resume=auto: no checkpoint in {folder} is readable (newest: {candidates[0].name}); "
                              "move them away to start again, or give run.resume=<path>")
    return None


def train(cfg: TrainConfig, *, progress: bool = True,
          on_log: Callable[[dict[str, float]], None] | None = None) -> TrainingSummary:
    """Train (or resume) the run described by ``cfg``; returns when the run's steps are done.

    Raises:
        ConfigError, CheckpointError, DataError: bad input, one line each.
        TrainingDiverged: a NaN or infinite loss (nothing is written after it).
    """
    method = get_method(cfg.method.name)
    env = _setup(cfg)
    try:
        return _train(cfg, method, env, progress, on_log)
    finally:
        # On every way out (done, a one-line error, a NaN, Ctrl-C): a process group left to the interpreter's
        # exit can abort a rank after its work is done ("terminate called without an active exception").
        if env.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def _train(cfg: TrainConfig, method: Method, env: _Dist, progress: bool,
           on_log: Callable[[dict[str, float]], None] | None) -> TrainingSummary:
    if env.world_size > 1 and not method.supports.ddp:
        raise ConfigError(f"method.name={method.name!r}: does not run on several processes; run it on one")
    out = Path(cfg.run.out_dir)
    ckpt_dir = out / "checkpoints"
    torch.manual_seed(cfg.run.seed)
    random.seed(cfg.run.seed)
    np.random.seed(cfg.run.seed % 2**32)

    dataset = build_dataset(cfg, augment=method.augment)
    cached = dataset.cache(cfg.data.cache_mb) if cfg.data.cache_mb and isinstance(dataset, VideoSplit) else None
    model, arch = build_model(cfg, input_spec(dataset))  # arch, the checkpoints' `model`: every loader builds from it
    if env.world_size > 1 and cfg.run.parallel == "fsdp":
        # Built whole in host memory, it reaches the device one unit at a time and keeps only this process's
        # shards there. Before the optimiser, which must see the sharded parameters.
        method.shard(model, mesh_for(env.device, env.world_size))
    model.to(env.device)
    sharded = is_sharded(model)
    networks = method.networks(model)
    opt_cfg = cfg.optimization
    optimizer = make_optimizer([networks[name] for name in method.trained], lr=opt_cfg.start_lr,
                               weight_decay=opt_cfg.weight_decay)
    plan = make_plan(cfg, len(dataset), env.world_size)
    lr_at = WarmupCosineLR(opt_cfg.start_lr, opt_cfg.lr, opt_cfg.final_lr, plan.warmup_steps, plan.schedule_steps)
    wd_at = CosineWeightDecay(opt_cfg.weight_decay, opt_cfg.final_weight_decay, plan.schedule_steps)
    steps = method.stepper(model, RunInfo(cfg, plan, env.device, env.rank, env.world_size))

    if env.is_main:
        remove_stale_temporaries(ckpt_dir)  # left by a kill during a checkpoint write; nothing writes yet
    start = 0
    resumed = _load_resume(cfg, ckpt_dir, method, model, optimizer, arch)
    resume_from = None if resumed is None else resumed[0]
    if resumed is not None:
        state = resumed[1]
        if state.global_batch != plan.global_batch:
            raise CheckpointError(
                f"{resume_from} was trained with a global batch of {state.global_batch} "
                f"(per-process batch x processes x optimization.accumulate), this run has {plan.global_batch}; the "
                "schedules and data order depend on it: set data.batch_size="
                f"{state.global_batch // (env.world_size * cfg.optimization.accumulate)} or start a new "
                "run (run.resume=never, or another run.out_dir)")
        start = state.step
        set_rng_state(state.rng)
    if cfg.run.activation_checkpointing:
        for name in method.trained:  # every transformer of a trained network keeps only its blocks' inputs
            for module in networks[name].modules():
                if hasattr(module, "recompute"):
                    setattr(module, "recompute", True)
    if cfg.run.compile:
        method.compile(model)  # in place: state-dict names and the optimiser's parameters are unchanged
    # The raw modules stay as built (EMA, monitor and checkpoints read them); a step runs `forward`.
    forward: nn.Module = model
    if env.world_size > 1 and not sharded:
        ddp_args: dict[str, Any] = {"device_ids": [env.device.index]} if env.device.type == "cuda" else {}
        method.prepare_ddp(model, env.device)
        forward = DistributedDataParallel(model, **ddp_args)

    holdout = build_dataset(cfg, "holdout", augment=False)  # empty when data.holdout_fraction is 0
    if env.is_main:  # the config, the data and the checkpoint resumed from are valid: only now is anything written
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        log.info(_header(cfg, len(dataset), len(holdout), plan, env, start, resume_from))
        if cached is not None:
            log.info(cached)
        if cfg.run.monitor_every and (dataset.labels is None or not len(holdout)):
            why = ("data.holdout_fraction=0 holds out nothing to score on" if not len(holdout)
                   else "the data has no labels (no class subfolders, or one)")
            log.info("note: %s, so the online probe is off; RankMe and feature std still run", why)
    logger = RunLogger(out, start, tensorboard=cfg.run.tensorboard, total_steps=plan.run_steps,
                       progress=progress) if env.is_main else None
    # A sharded target encoder's forward is a collective: then every process runs the monitor; rank 0 logs it.
    monitor = (FixedBatchMonitor(build_dataset(cfg, "train", augment=False), env.device, warn_after=plan.warmup_steps,
                                 holdout=holdout if len(holdout) else None, speak=env.is_main)
               if (env.is_main or sharded) and cfg.run.monitor_every else None)
    evaluated = encoder_of(method, model, "target")
    if env.is_main:
        save_config(cfg, out / "config.yaml")
    config_dict = config_to_dict(cfg)
    batches = EpochBatches(len(dataset), plan.global_batch, cfg.run.seed)
    losses: list[tuple[int, float]] = []
    last_ckpt: Path | None = resume_from
    step = start
    window_start, window_steps = time.perf_counter(), 0
    throughput = 0.0

    pending: list[Tensor] = []  # this process's detached losses since the last read, on the device

    try:
        while step < plan.run_steps:
            epoch, first = divmod(step, plan.iterations_per_epoch)
            order = batches.indices(epoch, first, env.rank, env.world_size)
            for images in make_loader(dataset, order, cfg.data.num_workers, cfg.run.seed, epoch):
                images = images.to(env.device, non_blocking=True)
                lr, wd = lr_at(step), wd_at(step)
                apply_schedules(optimizer, lr, wd)
                result = steps.step(forward, optimizer, steps.inputs(images, step), step)
                loss = result.loss.detach()
                if env.world_size > 1:
                    loss = loss.clone()
                    dist.all_reduce(loss)  # a collective on the device, not a host sync
                    loss /= env.world_size
                pending.append(loss)
                step += 1
                window_steps += 1
                log_now = step % cfg.run.log_every == 0 or step == plan.run_steps
                checkpoint_now = step % cfg.run.checkpoint_every == 0 or step == plan.run_steps
                if log_now or checkpoint_now:
                    # The loop's one host sync: the losses since the last read, each checked before anything
                    # is logged or saved (a NaN between reads only costs the steps up to the next read).
                    done = _read_losses(pending, step, ckpt_dir, last_ckpt)
                    losses.extend(done)
                    value = done[-1][1]
                if log_now:
                    now = time.perf_counter()
                    throughput = window_steps * plan.global_batch / max(now - window_start, 1e-9)
                    window_start, window_steps = now, 0
                    row = {"step": float(step), "epoch": float(epoch), "loss": value,
                           "prediction_loss": float(result.prediction_loss), "regulariser": float(result.regulariser),
                           "lr": lr, "weight_decay": wd, "images_per_s": throughput, **steps.logged(step - 1)}
                    if monitor is not None and (step % cfg.run.monitor_every == 0 or step == plan.run_steps):
                        row.update(monitor.measure(evaluated, step))
                    if logger is not None:
                        logger.log(row)
                    if on_log is not None:
                        on_log(row)
                elif logger is not None:
                    logger.tick()
                if checkpoint_now:
                    last_ckpt = _save_checkpoint(ckpt_dir, step, value, method, model, optimizer, env, plan, cfg,
                                                 config_dict, last_ckpt, arch)
                if step >= plan.run_steps:
                    break
    finally:
        if logger is not None:
            logger.close()
    if env.is_main and logger is not None:
        logger.plot(out / "curves.png")
    if dist.is_initialized():
        dist.barrier()
    return TrainingSummary(out, step, start, last_ckpt, losses, throughput, env.rank)
