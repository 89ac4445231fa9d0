"""Training checkpoints: atomic writes, the last K kept, exact resume.

A training checkpoint (format 3) holds each of the method's networks under the name the method gives
it (``jepa_torch.methods``), with ``module.`` keys; an I-JEPA checkpoint is therefore an official-layout
file, written as the official trainer writes its own and readable by its resume: ``encoder``,
``predictor``, ``target_encoder``, ``opt`` in the official optimiser's four-group layout
(``jepa_torch.training.optim.to_official_optimizer_state``; a method that trains one network has empty second
groups), ``scaler`` (a fresh gradient scaler's state, which its bf16 resume loads), ``epoch`` (completed
epochs, where its resume restarts), ``loss``, ``batch_size``, ``world_size``, ``lr``; another method's
networks are held in the same way under its own names. Beside those every checkpoint says what it holds:
``method`` (its name), ``model`` (the one model config, ``jepa_torch.models.jepa.JEPAConfig``, which every
loader builds from), ``encoders`` (``{"target": entry, "context": entry}``: where the encoder to evaluate
and export is), and what an exact resume needs: the step, the resolved config, the global batch and
world size, and the RNG states of torch, numpy and python.

Files of format 2 (I-JEPA's three names for every method; ``Method.legacy_entries`` maps a method's
names onto them) and 1 (bare keys, ``opt`` in our two-group layout) still load (docs/training.md).
Files are ``<out_dir>/checkpoints/step_00000100.pt``, written through a temporary file,
fsync and rename: a crash never leaves a half-written file under a checkpoint's name.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from jepa_torch.io.checkpoint import (FORMAT_VERSION, OFFICIAL_OPT_FORMATS, CheckpointError, atomic_save, load_strict,
                                      network_payload, read_official, unwrap, verify_digest)
from jepa_torch.models.sharding import gather_full, shard_optimizer_state
from jepa_torch.training.optim import from_official_optimizer_state, to_official_optimizer_state

__all__ = [
    "FORMAT_VERSION",
    "OFFICIAL_OPT_FORMATS",
    "ResumeState",
    "checkpoint_path",
    "last_verified_checkpoint",
    "list_checkpoints",
    "load_training_checkpoint",
    "prune_checkpoints",
    "remove_stale_temporaries",
    "rng_state",
    "save_training_checkpoint",
    "set_rng_state",
]



# A gradient scaler's state as ``torch.amp.GradScaler()`` starts (init_scale 2**16): the official trainer
# loads ``scaler`` whenever it trains in bf16, and would drop the whole resume on a None.
FRESH_SCALER = {"scale": 65536.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 2000,
                "_growth_tracker": 0}
_NAME = re.compile(r"^step_(\d{8,})\.pt$")
_TEMPORARY = re.compile(r"^\.step_\d{8,}\.pt\..+\.tmp$")  # checkpoint.atomic_save's temporary files


def checkpoint_path(folder: Path, step: int) -> Path:
    """``folder/step_<step>.pt`` (zero-padded, so names sort by step)."""
    return folder / f"step_{step:08d}.pt"


def list_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of the checkpoints in ``folder``, oldest first (temporary files ignored)."""
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return sorted(found)


def last_verified_checkpoint(folder: Path, first: Path | None = None) -> Path | None:
    """The newest checkpoint that reads and matches its digest: ``first`` if it does, else the newest in ``folder``.

    Each candidate is read whole and its digest recomputed, so call this where a message is about to
    name "the last good checkpoint" (a failed run), not on every step. A file without a digest is not
    verified and not returned.
    """
    candidates = [] if first is None else [first]
    candidates += [p for _, p in reversed(list_checkpoints(folder)) if p != first]
    for path in candidates:
        try:
            if verify_digest(read_official(path), path):
                return path
        except CheckpointError:
            continue
    return None


def prune_checkpoints(folder: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints."""
    for _, path in list_checkpoints(folder)[:-keep]:
        path.unlink(missing_ok=True)


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the temporary files of checkpoint writes a crash interrupted; returns their paths.

    Call it only where no write is under way: at the start of the one run that owns ``folder``.
    """
    if not folder.is_dir():
        return []
    stale = sorted(p for p in folder.iterdir() if _TEMPORARY.match(p.name))
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def rng_state() -> dict[str, Any]:
    """The RNG states of torch (CPU and CUDA), numpy and python, in weights-only-loadable types."""
    np_state = cast(tuple[Any, ...], np.random.get_state())
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].copy()), *np_state[2:]],
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved."""
    torch.set_rng_state(state["torch"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy(), *rest))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _pair(networks: Mapping[str, nn.Module], trained: Sequence[str]) -> tuple[nn.Module, nn.Module]:
    """The trained networks (raw) as the optimiser layout's two slots; a lone network gets an empty second."""
    raw = [unwrap(networks[name]) for name in trained]
    if not 1 <= len(raw) <= 2:
        raise ValueError(f"trained={tuple(trained)}: one or two networks")
    return raw[0], raw[1] if len(raw) == 2 else nn.Module()


def save_training_checkpoint(
    path: Path,
    *,
    networks: Mapping[str, nn.Module],
    trained: Sequence[str],
    optimizer: torch.optim.Optimizer,
    step: int,
    epoch: int,
    config: dict[str, Any],
    global_batch: int,
    world_size: int,
    loss: float,
    method: str,
    model: dict[str, Any],
    encoders: Mapping[str, str],
    write: bool = True,
) -> None:
    """Write one training checkpoint atomically (see the module docstring for its layout).

    Args:
        networks: the method's networks by entry name (``Method.networks``).
        trained: the entries the optimiser trains, in its order.
        method: the method's name.
        model: the networks' one config (``JEPAConfig.to_dict()``), so that a reader builds the
            architecture without inferring it (heads included).
        encoders: ``target`` and ``context`` -> the entry that holds that encoder.

    Sharded networks (``jepa_torch.models.sharding``) are written whole, in the same layout: every process
    calls this function (the gathering is a collective) and the one with ``write`` writes the file.
    """
    first, second = _pair(networks, trained)
    states = {**network_payload(networks), "opt": to_official_optimizer_state(optimizer, first, second)}
    whole = gather_full(states, keep=write)
    if not write:
        return
    atomic_save({
        **whole, "scaler": dict(FRESH_SCALER), "epoch": epoch, "loss": loss, "batch_size": global_batch // world_size,
        "world_size": world_size, "lr": optimizer.param_groups[0]["lr"], "step": step, "global_batch": global_batch,
        "config": config, "rng": rng_state(), "format_version": FORMAT_VERSION, "method": method, "model": model,
        "encoders": dict(encoders),
    }, path)


def _first_difference(stored: Any, wanted: Any, where: str = "model") -> str:
    """``"<key path>: <stored> in the file, <wanted> here"`` for the first value that differs; empty if none."""
    if isinstance(stored, Mapping) and isinstance(wanted, Mapping):
        for key in sorted(set(stored) | set(wanted)):
            found = _first_difference(stored.get(key), wanted.get(key), f"{where}.{key}")
            if found:
                return found
        return ""
    same = list(stored) == list(wanted) if isinstance(stored, (list, tuple)) and isinstance(wanted, (list, tuple)) \
        else stored == wanted  # a tuple written to a file reads back as a list
    return "" if same else f"{where}: {stored!r} in the file, {wanted!r} here"


@dataclass(frozen=True)
class ResumeState:
    """What a loaded checkpoint tells the loop."""

    step: int
    global_batch: int
    world_size: int
    config: dict[str, Any]
    rng: dict[str, Any]


def load_training_checkpoint(
    path: Path,
    *,
    networks: Mapping[str, nn.Module],
    trained: Sequence[str],
    optimizer: torch.optim.Optimizer | None,
    legacy_entries: Mapping[str, str] | None = None,
    model: Mapping[str, Any] | None = None,
) -> ResumeState:
    """Load a training checkpoint into the named networks (strictly) and the optimiser.

    Sharded modules and their optimiser (``jepa_torch.models.sharding``) load the same whole file: each process
    keeps its shards, so a run resumes on any number of processes.

    Args:
        networks, trained: as :func:`save_training_checkpoint`.
        optimizer: over the trained networks, or None to load the weights only.
        legacy_entries: an entry's name in formats 1 and 2 where it differs (``Method.legacy_entries``).
        model: the model config the networks were built from (``JEPAConfig.to_dict()``); a file that stores
            another is refused in one line naming the first field that differs.

    Raises:
        CheckpointError: the file is unreadable, not a training checkpoint of a format this version
            reads, of another method, or of another architecture (the error names the first key that
            does not fit).
    """
    ckpt = read_official(path)
    version = ckpt.get("format_version")
    if version not in (1, 2, FORMAT_VERSION):
        raise CheckpointError(f"{path}: checkpoint format {version!r}, this version reads 1 to {FORMAT_VERSION}")
    stored = {name: name if version == FORMAT_VERSION else (legacy_entries or {}).get(name, name) for name in networks}
    missing = [k for k in (*stored.values(), "opt", "step", "config", "rng", "global_batch", "world_size")
               if k not in ckpt]
    if missing:
        held = f"a {ckpt['method']} checkpoint, " if "method" in ckpt else ""
        raise CheckpointError(f"{path}: {held}no {missing[0]!r} entry, which this run needs; resume a checkpoint of "
                              "the same method, or start official weights with load_official")
    if model is not None and "model" in ckpt:
        differs = _first_difference(dict(ckpt["model"]), dict(model))
        if differs:
            raise CheckpointError(f"{path}: was trained with another model ({differs}); resume with the config that "
                                  "made it (config.yaml in its run folder), or start a new run (run.resume=never)")
    for name, module in networks.items():
        load_strict(module, ckpt[stored[name]], f"{path.name}: {name}")
    if optimizer is not None:
        try:
            opt = ckpt["opt"]
            if version != 1:
                opt = from_official_optimizer_state(opt, optimizer, *_pair(networks, trained))
            optimizer.load_state_dict(shard_optimizer_state(opt, optimizer))
        except (ValueError, KeyError) as exc:
            raise CheckpointError(f"{path}: optimizer state does not fit this model ({exc})") from exc
    return ResumeState(int(ckpt["step"]), int(ckpt["global_batch"]), int(ckpt["world_size"]),
                       dict(ckpt["config"]), dict(ckpt["rng"]))
