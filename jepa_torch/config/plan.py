"""A run's lengths in optimiser steps, from its config and the size of its training split."""

from __future__ import annotations

from dataclasses import dataclass

from jepa_torch.config.schema import ConfigError, TrainConfig

__all__ = ["Plan", "make_plan"]


@dataclass(frozen=True)
class Plan:
    """Lengths of a run, in optimiser steps."""

    iterations_per_epoch: int
    schedule_steps: int  # the schedules' length: epochs * ipe * ipe_scale
    run_steps: int  # where this run stops: epochs * ipe, or run.max_steps
    warmup_steps: int
    global_batch: int


def make_plan(cfg: TrainConfig, num_samples: int, world_size: int) -> Plan:
    """Steps per epoch and the run's lengths; one line naming the fix when the data is too small."""
    global_batch = cfg.data.batch_size * world_size * cfg.optimization.accumulate
    ipe = num_samples // global_batch
    if ipe < 1:
        raise ConfigError(f"data.batch_size={cfg.data.batch_size}: the training split has {num_samples} samples, "
                          f"fewer than one global batch of {global_batch}; lower data.batch_size")
    opt = cfg.optimization
    schedule_steps = int(ipe * opt.epochs * opt.ipe_scale)
    run_steps = ipe * opt.epochs if cfg.run.max_steps is None else min(cfg.run.max_steps, ipe * opt.epochs)
    return Plan(ipe, schedule_steps, run_steps, int(opt.warmup_epochs * ipe), global_batch)
