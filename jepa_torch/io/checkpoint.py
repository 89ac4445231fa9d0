"""Official I-JEPA checkpoint I/O: read, infer the architecture, load strictly, write atomically.

An official checkpoint (``*.pth.tar``) is a ``torch.save``-d dict with the state dicts ``encoder``,
``predictor`` and ``target_encoder``, plus ``opt``, ``scaler``, ``epoch``, ``loss``, ``batch_size``,
``world_size`` and ``lr``. Its state dicts often carry ``module.`` (saved from DDP) and may carry
``_orig_mod.`` (saved from ``torch.compile``); both are stripped on read and never written.

The architecture is read from tensor shapes into the one model config
(``jepa_torch.models.jepa.JEPAConfig``, :func:`infer_model_config`): width, depth, patch size and channels, grid (square
unless ``grid`` is given), MLP hidden width, predictor width and depth. Heads are not in the
tensors: they come from the official preset of that width (``HEADS_BY_WIDTH``), or ``num_heads``.
The predictor's heads default to the encoder's, as the official ``init_model`` builds it.

A sequence encoder (``jepa_torch.models.tokens``) saved in this layout is recognised by its 2-D
``patch_embed.proj.weight`` and read back as a ``SequenceTransformer``.

Every file this project writes with :func:`atomic_save` carries ``digest``: the SHA-256 of its content
(:func:`payload_digest`: every tensor's bytes, dtype and shape, and every other value, under its key
path). :func:`read_official` recomputes it and refuses a file whose bytes changed after it was written
(:class:`CorruptCheckpoint`), so a flipped byte inside a tensor, which ``torch.load`` cannot see, never
reaches a model. Files without the entry (official ones, ours before it) load as before, unverified.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import struct
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from jepa_torch.io.files import WriteError, atomic_write
from jepa_torch.models.sharding import shard_like
from jepa_torch.models.jepa import EncoderConfig, JEPAConfig, PredictorConfig, make_image_encoder, make_predictor
from jepa_torch.models.positions import sincos_pos_embed
from jepa_core.presets import HEADS_BY_WIDTH
from jepa_torch.models.predictor import Predictor
from jepa_torch.models.vit import TransformerEncoder

log = logging.getLogger(__name__)

__all__ = [
    "FORMAT_VERSION",
    "OFFICIAL_MODEL_KEYS",
    "OFFICIAL_OPT_FORMATS",
    "OFFICIAL_PREFIX",
    "CheckpointError",
    "CheckpointWriteError",
    "CorruptCheckpoint",
    "DIGEST_KEY",
    "UnreadableCheckpoint",
    "atomic_save",
    "infer_model_config",
    "infer_predictor_config",
    "infer_vit_config",
    "load_official",
    "load_strict",
    "network_payload",
    "official_payload",
    "official_state_dict",
    "payload_digest",
    "positions_for_grid",
    "read_official",
    "save_official",
    "strip_prefixes",
    "unwrap",
    "verify_digest",
]

PathLike = str | os.PathLike[str]
StateDict = Mapping[str, torch.Tensor]
OFFICIAL_MODEL_KEYS = ("encoder", "predictor", "target_encoder")
FORMAT_VERSION = 3
"""Our training checkpoints' format (``jepa_torch.training.resume``): 3, the method's own entry names with
``method``, ``model`` and ``encoders``; 2, ``opt`` in the official layout, ``module.`` keys, I-JEPA's three
names for every method; 1, ``opt`` in our layout, bare keys."""
OFFICIAL_OPT_FORMATS = (2, 3)
"""The formats whose ``opt`` is in the official layout, which the official trainer's resume loads."""
_PREFIXES = ("module.", "_orig_mod.")


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model; the message names the key."""


class CheckpointWriteError(WriteError):
    """Writing a checkpoint failed (a full disk, no permission); the message names the file and the fix."""


class UnreadableCheckpoint(CheckpointError):
    """The file is not a loadable checkpoint at all (truncated, corrupt, not a torch file, not a dict)."""


class CorruptCheckpoint(UnreadableCheckpoint):
    """The file loads, but its content no longer matches the digest written with it."""


DIGEST_KEY = "digest"
"""The top-level entry holding ``"sha256:<hex>"`` of the rest of the file (:func:`payload_digest`)."""
_DIGEST_ALGORITHM = "sha256"


def _feed(h: Any, path: str, value: Any) -> None:
    """Hash ``value`` under its key ``path``: mappings in key order, sequences in order, tensors as raw bytes."""
    h.update(path.encode("utf-8", "surrogatepass") + b"\0")
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        h.update(f"tensor {t.dtype} {tuple(t.shape)}\0".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().data)  # the storage's bytes, no copy
    elif isinstance(value, Mapping):
        h.update(f"map {len(value)}\0".encode())
        for key in sorted(value, key=lambda k: (type(k).__name__, str(k))):
            _feed(h, f"{path}/{type(key).__name__}:{key}", value[key])
    elif isinstance(value, (list, tuple)):
        h.update(f"{type(value).__name__} {len(value)}\0".encode())
        for i, item in enumerate(value):
            _feed(h, f"{path}[{i}]", item)
    elif isinstance(value, float):
        h.update(b"float " + struct.pack("<d", value))  # exact, NaN payloads included
    else:
        h.update(f"{type(value).__name__} {value!r}\0".encode())


def payload_digest(payload: Mapping[str, Any]) -> str:
    """``"sha256:<hex>"`` of a checkpoint dict without its :data:`DIGEST_KEY` entry.

    Every tensor's dtype, shape and bytes count, and so does every other value (steps, configs, RNG
    states), each under its key path, independent of dict order. A tensor on a GPU is copied to the host.
    """
    h = hashlib.new(_DIGEST_ALGORITHM)
    _feed(h, "", {k: v for k, v in payload.items() if k != DIGEST_KEY})
    return f"{_DIGEST_ALGORITHM}:{h.hexdigest()}"


def verify_digest(payload: Mapping[str, Any], where: str | os.PathLike[str]) -> bool:
    """Check ``payload``'s :data:`DIGEST_KEY`; returns False when it has none (unverifiable, not wrong).

    Raises:
        CorruptCheckpoint: the content does not match the digest written with it.
    """
    stored = payload.get(DIGEST_KEY)
    if stored is None:
        return False
    if not isinstance(stored, str) or not stored.startswith(f"{_DIGEST_ALGORITHM}:"):
        raise CorruptCheckpoint(f"{where}: its {DIGEST_KEY!r} entry is {str(stored)[:40]!r}, not a {_DIGEST_ALGORITHM} "
                                "digest; the file is damaged: use an earlier checkpoint")
    if payload_digest(payload) != stored:
        raise CorruptCheckpoint(f"{where}: corrupt: its content does not match the {_DIGEST_ALGORITHM} digest written "
                                "with it (a changed byte); use an earlier checkpoint or copy the file again")
    return True


def strip_prefixes(state_dict: StateDict, prefixes: tuple[str, ...] = _PREFIXES) -> dict[str, torch.Tensor]:
    """Remove leading ``prefixes`` (default ``module.`` / ``_orig_mod.``, in any nesting) from every key.

    Raises:
        CheckpointError: if two keys become the same after stripping.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        name = key
        while name.startswith(prefixes):
            name = name.split(".", 1)[1]
        if name in out:
            raise CheckpointError(f"keys {key!r} and another both become {name!r} once prefixes are stripped")
        out[name] = value
    return out


def _get(sd: StateDict, key: str, ndim: int, what: str) -> torch.Tensor:
    if key not in sd:
        raise CheckpointError(f"{what}: missing key {key!r}; is this an official I-JEPA {what} state dict?")
    t = sd[key]
    if t.dim() != ndim:
        raise CheckpointError(f"{what}: key {key!r} has shape {tuple(t.shape)}, expected a {ndim}-D tensor")
    return t


def _count_blocks(sd: StateDict, prefix: str, what: str) -> int:
    ids = {int(k.split(".")[1]) for k in sd if k.startswith(prefix + ".") and k.split(".")[1].isdigit()}
    if ids != set(range(len(ids))):
        missing = min(set(range(max(ids) + 1)) - ids)
        raise CheckpointError(f"{what}: missing key '{prefix}.{missing}.*' (blocks must be numbered 0..depth-1)")
    return len(ids)


def _grid(n: int, grid: Sequence[int] | None, key: str, what: str) -> tuple[int, ...]:
    if grid is not None:
        g = tuple(grid)
        if len(g) not in (1, 2) or torch.Size(g).numel() != n:
            raise CheckpointError(f"{what}: {key!r} has {n} positions but grid={g} has {torch.Size(g).numel()}")
        return g
    side = int(round(n**0.5))
    if side * side != n:
        raise CheckpointError(f"{what}: {key!r} has {n} positions, not a square grid; pass grid=(rows, cols)")
    return (side, side)


def _heads(width: int, num_heads: int | None, what: str) -> int:
    if num_heads is not None:
        return num_heads
    if width not in HEADS_BY_WIDTH:
        raise CheckpointError(
            f"{what}: width {width} is not an official preset width {sorted(HEADS_BY_WIDTH)}; pass num_heads="
        )
    return HEADS_BY_WIDTH[width]


def infer_vit_config(
    state_dict: StateDict, *, num_heads: int | None = None, grid: Sequence[int] | None = None
) -> EncoderConfig:
    """Read an encoder's architecture from its state dict (prefixes allowed).

    Args:
        state_dict: an official-layout encoder state dict.
        num_heads: heads; default: the official preset of the inferred width.
        grid: ``(rows, cols)`` of the image grid; default: square. Ignored for sequence encoders.

    Raises:
        CheckpointError: naming the missing or ill-shaped key.
    """
    sd = strip_prefixes(state_dict)
    what = "encoder"
    w = sd.get("patch_embed.proj.weight")
    if w is None or w.dim() not in (2, 4):
        _get(sd, "patch_embed.proj.weight", 4, what)
    assert w is not None
    pos = _get(sd, "pos_embed", 3, what)  # (1, N, D)
    depth = _count_blocks(sd, "blocks", what)
    dim = int(w.shape[0])
    hidden = int(_get(sd, "blocks.0.mlp.fc1.weight", 2, what).shape[0]) if depth else 4 * dim
    if w.dim() == 2:  # sequence front end: (D, F)
        return EncoderConfig(dim, depth, _heads(dim, num_heads, what), hidden, int(w.shape[1]), (), (pos.shape[1],))
    g = _grid(int(pos.shape[1]), grid, "pos_embed", what)
    if len(g) != 2:
        raise CheckpointError(f"{what}: an image encoder needs grid=(rows, cols), got {g}")
    patch = (int(w.shape[2]), int(w.shape[3]))
    return EncoderConfig(dim, depth, _heads(dim, num_heads, what), hidden, int(w.shape[1]), patch, g)


def infer_predictor_config(
    state_dict: StateDict, *, num_heads: int | None = None, grid: Sequence[int] | None = None
) -> PredictorConfig:
    """Read a predictor's architecture from its state dict (prefixes allowed).

    Args:
        state_dict: an official-layout predictor state dict.
        num_heads: heads; default: those of the official preset of the *encoder* width (official).
        grid: ``(rows, cols)`` or ``(length,)``; default: square.

    Raises:
        CheckpointError: naming the missing or ill-shaped key.
    """
    sd = strip_prefixes(state_dict)
    what = "predictor"
    w = _get(sd, "predictor_embed.weight", 2, what)  # (Dp, D)
    pos = _get(sd, "predictor_pos_embed", 3, what)  # (1, N, Dp)
    depth = _count_blocks(sd, "predictor_blocks", what)
    dp, dim = int(w.shape[0]), int(w.shape[1])
    key = "predictor_blocks.0.mlp.fc1.weight"
    hidden = int(_get(sd, key, 2, what).shape[0]) if depth else 4 * dp
    g = _grid(int(pos.shape[1]), grid, "predictor_pos_embed", what)
    return PredictorConfig(dim, dp, depth, _heads(dim, num_heads, what), hidden, g)


def infer_model_config(encoder: StateDict, predictor: StateDict, *, num_heads: int | None = None,
                       predictor_num_heads: int | None = None, grid: Sequence[int] | None = None) -> JEPAConfig:
    """The one model config of an official-layout encoder and predictor, read from their tensors.

    Args:
        encoder, predictor: official-layout state dicts (prefixes allowed).
        num_heads: encoder heads; default: the official preset of the inferred width.
        predictor_num_heads: predictor heads; default: the encoder's (official).
        grid: token grid when it is not square.

    Raises:
        CheckpointError: naming the missing or ill-shaped key.
    """
    enc = infer_vit_config(encoder, num_heads=num_heads, grid=grid)
    heads = enc.num_heads if predictor_num_heads is None else predictor_num_heads
    pred = infer_predictor_config(predictor, num_heads=heads, grid=enc.grid)
    try:
        return JEPAConfig(enc, pred)
    except ValueError as exc:
        raise CheckpointError(f"encoder and predictor do not fit together: {exc}") from None


def load_strict(module: nn.Module, state_dict: StateDict, what: str) -> None:
    """Load ``state_dict`` (prefixes stripped) into ``module``; every key and shape must match.

    A sharded ``module`` (``jepa_torch.models.sharding.shard``) takes whole tensors too: each process keeps its
    shard of each.

    Raises:
        CheckpointError: one line naming the first missing, unexpected or mis-shaped key (and how many more).
    """
    sd = strip_prefixes(state_dict)
    expected = module.state_dict()
    problems = [f"missing key {k!r}" for k in expected if k not in sd]
    problems += [f"unexpected key {k!r}" for k in sd if k not in expected]
    problems += [
        f"key {k!r} has shape {tuple(sd[k].shape)} but the model expects {tuple(v.shape)}"
        for k, v in expected.items()
        if k in sd and sd[k].shape != v.shape
    ]
    if problems:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise CheckpointError(f"{what}: {problems[0]}{more}")
    module.load_state_dict({k: shard_like(v, expected[k]) for k, v in sd.items()}, strict=True)


def _reason(exc: BaseException) -> str:
    """The informative line of a torch.load failure (its messages span many lines)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for i, line in enumerate(lines):
        if "WeightsUnpickler error:" in line:
            detail = line.split("WeightsUnpickler error:", 1)[1].strip()
            if not detail and i + 1 < len(lines):
                detail = lines[i + 1]
            return detail.split(". ")[0]
    first = lines[0].split(". ")[0] if lines else ""
    if first and isinstance(exc, (RuntimeError, pickle.UnpicklingError)):
        return first
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def read_official(source: PathLike | Mapping[str, Any], map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The checkpoint dict, from a path (``torch.load(weights_only=True)``) or an in-memory mapping.

    A file that carries a digest (every file :func:`atomic_save` writes) is verified against it.

    Raises:
        CheckpointError: for a missing file, a file that is not a safe torch checkpoint, or a non-dict.
        CorruptCheckpoint: the file's content does not match its digest.
    """
    if isinstance(source, Mapping):
        return dict(source)
    path = Path(source)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file not found: {path}; check the path")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - garbage bytes make the unpickler raise KeyError, IndexError, ...
        raise UnreadableCheckpoint(
            f"{path}: not a readable weights-only torch checkpoint ({_reason(exc)}); if it is corrupt, "
            "re-download it; if you trust it, torch.load it yourself and pass the dict"
        ) from exc
    if not isinstance(obj, dict):
        raise UnreadableCheckpoint(f"{path}: holds a {type(obj).__name__}, expected a dict with keys {OFFICIAL_MODEL_KEYS}")
    verify_digest(obj, path)
    return obj


def load_official(
    source: PathLike | Mapping[str, Any],
    *,
    num_heads: int | None = None,
    predictor_num_heads: int | None = None,
    grid: Sequence[int] | None = None,
    map_location: str | torch.device = "cpu",
    img_size: int | Sequence[int] | None = None,
) -> tuple[TransformerEncoder, Predictor, TransformerEncoder]:
    """Build and strictly load (encoder, predictor, target_encoder) from an official checkpoint.

    Args:
        source: a ``.pth.tar`` path or the already loaded dict.
        num_heads: encoder heads; default: the official preset of the inferred width.
        predictor_num_heads: predictor heads; default: the encoder's.
        grid: token grid when it is not square.
        map_location: where tensors are loaded (modules are built on CPU, then receive them).
        img_size: build the networks for images of this size (a multiple of the patch) instead of the
            checkpoint's: the position tables are carried to the new patch grid
            (:func:`positions_for_grid`), so the result equals a model built at that size with the
            checkpoint's other weights.

    Returns:
        ``(encoder, predictor, target_encoder)``; the target encoder's parameters are frozen. A checkpoint
        of our trainer carries its model config (``model``) and is built from it; otherwise the
        config is inferred from the tensors (:func:`infer_model_config`).

    Raises:
        CheckpointError: naming the missing top-level key or the first state-dict key that does not fit.
    """
    ckpt = read_official(source, map_location)
    name = "checkpoint" if isinstance(source, Mapping) else str(source)
    for key in OFFICIAL_MODEL_KEYS:
        if key not in ckpt:
            if "method" in ckpt and "encoders" in ckpt:  # ours, of a method without I-JEPA's three networks
                raise CheckpointError(
                    f"{name}: a {ckpt['method']} checkpoint (entries {', '.join(_networks_of(ckpt))}), not I-JEPA's "
                    "encoder, predictor and target encoder; load its encoder with jepa_torch.load_encoder (or "
                    "torch.hub's 'encoder' entry point with weights=)")
            raise CheckpointError(f"checkpoint has no key {key!r} (it has {sorted(ckpt)}); not an official I-JEPA file")
    states = {key: strip_prefixes(ckpt[key]) for key in OFFICIAL_MODEL_KEYS}
    if "model" in ckpt and num_heads is None and predictor_num_heads is None and grid is None:
        try:
            config = JEPAConfig.from_dict(ckpt["model"])  # written by our trainer: nothing to infer
        except ValueError as exc:
            raise CheckpointError(f"checkpoint entry 'model': {exc}") from None
        if config.predictor is None:
            raise CheckpointError(f"{name}: its model config has no predictor; load its encoder with "
                                  "jepa_torch.load_encoder")
    else:
        config = infer_model_config(ckpt["encoder"], ckpt["predictor"], num_heads=num_heads,
                                    predictor_num_heads=predictor_num_heads, grid=grid)
    if img_size is not None:
        config, states = _at_image_size(config, states, img_size)
    assert config.predictor is not None
    with torch.device("meta"):  # no random init of weights about to be overwritten (ViT-H: seconds)
        encoder, target, predictor = make_image_encoder(config.encoder), make_image_encoder(config.encoder), make_predictor(
            config.predictor)
    for module in (encoder, target, predictor):
        module.to_empty(device="cpu")  # uninitialised storage, filled by the strict load below
    load_strict(encoder, states["encoder"], "encoder")
    load_strict(predictor, states["predictor"], "predictor")
    load_strict(target, states["target_encoder"], "target_encoder")
    target.requires_grad_(False)
    return encoder, predictor, target


def _networks_of(ckpt: Mapping[str, Any]) -> list[str]:
    """The state-dict entries of a checkpoint of ours (its ``encoders`` name some; ``opt`` is not one)."""
    return [k for k, v in ckpt.items() if isinstance(v, Mapping) and k not in ("opt", "config", "rng", "model",
                                                                                 "encoders", "scaler")]


def positions_for_grid(table: torch.Tensor, grid: Sequence[int], new_grid: Sequence[int]) -> torch.Tensor:
    """A position table ``(1, N, D)`` of ``grid`` carried to ``new_grid``: ``(1, N', D)``.

    The fixed sin-cos table of ``grid`` (what every official and every one of our encoders holds)
    becomes the sin-cos table of ``new_grid``, exactly what a model built at that size holds. Any other
    table (learned positions) is resampled bicubically over the grid, with no class token: the
    official ``interpolate_pos_encoding`` takes the first position for one, which these models do not have.
    """
    old, new = tuple(grid), tuple(new_grid)
    dim = int(table.shape[-1])
    if old == new:
        return table
    fixed = sincos_pos_embed(dim, old).to(table.dtype)
    if table.shape == fixed.shape and torch.allclose(table.cpu(), fixed, atol=1e-5):
        return sincos_pos_embed(dim, new).to(table.dtype)
    if len(old) != 2:
        image = table.float().reshape(1, old[0], dim).transpose(1, 2)  # (1, D, L)
        out = F.interpolate(image, size=new[0], mode="linear", align_corners=False).transpose(1, 2)
    else:
        image = table.float().reshape(1, old[0], old[1], dim).permute(0, 3, 1, 2)  # (1, D, h, w)
        out = F.interpolate(image, size=new, mode="bicubic", align_corners=False)  # (1, D, h', w')
        out = out.permute(0, 2, 3, 1).reshape(1, new[0] * new[1], dim)  # (1, N', D)
    return out.to(table.dtype)


def _at_image_size(config: JEPAConfig, states: dict[str, dict[str, torch.Tensor]],
                   img_size: int | Sequence[int]) -> tuple[JEPAConfig, dict[str, dict[str, torch.Tensor]]]:
    """The config and state dicts of ``config``'s model used at images of ``img_size``: a new patch grid."""
    enc, pred = config.encoder, config.predictor
    assert pred is not None
    if not enc.patch_size:
        raise CheckpointError("img_size: this checkpoint holds a sequence encoder, which has no image size")
    size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
    if len(size) != 2 or any(s % p or s <= 0 for s, p in zip(size, enc.patch_size)):
        raise CheckpointError(f"img_size={img_size!r}: must be a positive multiple of the patch {enc.patch_size}")
    grid = tuple(s // p for s, p in zip(size, enc.patch_size))
    out = {k: dict(v) for k, v in states.items()}
    for key in ("encoder", "target_encoder"):
        out[key]["pos_embed"] = positions_for_grid(states[key]["pos_embed"], enc.grid, grid)
    out["predictor"]["predictor_pos_embed"] = positions_for_grid(
        states["predictor"]["predictor_pos_embed"], pred.grid, grid)
    return replace(config, encoder=replace(enc, grid=grid), predictor=replace(pred, grid=grid)), out


def unwrap(module: nn.Module) -> nn.Module:
    """The network inside DDP (``.module``) and ``torch.compile`` (``._orig_mod``) wrappers, in any nesting."""
    while True:
        inner = getattr(module, "module", None)
        if not isinstance(inner, nn.Module):
            inner = getattr(module, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            return module
        module = inner


def official_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    """``module``'s state dict with DDP / ``torch.compile`` wrappers and key prefixes removed."""
    return strip_prefixes(unwrap(module).state_dict())


def atomic_save(obj: Mapping[str, Any], path: PathLike) -> None:
    """``torch.save`` of ``obj`` and its digest (:data:`DIGEST_KEY`) through :func:`jepa_torch.io.files.atomic_write`:
    all or nothing under ``path``, and a reader can tell whether the bytes it reads are the bytes written.

    Raises:
        CheckpointWriteError: the folder is missing or an ``OSError`` while writing (a full disk, no
            permission), in one line naming the file; a training run resumes from its last checkpoint.
    """
    payload = {**obj, DIGEST_KEY: payload_digest(obj)}
    atomic_write(path, lambda f: torch.save(payload, f), error=CheckpointWriteError)


OFFICIAL_PREFIX = "module."
"""The official trainer wraps its three networks in DDP, so every key it writes and reads starts with this."""


def network_payload(networks: Mapping[str, nn.Module], *,
                    prefix: str = OFFICIAL_PREFIX) -> dict[str, dict[str, torch.Tensor]]:
    """One state-dict entry per named network, keys as the official trainer writes them.

    Whatever wraps the modules (DDP, ``torch.compile``) is removed first, then ``prefix`` is put in
    front of every key exactly once. Sharded modules give DTensors (``jepa_torch.models.sharding.gather_full``
    makes them whole).
    """
    return {name: {prefix + key: value for key, value in official_state_dict(module).items()}
            for name, module in networks.items()}


def official_payload(encoder: nn.Module, predictor: nn.Module, target_encoder: nn.Module, *,
                     prefix: str = OFFICIAL_PREFIX) -> dict[str, dict[str, torch.Tensor]]:
    """The ``encoder``, ``predictor`` and ``target_encoder`` entries of an official-layout file
    (:func:`network_payload` of the three)."""
    return network_payload({"encoder": encoder, "predictor": predictor, "target_encoder": target_encoder},
                           prefix=prefix)


def save_official(
    path: PathLike, encoder: nn.Module, predictor: nn.Module, target_encoder: nn.Module, *,
    prefix: str = OFFICIAL_PREFIX, **extra: Any
) -> None:
    """Write an official-layout checkpoint, atomically: the three state dicts as the official trainer writes them.

    The official trainer's networks are DDP-wrapped, so its files (and the released checkpoints) name
    every key ``module.<name>``, and its resume loads them into DDP-wrapped networks strictly: bare
    names would be refused there. The entries are :func:`official_payload`'s. Every reader of this
    project strips such prefixes.

    Args:
        path: destination, conventionally ``*.pth.tar``.
        encoder: context encoder (may be DDP- or compile-wrapped).
        predictor: predictor.
        target_encoder: EMA target encoder.
        prefix: put in front of every key (``""`` writes bare names).
        **extra: further top-level entries (official: ``opt``, ``scaler``, ``epoch``, ``loss``,
            ``batch_size``, ``world_size``, ``lr``; the official resume reads ``epoch``, ``opt``, and
            ``scaler`` when it trains in bf16).

    A file without ``epoch`` and ``opt`` is written, with a one-line warning that the official trainer will
    not resume from it: its loader swallows the missing entry and starts at epoch 0 (without ``epoch`` it
    loads no weights at all). Such a file is still whole for evaluation, for the hub and for this
    project's loaders, which read only the networks; to hand a run on to the official trainer, pass
    ``epoch=`` and ``opt=`` (and ``scaler=`` for a run it trains in bf16).
    """
    missing = [key for key in ("epoch", "opt") if extra.get(key) is None]
    if missing:
        log.warning("%s: written without %s, so the official trainer will not resume from it (it would start at "
                    "epoch 0%s); pass epoch= and opt= to save_official to hand the run on to it", path,
                    " and ".join(repr(k) for k in missing), ", from fresh weights" if "epoch" in missing else "")
    atomic_save({**official_payload(encoder, predictor, target_encoder, prefix=prefix), **extra}, path)
