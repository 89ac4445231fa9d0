"""The methods by name: ``register`` one, ``get_method`` it back; a config naming none is refused.

Registering a method also tells the config (``jepa_torch.config.schema.register_method_check``) that the name
exists and what it refuses, so ``TrainConfig(method=MethodConfig(name=...))`` checks the options against
the method's :class:`~jepa_torch.methods.base.Supports` at construction, in one line.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from os import PathLike
from typing import Any

from torch import nn

from jepa_torch.io.checkpoint import CheckpointError, load_official, load_strict, read_official
from jepa_torch.config.schema import ConfigError, TrainConfig, known_methods, register_method_check
from jepa_torch.models.jepa import JEPA, JEPAConfig
from jepa_torch.methods.base import Method

__all__ = ["get_method", "load_model", "method_names", "register"]

_METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    """Make ``method`` available as ``method.name: <its name>``; returns it. A second registration of a
    name replaces the first."""
    _METHODS[method.name] = method
    register_method_check(method.name, partial(_check, method))
    return method


def get_method(name: str) -> Method:
    """The registered method called ``name``.

    Raises:
        ConfigError: no such method, naming the registered ones.
    """
    try:
        return _METHODS[name]
    except KeyError:
        raise ConfigError(f"method.name={name!r}: use one of {', '.join(known_methods())}") from None


def method_names() -> tuple[str, ...]:
    """The registered names, sorted."""
    return tuple(sorted(_METHODS))


def _refuse(key: str, value: object, method: Method, what: str, fix: str) -> ConfigError:
    return ConfigError(f"{key}={value!r}: method {method.name} does not support {what}; {fix}")


def _check(method: Method, cfg: TrainConfig) -> None:
    """What ``cfg`` asks of ``method`` beyond its :attr:`~Method.supports`, refused in one line."""
    can = method.supports
    if cfg.run.parallel == "fsdp" and not can.fsdp:
        raise _refuse("run.parallel", "fsdp", method, "sharded networks", "use run.parallel=ddp")
    if cfg.optimization.accumulate != 1 and not can.accumulate:
        raise _refuse("optimization.accumulate", cfg.optimization.accumulate, method, "gradient accumulation",
                      "use 1")
    if cfg.run.compile and not can.compile:
        raise _refuse("run.compile", True, method, "torch.compile", "set run.compile=false")
    if cfg.run.activation_checkpointing and not can.activation_checkpointing:
        raise _refuse("run.activation_checkpointing", True, method, "activation checkpointing",
                      "set run.activation_checkpointing=false")
    if cfg.data.dataset == "sequence" and not can.sequences:
        raise _refuse("data.dataset", "sequence", method, "sequences", "give it images")
    if cfg.is_video and not can.videos:
        raise _refuse("data.dataset", cfg.data.dataset, method, "videos", "use method.name=vjepa")
    if cfg.data.dataset in ("digits", "image_folder") and not can.images:
        raise _refuse("data.dataset", cfg.data.dataset, method, "images",
                      "give it videos (data.dataset=video_folder or moving_digits)")
    method.check(cfg)


def load_model(source: str | PathLike[str] | Mapping[str, Any], **official: Any) -> tuple[str, nn.Module]:
    """The whole model of a checkpoint and its method's name, in eval mode.

    A checkpoint of ours that names its method (format 3) is built by that method from its stored model
    config and every network is loaded strictly (LeJEPA: its encoder and projector). Any other file (an
    official I-JEPA checkpoint, ours before format 3) is read as I-JEPA's three networks
    (``jepa_torch.io.checkpoint.load_official``, which takes ``official``'s options).

    Raises:
        CheckpointError: unreadable, corrupt, or a network that does not fit, in one line.
        ConfigError: the file's method is not registered in this process.
    """
    ckpt = read_official(source)
    if "method" not in ckpt or "model" not in ckpt:
        return "ijepa", JEPA(*load_official(ckpt, **official)).eval()
    method = get_method(str(ckpt["method"]))
    try:
        model = method.build(JEPAConfig.from_dict(ckpt["model"]))
    except ValueError as exc:
        raise CheckpointError(f"checkpoint entry 'model': {exc}") from None
    for name, network in method.networks(model).items():
        load_strict(network, ckpt[name], name)
    return method.name, model.eval()
