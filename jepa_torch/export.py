"""Export a trained encoder: safetensors (ours) or the official I-JEPA checkpoint layout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import torch

from .checkpoint import (OFFICIAL_PREFIX, CheckpointError, CheckpointWriteError, infer_vit_config, load_strict,
                         read_official, strip_prefixes)
from .resume import FORMAT_VERSION
from .files import atomic_write
from .vit import TransformerEncoder

__all__ = ["export_encoder", "load_encoder"]

Which = Literal["target", "context"]
Format = Literal["safetensors", "official"]
_KEYS: dict[str, str] = {"target": "target_encoder", "context": "encoder"}


def export_encoder(checkpoint: str | Path, out: str | Path, *, which: Which = "target",
                   fmt: Format = "safetensors") -> Path:
    """Write one encoder of a checkpoint (ours or official) for downstream use.

    Args:
        checkpoint: a training checkpoint of this project or an official ``.pth.tar``.
        out: the file to write.
        which: ``target`` (the EMA encoder, which I-JEPA evaluates) or ``context``.
        fmt: ``safetensors`` (the encoder's tensors, with the run config as metadata) or
            ``official`` (``encoder``/``predictor``/``target_encoder`` with the official trainer's
            ``module.`` keys, ``epoch``, and from a training checkpoint of this version its official-layout
            ``opt`` and ``scaler``, so the official trainer can resume from the file).

    Returns:
        The written path.
    """
    if which not in _KEYS:
        raise CheckpointError(f"which={which!r}: use target or context")
    ckpt = read_official(Path(checkpoint))
    key = _KEYS[which]
    if key not in ckpt:
        raise CheckpointError(f"{checkpoint}: has no {key!r} state dict; not an I-JEPA checkpoint")
    dest = Path(out)
    if fmt == "safetensors":
        from safetensors.torch import save

        tensors = {k: v.detach().cpu().contiguous() for k, v in strip_prefixes(ckpt[key]).items()}
        meta = {"format": "jepa-torch-encoder", "which": which, "step": str(ckpt.get("step", "")),
                "config": json.dumps(ckpt.get("config", {}))}
        atomic_write(dest, lambda f: f.write(save(tensors, metadata=meta)), error=CheckpointWriteError)
    elif fmt == "official":
        missing = [k for k in ("encoder", "predictor", "target_encoder") if k not in ckpt]
        if missing:
            raise CheckpointError(f"{checkpoint}: has no {missing[0]!r}; cannot write the official layout")
        payload: dict[str, Any] = {k: {OFFICIAL_PREFIX + name: v for name, v in strip_prefixes(ckpt[k]).items()}
                                   for k in ("encoder", "predictor", "target_encoder")}
        payload["epoch"] = ckpt.get("epoch", 0)
        if ckpt.get("format_version") == FORMAT_VERSION:  # its opt is in the official layout: resumable there
            payload.update({k: ckpt[k] for k in ("opt", "scaler", "loss", "batch_size", "world_size", "lr") if k in ckpt})
        atomic_write(dest, lambda f: torch.save(payload, f), error=CheckpointWriteError)
    else:
        raise CheckpointError(f"format {fmt!r}: use safetensors or official")
    return dest


def load_encoder(path: str | Path, *, which: Which = "target", num_heads: int | None = None) -> TransformerEncoder:
    """Build and strictly load an encoder from a safetensors export, a training checkpoint or an
    official checkpoint; the architecture is inferred from the tensor shapes."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state = load_file(str(path))
        except (SafetensorError, OSError) as exc:
            raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from exc
    else:
        ckpt = read_official(path)
        if _KEYS[which] not in ckpt:
            raise CheckpointError(f"{path}: has no {_KEYS[which]!r} state dict")
        state = strip_prefixes(ckpt[_KEYS[which]])
    encoder = infer_vit_config(state, num_heads=num_heads).build()
    load_strict(encoder, state, f"{path.name}")
    return encoder.eval()
