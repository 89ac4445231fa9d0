"""A training method as one object: everything in which I-JEPA, LeJEPA and the next method differ.

The loop (``jepa_torch.training.loop``), resume, the monitor, evaluation and export know a method only
through :class:`Method`; none of them tests a method's name or class. A method

- builds its networks from the one model config (``jepa_torch.models.jepa.JEPAConfig``), which every
  checkpoint stores under ``model``;
- names its networks as its checkpoints hold them (:meth:`Method.networks`), says which of them the
  optimiser trains (:attr:`Method.trained`) and which holds the encoder to evaluate and export
  (:attr:`Method.encoders`);
- draws a step's inputs (masks, views) from the run's seed, the step and the process's rank alone,
  and runs one step (:class:`Stepper`);
- declares what it runs under (:class:`Supports`), so that a config naming it refuses the rest in
  one line.

A new method is one module that defines such an object and calls ``jepa_torch.methods.register``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor, nn
from torch.distributed.device_mesh import DeviceMesh

from jepa_torch.config.schema import TrainConfig
from jepa_torch.data.datasets import InputSpec
from jepa_torch.models.jepa import JEPAConfig
from jepa_torch.config.plan import Plan
from jepa_torch.methods.step import StepResult

__all__ = ["Method", "RunInfo", "Stepper", "Supports", "encoder_of"]


@dataclass(frozen=True)
class Supports:
    """What a method runs under; a config asking for anything else is refused in one line.

    Attributes:
        ddp: several processes under torchrun, gradients averaged (DistributedDataParallel).
        fsdp: ``run.parallel: fsdp`` (the networks sharded over the processes).
        accumulate: ``optimization.accumulate > 1``.
        compile: ``run.compile``.
        activation_checkpointing: ``run.activation_checkpointing``.
        sequences: ``data.dataset: sequence``.
        images: image data sets (``digits``, ``image_folder``).
        videos: video data sets (``video_folder``, ``moving_digits``).
    """

    ddp: bool = True
    fsdp: bool = False
    accumulate: bool = False
    compile: bool = False
    activation_checkpointing: bool = True
    sequences: bool = False
    images: bool = True
    videos: bool = False


@dataclass(frozen=True)
class RunInfo:
    """What a method's steps see of the run: its config, its lengths, this process and its device."""

    cfg: TrainConfig
    plan: Plan
    device: torch.device
    rank: int
    world_size: int


class Stepper(Protocol):
    """The steps of one run of one method, made by :meth:`Method.stepper` once the networks are placed."""

    def inputs(self, images: Tensor, step: int) -> Any:
        """What :meth:`step` takes for the batch ``images`` (this process's rows) at ``step``.

        Everything random in it (masks, crops) must be a pure function of ``(run.seed, step, rank)``,
        so that a resumed run draws what the uninterrupted one drew.
        """
        ...

    def step(self, forward: nn.Module, optimizer: torch.optim.Optimizer, inputs: Any, step: int) -> StepResult:
        """One optimisation step: forward through ``forward`` (the raw model or its DDP wrapper), the loss,
        backward, the optimiser step (its learning rate and weight decay already set by the loop), then
        the EMA if the method has one. Returns detached losses; must not synchronise with the host."""
        ...

    def logged(self, step: int) -> dict[str, float]:
        """Columns the method adds to the log row of ``step`` (I-JEPA: the EMA momentum); may be empty."""
        ...


class Method(Protocol):
    """One training method: networks, step inputs, step, checkpoint entries, the encoder, what it supports."""

    @property
    def name(self) -> str:
        """``method.name`` in a config, and the ``method`` entry of its checkpoints."""
        ...

    @property
    def title(self) -> str:
        """How reports name it (``I-JEPA``)."""
        ...

    @property
    def supports(self) -> Supports:
        ...

    @property
    def augment(self) -> bool:
        """Whether the data's own augmentation applies (False: the method draws its own views)."""
        ...

    @property
    def trained(self) -> tuple[str, ...]:
        """The entries of :meth:`networks` the optimiser trains, in its order: one or two."""
        ...

    @property
    def encoders(self) -> Mapping[str, str]:
        """``target`` and ``context``: the entry of :meth:`networks` that holds that encoder (may be one entry)."""
        ...

    @property
    def legacy_entries(self) -> Mapping[str, str]:
        """An entry's name in checkpoint formats 1 and 2, where it differs (LeJEPA's projector was ``predictor``)."""
        ...

    def check(self, cfg: TrainConfig) -> None:
        """Raise ``ConfigError`` (one line, naming the key) for an option this method cannot use,
        beyond what :attr:`supports` says."""
        ...

    def model_config(self, cfg: TrainConfig, spec: InputSpec) -> JEPAConfig:
        """The networks' config for a run on data of ``spec`` (``jepa_torch.data.datasets.input_spec``)."""
        ...

    def build(self, config: JEPAConfig) -> nn.Module:
        """The networks of ``config`` at initialisation, from the current torch seed."""
        ...

    def networks(self, model: nn.Module) -> dict[str, nn.Module]:
        """The raw networks of ``model`` by checkpoint entry, each once."""
        ...

    def shard(self, model: nn.Module, mesh: DeviceMesh) -> None:
        """Shard the networks over ``mesh`` in place (``supports.fsdp`` only)."""
        ...

    def prepare_ddp(self, model: nn.Module, device: torch.device) -> None:
        """Whatever the networks need before DDP wraps them (LeJEPA: synchronised batch norm on CUDA)."""
        ...

    def compile(self, model: nn.Module) -> None:
        """``torch.compile`` the networks in place, keeping their state-dict names (``supports.compile`` only)."""
        ...

    def stepper(self, model: nn.Module, run: RunInfo) -> Stepper:
        """The run's steps over ``model`` (raw, placed on ``run.device``)."""
        ...

    def draw_step(self, cfg: TrainConfig, images: Tensor, folder: Path) -> Path:
        """A picture of what one step of ``cfg`` sees of ``images`` ``(n, C, H, W)`` (masks, views), written
        into ``folder``; returns its path."""
        ...


def encoder_of(method: Method, model: nn.Module, which: str = "target") -> nn.Module:
    """The ``target`` or ``context`` encoder of ``model``, as ``method`` names it."""
    return method.networks(model)[method.encoders[which]]
