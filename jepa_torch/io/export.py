"""Export a trained encoder: safetensors (ours) or the official I-JEPA checkpoint layout.

Which entry of a checkpoint holds the ``target`` or ``context`` encoder is read from the file: our
checkpoints (format 3) say it (``encoders``) and carry the model config the encoder is built from
(``model``); official files and older ones of ours hold ``target_encoder`` and ``encoder``, and their
architecture is inferred from the tensors.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from jepa_torch.io.checkpoint import (DIGEST_KEY, OFFICIAL_OPT_FORMATS, OFFICIAL_PREFIX, CheckpointError,
                                      CheckpointWriteError, CorruptCheckpoint, atomic_save, infer_vit_config,
                                      load_strict, payload_digest, read_official, strip_prefixes)
from jepa_torch.models.jepa import JEPAConfig, make_encoder
from jepa_torch.io.files import atomic_write
from jepa_torch.models.video import VideoTransformer
from jepa_torch.models.vit import TransformerEncoder

__all__ = ["encoder_entry", "export_encoder", "load_encoder"]

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
    ckpt = read_official(Path(checkpoint))
    key = encoder_entry(ckpt, which, str(checkpoint))
    dest = Path(out)
    if fmt == "safetensors":
        from safetensors.torch import save

        tensors = {k: v.detach().cpu().contiguous() for k, v in strip_prefixes(ckpt[key]).items()}
        meta = {"format": "jepa-torch-encoder", "which": which, "step": str(ckpt.get("step", "")),
                "config": json.dumps(ckpt.get("config", {})), DIGEST_KEY: payload_digest(tensors)}
        if "model" in ckpt:  # the encoder's shape, so that load_encoder builds it without inferring
            meta["model"] = json.dumps(ckpt["model"])
        atomic_write(dest, lambda f: f.write(save(tensors, metadata=meta)), error=CheckpointWriteError)
    elif fmt == "official":
        missing = [k for k in ("encoder", "predictor", "target_encoder") if k not in ckpt]
        if missing:
            held = f"a {ckpt['method']} checkpoint" if "method" in ckpt else "it"
            raise CheckpointError(f"{checkpoint}: {held} has no {missing[0]!r}, so it has no official I-JEPA layout; "
                                  "export its encoder with --format safetensors")
        payload: dict[str, Any] = {k: {OFFICIAL_PREFIX + name: v for name, v in strip_prefixes(ckpt[k]).items()}
                                   for k in ("encoder", "predictor", "target_encoder")}
        payload["epoch"] = ckpt.get("epoch", 0)
        if ckpt.get("format_version") in OFFICIAL_OPT_FORMATS:  # its opt is in the official layout: resumable there
            payload.update({k: ckpt[k] for k in ("opt", "scaler", "loss", "batch_size", "world_size", "lr") if k in ckpt})
        atomic_save(payload, dest)
    else:
        raise CheckpointError(f"format {fmt!r}: use safetensors or official")
    return dest


def _read_safetensors(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """The tensors and metadata of a safetensors export, verified against the digest in its metadata when it
    has one."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from exc
    stored = meta.get(DIGEST_KEY)
    if stored is not None and payload_digest(state) != stored:
        raise CorruptCheckpoint(f"{path}: corrupt: its tensors do not match the digest written with them (a changed "
                                "byte); export the encoder again")
    return state, meta


def encoder_entry(ckpt: Mapping[str, Any], which: str, name: str = "checkpoint") -> str:
    """The entry of ``ckpt`` that holds its ``target`` or ``context`` encoder (as the file says, for ours).

    Raises:
        CheckpointError: ``which`` is neither, or the file has no such entry.
    """
    if which not in _KEYS:
        raise CheckpointError(f"which={which!r}: use target or context")
    stored = ckpt.get("encoders")
    key = str(stored[which]) if isinstance(stored, Mapping) and which in stored else _KEYS[which]
    if key not in ckpt:
        raise CheckpointError(f"{name}: has no {key!r} state dict, so no {which} encoder; not a JEPA checkpoint")
    return key


def load_encoder(source: str | Path | Mapping[str, Any], *, which: Which = "target",
                 num_heads: int | None = None) -> TransformerEncoder | VideoTransformer:
    """Build and strictly load an encoder from a safetensors export, a training checkpoint or an
    official checkpoint (a path, or a checkpoint dict already read). A checkpoint of ours is built from
    its model config (``model``); otherwise the architecture is inferred from the tensor shapes. A file
    with a digest is verified first."""
    name = "checkpoint" if isinstance(source, Mapping) else Path(source).name
    if not isinstance(source, Mapping) and Path(source).suffix == ".safetensors":
        state, meta = _read_safetensors(Path(source))
        model = json.loads(meta["model"]) if "model" in meta else None
    else:
        ckpt = read_official(source if isinstance(source, Mapping) else Path(source))
        state = strip_prefixes(ckpt[encoder_entry(ckpt, which, name)])
        model = ckpt.get("model")
    config = None
    if model is not None and num_heads is None:
        try:
            config = JEPAConfig.from_dict(model).encoder
        except ValueError as exc:
            raise CheckpointError(f"{name}: its model config: {exc}") from None
    encoder = make_encoder(config or infer_vit_config(state, num_heads=num_heads))
    load_strict(encoder, state, name)
    return encoder.eval()
