"""Reading and writing :class:`~jepa_torch.config.schema.TrainConfig`: YAML, ``--set`` overrides, the official layout.

Every value is checked against the type of its dataclass field (read with
``typing.get_type_hints``, never a hand-written list of keys): an unknown section or
key, a wrong type or an unreadable file raises :class:`ConfigError` with one line
that names the culprit and the fix. Ints are accepted for float fields, lists become
tuples, ``null`` is accepted only where the field is optional, and ``bool`` is never
taken for a number.

The official I-JEPA YAML layout (sections ``meta``, ``data``, ``mask``,
``optimization``, ``logging``) is detected and mapped onto ours; docs/training.md,
section Configuration, gives the table. ``--set`` overrides always name *our* keys
and are applied after that mapping.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import types
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml

from jepa_torch.config.schema import ConfigError, TrainConfig
from jepa_torch.io.files import atomic_write

__all__ = ["ConfigError", "config_from_dict", "config_to_dict", "load_config", "save_config"]

log = logging.getLogger(__name__)

Raw = dict[str, Any]


class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that reads ``5e-4`` as a float (YAML 1.1 needs ``5.0e-4``) and refuses duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        self.flatten_mapping(node)  # resolve ``<<`` merge keys first, as the base class does
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$"), list("-+0123456789"))


def _parse_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


# ----------------------------------------------------------------------------- types


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a mapping"}.get(type(value), type(value).__name__)


def _describe(tp: Any) -> str:
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _describe(a) for a in args)
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_describe(args[0])}"
        return f"a list of {len(args)} ({', '.join(_describe(a) for a in args)})"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(tp, repr(tp))


def _coerce(key: str, value: object, tp: Any) -> Any:
    """``value`` checked against the field type ``tp``; ints widened to float, lists to tuples.

    Raises:
        ConfigError: ``key=value: expected <type>, got <kind>``.
    """
    origin, args = get_origin(tp), get_args(tp)
    wrong = ConfigError(f"{key}={value!r}: expected {_describe(tp)}, got {_kind(value)}")
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(key, value, option)
            except ConfigError:
                pass
        raise wrong
    if origin is Literal:
        if any(type(value) is type(a) and value == a for a in args):
            return value
        raise ConfigError(f"{key}={value!r}: use one of {', '.join(str(a) for a in args)}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise wrong
        if len(args) == 2 and args[1] is Ellipsis:
            args = (args[0],) * len(value)
        elif len(value) != len(args):
            raise ConfigError(f"{key}={value!r}: expected {_describe(tp)}, got {len(value)} items")
        out = []
        for i, (v, a) in enumerate(zip(value, args)):
            try:
                out.append(_coerce(key, v, a))
            except ConfigError:
                raise ConfigError(f"{key}={value!r}: item {i} must be {_describe(a)}, got {_kind(v)}") from None
        return tuple(out)
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise wrong
    if tp in (bool, int, str):
        if type(value) is tp:
            return value
        raise wrong
    raise TypeError(f"{key}: unsupported config field type {tp!r}")  # a bug in config.py, not a user error


def _unknown(where: str, key: object, valid: Sequence[str], what: str = "key") -> ConfigError:
    close = difflib.get_close_matches(str(key), valid, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    name = f"{where}{key}"
    name = name if name.isprintable() else repr(name)  # a newline in a key must not break the one line
    return ConfigError(f"{name}: unknown {what}; {hint}valid {what}s: {', '.join(valid)}")


def _mapping(where: str, value: object) -> Raw:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping of key: value, got {_kind(value)}")
    return dict(value)


_SECTIONS: dict[str, type] = get_type_hints(TrainConfig)

DEPRECATED_KEYS: dict[str, str] = {"model.predictor_embed_dim": "model.pred_emb_dim"}
"""Former names of keys: still read, with one warning line naming the key to use."""


def _current(section: str, key: str, given: Mapping[str, Any]) -> str:
    """``key``'s current name in ``section``, warning when it is a deprecated one; both names at once are refused."""
    new = DEPRECATED_KEYS.get(f"{section}.{key}")
    if new is None:
        return key
    current = new.partition(".")[2]
    if current in given:
        raise ConfigError(f"{section}.{key}: the former name of {new}, which is given too; keep {new} only")
    log.warning("%s.%s is deprecated; read as %s: rename it", section, key, new)
    return current


def config_from_dict(d: Mapping[str, Any]) -> TrainConfig:
    """Build and validate a config from plain data in our layout (a YAML file, a checkpoint's copy).

    Args:
        d: ``{section: {key: value}}``; absent sections and keys take their defaults.

    Returns:
        The validated config.

    Raises:
        ConfigError: an unknown section or key, a wrong type, or an impossible value.
    """
    sections: dict[str, Any] = {}
    for name, raw in _mapping("config", d).items():
        if name not in _SECTIONS:
            raise _unknown("", name, list(_SECTIONS), "section")
        cls = _SECTIONS[name]
        hints, names = get_type_hints(cls), [f.name for f in fields(cls)]
        kwargs = {}
        body = _mapping(name, raw)
        for given, value in body.items():
            key = _current(name, given, body)
            if key not in names:
                raise _unknown(f"{name}.", key, names)
            kwargs[key] = _coerce(f"{name}.{key}", value, hints[key])
        sections[name] = cls(**kwargs)
    return TrainConfig(**sections)


def _field_type(dotted: str) -> Any:
    section, key = dotted.split(".")
    return get_type_hints(_SECTIONS[section])[key]


# ----------------------------------------------------------------------------- official layout

_OFFICIAL: dict[str, dict[str, str | None]] = {
    # official section -> {official key: our "section.key", or None: read by a special rule below}
    "meta": {"model_name": "model.preset", "pred_depth": "model.pred_depth", "pred_emb_dim": "model.pred_emb_dim",
             "use_bfloat16": None, "load_checkpoint": None, "read_checkpoint": None},
    "data": {"batch_size": "data.batch_size", "crop_size": "data.img_size", "crop_scale": "data.crop_scale",
             "use_horizontal_flip": "data.horizontal_flip", "use_gaussian_blur": "data.gaussian_blur",
             "num_workers": "data.num_workers", "use_color_distortion": None, "color_jitter_strength": None,
             "root_path": None, "image_folder": None},
    "mask": {"patch_size": "model.patch_size", "num_enc_masks": "mask.num_context",
             "num_pred_masks": "mask.num_targets", "enc_mask_scale": "mask.context_scale",
             "pred_mask_scale": "mask.target_scale", "aspect_ratio": "mask.target_aspect",
             "min_keep": "mask.min_keep", "allow_overlap": "mask.allow_overlap"},
    "optimization": {"epochs": "optimization.epochs", "ipe_scale": "optimization.ipe_scale",
                     "warmup": "optimization.warmup_epochs", "start_lr": "optimization.start_lr",
                     "lr": "optimization.lr", "final_lr": "optimization.final_lr",
                     "weight_decay": "optimization.weight_decay",
                     "final_weight_decay": "optimization.final_weight_decay", "ema": "optimization.ema"},
    "logging": {"folder": "run.out_dir"},
}
# Keys the official trainer reads that change nothing here: listed in one warning line.
_OFFICIAL_UNUSED = {"meta": ("copy_data",), "data": ("pin_mem",), "logging": ("write_tag",)}
_SPECIAL_TYPES: dict[str, Any] = {
    "meta.use_bfloat16": bool, "meta.load_checkpoint": bool, "meta.read_checkpoint": str | None,
    "data.use_color_distortion": bool, "data.color_jitter_strength": float,
    "data.root_path": str, "data.image_folder": str,
}


def is_official_layout(raw: Mapping[str, Any]) -> bool:
    """Whether a parsed YAML file uses the official I-JEPA layout (``meta`` and ``optimization`` sections)."""
    return "meta" in raw and "optimization" in raw


def _from_official(raw: Mapping[str, Any]) -> tuple[Raw, dict[str, str]]:
    """Our-layout data from an official config, and which official key each of our keys came from."""
    ours: dict[str, Raw] = {name: {} for name in _SECTIONS}
    origin: dict[str, str] = {}
    special: dict[str, Any] = {}
    ignored: list[str] = []
    seen: set[str] = set()
    for section, body in raw.items():
        if section not in _OFFICIAL:
            raise _unknown("", section, list(_OFFICIAL), "section")
        known = list(_OFFICIAL[section]) + list(_OFFICIAL_UNUSED.get(section, ()))
        for key, value in _mapping(section, body).items():
            official = f"{section}.{key}"
            if key not in known:
                raise _unknown(f"{section}.", key, known)
            target = _OFFICIAL[section].get(key)
            seen.add(official)
            if official in _SPECIAL_TYPES:
                special[official] = _coerce(official, value, _SPECIAL_TYPES[official])
            elif target is None:
                ignored.append(official)
            else:
                ours_section, ours_key = target.split(".")
                ours[ours_section][ours_key] = _coerce(official, value, _field_type(target))
                origin[target] = official
    missing = [f"{s}.{k}" for s, keys in _OFFICIAL.items() for k in keys if f"{s}.{k}" not in seen]
    if missing:
        raise ConfigError(f"{missing[0]}: missing from the official-layout config (the official trainer "
                          f"requires it); add it, or write the config in our layout")
    ours["data"].update(dataset="image_folder", holdout_fraction=0.0,
                        path=os.path.join(special["data.root_path"], special["data.image_folder"], "train"),
                        color_jitter=special["data.color_jitter_strength"] if special["data.use_color_distortion"]
                        else 0.0)
    origin.update({"data.path": "data.root_path", "data.color_jitter": "data.color_jitter_strength"})
    if special["data.use_color_distortion"] and special["data.color_jitter_strength"] == 0:
        ignored.append("data.use_color_distortion (grayscale-only distortion with strength 0)")
    ours["mask"]["official_compatible"] = True
    ours["run"]["precision"] = "auto" if special["meta.use_bfloat16"] else "fp32"
    if not special["meta.load_checkpoint"]:
        ours["run"]["resume"] = "never"
    elif special["meta.read_checkpoint"] is None:
        ours["run"]["resume"] = "auto"
    else:
        ours["run"]["resume"] = os.path.join(str(ours["run"].get("out_dir", "")), special["meta.read_checkpoint"])
        origin["run.resume"] = "meta.read_checkpoint"
    if ignored:
        log.warning("official config: ignoring keys this trainer does not use: %s", ", ".join(ignored))
    return ours, origin


# ----------------------------------------------------------------------------- files and overrides


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found; check the path") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory; give a YAML config file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file; give a YAML config file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config ({exc.strerror})") from None
    try:
        return _parse_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}: invalid YAML ({problem}); fix the syntax there") from None


def _apply_override(raw: dict[str, Any], item: str) -> None:
    dotted, eq, text = item.partition("=")
    section, dot, key = dotted.strip().partition(".")
    if not (eq and dot and section and key):
        raise ConfigError(f"--set {item!r}: use section.key=value, e.g. optimization.lr=5e-4")
    try:
        value = _parse_yaml(text) if text.strip() else None
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]  # a ReaderError spans lines
        raise ConfigError(f"--set {item!r}: cannot parse the value ({problem})") from None
    body = raw.get(section)
    if body is None:
        raw[section] = {key: value}
    elif isinstance(body, dict):
        raw[section] = {**body, key: value}  # a copy: the caller's data stays as it was


def load_config(path: str | Path | None, overrides: Sequence[str] = ()) -> TrainConfig:
    """Read a YAML config (ours or the official layout), apply ``--set`` overrides, validate.

    Args:
        path: a YAML file, or None for the defaults.
        overrides: ``section.key=value`` strings naming our keys (also for an official-layout
            file: they apply after the mapping); each value is read as YAML
            (``5e-4``, ``[0.1, 0.2]``, ``null``, ``true``).

    Returns:
        The validated config.

    Raises:
        ConfigError: one line naming the file, key or override at fault and the fix.
    """
    raw: Raw = {}
    origin: dict[str, str] = {}
    if path is not None:
        data = _read_yaml(Path(path))
        if not isinstance(data, dict) or not data:
            got = "an empty file" if data is None else _kind(data)
            raise ConfigError(f"{path}: the top level must be a mapping of sections "
                              f"({', '.join(_SECTIONS)}), got {got}")
        raw, origin = _from_official(data) if is_official_layout(data) else (data, {})
    for item in overrides:
        _apply_override(raw, item)
        origin.pop(item.partition("=")[0].strip(), None)
    try:
        return config_from_dict(raw)
    except ConfigError as exc:
        key = str(exc).partition("=")[0]
        if key in origin:
            raise ConfigError(f"{exc} (from the official key {origin[key]})") from None
        raise


def _plain(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def config_to_dict(cfg: TrainConfig) -> dict[str, Any]:
    """Plain data in our layout (tuples as lists): YAML- and checkpoint-friendly; inverse of :func:`config_from_dict`."""
    out: dict[str, Any] = _plain(asdict(cfg))
    return out


def save_config(cfg: TrainConfig, path: str | Path) -> None:
    """Write ``cfg`` as YAML atomically (temporary file in the same folder, fsync, rename).

    Args:
        cfg: the resolved config.
        path: the destination; its folder is made if missing.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(config_to_dict(cfg), sort_keys=False, default_flow_style=None)
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))
