"""Fully sharded data parallel (FSDP2, ``torch.distributed.fsdp.fully_shard``) for the three I-JEPA networks.

Each process keeps ``1 / N`` of every parameter, gradient and AdamW state, and of the EMA target
encoder too: the target is sharded exactly as the context encoder (same mesh, same row split), so
the EMA runs shard by shard on local tensors with no communication. A network gathers one block's
parameters at a time for its forward and backward, and frees them after.

    shard(model, mesh)            each block, then each network, becomes one FSDP unit
    gather_full(tree, keep=...)   a state dict (or an optimiser's) of DTensors -> whole tensors
    shard_like(value, param)      a whole tensor -> the shard this process holds of ``param``

Checkpoints stay whole and in the official layout: every process takes part in the gathering,
the main one writes, and any process count (one included) reads the file back, sharding what it
loads. N processes at batch ``b`` compute what one process computes at batch ``N * b``, as under
DDP: gradients are averaged by the reduce-scatter.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

import torch
from torch import Tensor, nn
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh
from torch.distributed.fsdp import FSDPModule, fully_shard
from torch.distributed.tensor import DTensor, distribute_tensor


class ThreeNetworks(Protocol):
    """A model of a context encoder, a predictor and a target encoder (I-JEPA's ``JEPA``, V-JEPA's ``VJEPA``)."""

    @property
    def encoder(self) -> nn.Module: ...

    @property
    def predictor(self) -> nn.Module: ...

    @property
    def target_encoder(self) -> nn.Module: ...


M = TypeVar("M", bound=ThreeNetworks)

__all__ = ["gather_full", "held", "is_sharded", "local_bytes", "mesh_for", "reshard", "shard", "shard_like",
           "shard_optimizer_state"]


def mesh_for(device: torch.device, world_size: int) -> DeviceMesh:
    """The one-dimensional mesh of all processes on ``device``'s kind (the process group must exist)."""
    return init_device_mesh(device.type, (world_size,))


def _blocks(network: nn.Module) -> list[nn.Module]:
    for name in ("blocks", "predictor_blocks"):
        found = getattr(network, name, None)
        if isinstance(found, nn.ModuleList):
            return list(found)
    raise TypeError(f"{type(network).__name__} has no 'blocks' or 'predictor_blocks' to shard")


def shard(model: M, mesh: DeviceMesh) -> M:
    """Shard the context encoder, predictor and target encoder of ``model`` in place; returns ``model``.

    Every transformer block is its own unit (its parameters are gathered for its forward, freed
    after, gathered again for its backward), then each network's remaining parameters (patch and
    position embeddings, final norm, predictor embedding and projection) form the network's unit.
    Parameter names, and so state-dict keys, are unchanged. The target encoder, which has no
    backward, frees its gathered parameters after its forward, like every block.

    Call it before building the optimiser (which must see the sharded parameters). A model still in
    host memory moves to ``mesh``'s device one unit at a time, each unit whole and then cut to its
    shard: a GPU never holds more than its shards and one whole unit.
    """
    # The predictor's output is a view (of its projection's matmul); FSDP warns that an in-place op on it
    # would skip a hook. The loss reads predictions out of place only, so that warning never applies here.
    warnings.filterwarnings("ignore", message=r"FSDP2-wrapped module \(FSDPPredictor\) returned a view tensor",
                            category=UserWarning)
    for network in (model.encoder, model.predictor, model.target_encoder):
        for block in _blocks(network):
            fully_shard(block, mesh=mesh)
        fully_shard(network, mesh=mesh, reshard_after_forward=True)
    return model


def is_sharded(module: nn.Module) -> bool:
    """Whether any parameter of ``module`` is a DTensor (``module`` or a part of it went through :func:`shard`)."""
    return any(isinstance(p, DTensor) for p in module.parameters())


def reshard(*modules: nn.Module) -> None:
    """Free the gathered parameters of every FSDP unit in ``modules`` (no-op for those already sharded)."""
    for module in modules:
        for sub in module.modules():
            if isinstance(sub, FSDPModule):
                sub.reshard()


def gather_full(tree: Any, *, keep: bool = True) -> Any:
    """``tree`` with every DTensor replaced by the whole tensor, on the CPU.

    A collective: every process calls it with trees of the same structure (state dicts of the same
    modules and optimiser), in the same order. Only where ``keep`` is true are the whole tensors
    kept (the process that writes the file); elsewhere each one is dropped once gathered and the
    result holds None in its place, so no process but the writer holds more than one whole tensor.
    Mappings, lists and tuples are walked; other values are returned as they are.
    """
    if isinstance(tree, DTensor):
        whole = tree.full_tensor()
        return whole.cpu() if keep else None
    if isinstance(tree, Mapping):
        return {k: gather_full(v, keep=keep) for k, v in tree.items()}
    if isinstance(tree, list | tuple):
        return type(tree)(gather_full(v, keep=keep) for v in tree)
    return tree


def shard_like(value: Tensor, param: Tensor) -> Tensor:
    """``value``, a whole tensor of ``param``'s shape, as ``param`` is held: its shard when ``param`` is a DTensor.

    Every process passes the same whole ``value`` (each read the same file) and keeps its own rows:
    nothing is sent between processes.
    """
    if not isinstance(param, DTensor):
        return value
    if tuple(value.shape) != tuple(param.shape):
        raise ValueError(f"a whole tensor of shape {tuple(value.shape)} for a parameter of shape {tuple(param.shape)}")
    local = value.to(device=param.device, dtype=param.dtype)
    return distribute_tensor(local, param.device_mesh, param.placements, src_data_rank=None)


def shard_optimizer_state(state_dict: Mapping[str, Any], optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """An optimiser state dict of whole tensors (as :func:`gather_full` makes them), sharded as ``optimizer``'s parameters.

    Each parameter's state tensors of the parameter's shape (AdamW's moments) become this
    process's shard; scalars (``step``) are left whole. The result loads with
    ``optimizer.load_state_dict``.
    """
    params = [p for group in optimizer.param_groups for p in group["params"]]
    state: dict[int, dict[str, Any]] = {}
    for index, entries in state_dict["state"].items():
        param = params[int(index)]
        state[index] = {key: shard_like(v, param) if isinstance(v, Tensor) and v.shape == param.shape and v.ndim
                        else v for key, v in entries.items()}
    return {**state_dict, "state": state}


def held(t: Tensor) -> Tensor:
    """What this process holds of ``t``, detached: its local shard of a DTensor, or ``t`` itself.

    It shares ``t``'s storage, so an in-place update of it updates ``t``.
    """
    t = t.detach()
    return t.to_local() if isinstance(t, DTensor) else t


def local_bytes(*tensors: Tensor) -> int:
    """Bytes this process holds of ``tensors`` (its shards of DTensors, the whole of others)."""
    return sum(held(t).numel() * held(t).element_size() for t in tensors)
