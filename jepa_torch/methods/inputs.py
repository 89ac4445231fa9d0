"""Step inputs that several methods draw: I-JEPA's masks and the SIGReg directions, from (seed, step, rank)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from jepa_core.mask_schedules import TargetScaleSchedule, config_at
from jepa_core.masks import MaskConfig, sample_masks, sample_masks_1d

from jepa_torch.config.schema import TrainConfig
from jepa_torch.objectives.regularisers import sigreg_directions

__all__ = ["directions_for_step", "masks_for_step"]

_DIRECTIONS = 0x73696772  # stream tag of the SIGReg directions ("sigr")


def masks_for_step(cfg: TrainConfig, mask_cfg: MaskConfig, scale_at: TargetScaleSchedule, grid: tuple[int, int],
                   step: int, global_batch: int, rank: int,
                   device: torch.device) -> tuple[list[Tensor], list[Tensor], list[Tensor] | None]:
    """This rank's slice of the global batch's masks, a pure function of (seed, step).

    The global batch is drawn at once, at the target scale ``scale_at(step)``, from a numpy
    generator seeded by ``(run.seed, step)``; rank ``r`` takes rows ``[r * b, (r + 1) * b)``.

    Returns:
        ``(context masks, target masks, context lengths)``; the lengths are None unless
        ``mask.context_trim`` is ``none`` (then the context rows are padded).
    """
    rng = np.random.default_rng([cfg.run.seed, step, 0x6D61736B])  # the tag spells "mask"
    law = config_at(mask_cfg, scale_at, step)
    if grid[0] == 1:
        batch = sample_masks_1d(grid[1], law, rng, global_batch)
    else:
        batch = sample_masks(grid, law, rng, global_batch)
    share = cfg.data.batch_size * cfg.optimization.accumulate  # this process's rows of the global batch
    lo, hi = rank * share, (rank + 1) * share
    context, targets = (
        [torch.from_numpy(np.ascontiguousarray(m[lo:hi])).to(device, non_blocking=True) for m in masks]
        for masks in (batch.context, batch.targets)
    )
    lengths = None if batch.context_lengths is None else [
        torch.from_numpy(np.ascontiguousarray(n[lo:hi])).to(device, non_blocking=True) for n in batch.context_lengths]
    return context, targets, lengths


def directions_for_step(cfg: TrainConfig, step: int, dim: int, device: torch.device) -> Tensor:
    """The SIGReg directions ``(dim, optimization.sigreg_slices)`` of a step, a pure function of (seed, step)."""
    seed = int(np.random.SeedSequence([cfg.run.seed % 2**64, step, _DIRECTIONS]).generate_state(1)[0])
    return sigreg_directions(dim, cfg.optimization.sigreg_slices, seed, device)
