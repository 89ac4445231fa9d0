"""The mask collate: a DataLoader ``collate_fn`` that adds multi-block masks to a batch.

Masks are drawn by :mod:`jepa_core.masks` (numpy) and handed to the models as the
official I-JEPA index tensors. Seeding is reproducible across worker processes:
each batch's generator is seeded from ``(seed, rank, epoch, worker id, batch
number within the worker)``, never from a shared counter whose order depends on
process scheduling (the official collator's ``multiprocessing.Value``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import default_collate, get_worker_info

from jepa_core.masks import Grid, MaskConfig, sample_masks, validate

__all__ = ["MaskCollator"]

MaskedBatch = tuple[Any, list[torch.Tensor], list[torch.Tensor]]


class MaskCollator:
    """Collate samples and draw their masks: ``(batch, context_masks, target_masks)``.

    A plain picklable object (no closures): each DataLoader worker gets a copy.
    Call :meth:`set_epoch` before iterating each epoch (as with
    ``DistributedSampler``), otherwise every epoch repeats the same masks; the
    state to checkpoint for resuming is :meth:`state_dict` (the seed and epoch).
    The sequence of masks depends on ``num_workers`` and the batch order, so a
    reproducible run keeps those fixed. With ``persistent_workers=True`` the
    workers keep the epoch they started with; do not combine it with
    :meth:`set_epoch`.

    Args:
        grid: the ``(H, W)`` patch grid (``(1, L)`` for sequences).
        config: the mask law; validated against ``grid`` here, so an impossible
            config fails at construction with a one-line ``ValueError``.
        seed: the base seed of the run.
        rank: the distributed rank, so ranks draw different masks.
    """

    def __init__(self, grid: Grid, config: MaskConfig, seed: int = 0, rank: int = 0) -> None:
        validate(grid, config)
        self.grid, self.config, self.seed, self.rank = (int(grid[0]), int(grid[1])), config, int(seed), int(rank)
        self.epoch = 0
        self._calls = 0  # batches drawn by this copy (one per worker process)

    def set_epoch(self, epoch: int) -> None:
        """Start ``epoch``: masks of epoch ``e`` differ from those of every other epoch."""
        self.epoch, self._calls = int(epoch), 0

    def state_dict(self) -> dict[str, int]:
        """What a checkpoint must store to resume the mask stream at an epoch boundary."""
        return {"seed": self.seed, "epoch": self.epoch, "rank": self.rank}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Restore :meth:`state_dict`; the next iteration redraws that epoch's masks."""
        self.seed, self.rank = int(state["seed"]), int(state["rank"])
        self.set_epoch(int(state["epoch"]))

    def generator(self, worker_id: int, batch_number: int) -> np.random.Generator:
        """The generator of one batch: a pure function of the run's state and the batch's place."""
        key = [self.seed, self.rank, self.epoch, worker_id, batch_number]
        return np.random.default_rng(np.random.SeedSequence(key))

    def __call__(self, samples: Sequence[Any]) -> MaskedBatch:
        """Collate ``samples`` and draw masks for them.

        Returns:
            ``(batch, context_masks, target_masks)``: ``batch`` is
            ``default_collate(samples)``; each mask is a LongTensor ``(B, K)`` of
            patch indices in raster order, one per context / target block.
        """
        info = get_worker_info()
        worker_id = 0 if info is None else info.id
        rng = self.generator(worker_id, self._calls)
        self._calls += 1
        masks = sample_masks(self.grid, self.config, rng, len(samples))
        context = [torch.from_numpy(m) for m in masks.context]  # each (B, Kc) int64
        targets = [torch.from_numpy(m) for m in masks.targets]  # each (B, Kt) int64
        return default_collate(list(samples)), context, targets
