"""Fuzzing the config loader and the CLI's arguments: every input loads or is one clear refusal, never a crash.

Documents are random nests of our sections and keys (and the official layout's), with values of
random types and random junk keys; overrides and argv mix real keys and flags with junk. Whatever
comes in, ``load_config`` returns a config or raises :class:`ConfigError`, and ``jepa-torch`` exits
0 or 2 with one line on stderr (argparse's own usage errors: its usage line plus one error line).
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from dataclasses import fields
from pathlib import Path
from typing import Any, get_type_hints

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jepa_torch.training import loop as train_module
from jepa_torch.cli import main
from jepa_torch.config import ConfigError, TrainConfig
from jepa_torch.config.yaml_io import _OFFICIAL, load_config
from jepa_torch.training.loop import TrainingSummary

FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])

SECTIONS = {name: [f.name for f in fields(tp)] for name, tp in get_type_hints(TrainConfig).items()}
KEYS = sorted({key for keys in SECTIONS.values() for key in keys} | {key for keys in _OFFICIAL.values() for key in keys})
JUNK = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8)

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["auto", "never", "cpu", "cuda", "digits", "image_folder", "sequence", "vit_tiny", "vit_huge",
                     "bf16", "5e-4", "1e400", "", "~", "null", "[", "{a: 1}"]),
    JUNK,
)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(JUNK, inner, max_size=3)), max_leaves=8)
section_names = st.one_of(st.sampled_from([*SECTIONS, *_OFFICIAL]), JUNK)
key_names = st.one_of(st.sampled_from(KEYS), JUNK)
sections = st.dictionaries(key_names, values, max_size=6)
documents = st.one_of(
    st.dictionaries(section_names, st.one_of(sections, values), max_size=6),
    values,  # a top level that is not a mapping
)


def _loads_or_refuses(path: str | None, overrides: list[str]) -> None:
    try:
        cfg = load_config(path, overrides)
    except ConfigError as exc:
        message = str(exc)
        assert message and "\n" not in message and "\r" not in message, repr(message)
    else:
        assert isinstance(cfg, TrainConfig)


@FUZZ
@given(documents)
def test_any_yaml_document_loads_or_is_one_config_error(document: Any) -> None:
    text = yaml.safe_dump(document, allow_unicode=True)  # every value drawn here is representable
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.yaml"
        path.write_text(text, encoding="utf-8")
        _loads_or_refuses(str(path), [])


@FUZZ
@given(st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=80) | st.binary(max_size=40))
def test_any_file_content_loads_or_is_one_config_error(content: str | bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.yaml"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        _loads_or_refuses(str(path), [])


overrides = st.builds(
    lambda section, key, sep, value: f"{section}{sep}{key}={value}",
    section_names, key_names, st.sampled_from([".", ".", "", ".."]),
    st.one_of(JUNK, values.map(lambda v: yaml.safe_dump(v, default_flow_style=True, width=10**6).strip())),
) | JUNK


@FUZZ
@given(st.lists(overrides, max_size=4))
def test_any_set_overrides_load_or_are_one_config_error(items: list[str]) -> None:
    _loads_or_refuses(None, items)


FLAGS = ["--config", "--set", "--out", "--device", "--resume", "--max-steps", "--no-progress", "--checkpoint",
         "--format", "--encoder", "--seed", "--bogus"]
argv_items = st.one_of(st.sampled_from(FLAGS), overrides, JUNK.filter(lambda s: not s.startswith("@")),
                       st.sampled_from(["auto", "never", "cpu", "cuda", "-1", "0", "3", "x.yaml"]))


@FUZZ
@given(st.sampled_from(["train", "export", "eval", "bogus"]), st.lists(argv_items, max_size=6))
def test_any_argv_exits_cleanly(command: str, rest: list[str]) -> None:
    """Commands never train, export or evaluate here: those are stubbed once the arguments are accepted."""
    def stub(*args: Any, **kwargs: Any) -> Any:
        raise ConfigError("stub reached: the arguments were accepted")

    def train_stub(cfg: TrainConfig, **kwargs: Any) -> TrainingSummary:
        assert isinstance(cfg, TrainConfig)
        return TrainingSummary(Path(cfg.run.out_dir), 0, 0, None, [], 0.0)

    err, out = io.StringIO(), io.StringIO()
    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)  # relative paths in argv land in an empty folder
        mp.setattr(train_module, "train", train_stub)
        mp.setattr("jepa_torch.io.export.export_encoder", stub)
        mp.setattr("jepa_torch.evaluation.evaluate", stub)
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            try:
                code = main([command, *rest])
            except SystemExit as exc:  # argparse: usage line + "jepa-torch ...: error: ..."
                code = exc.code if isinstance(exc.code, int) else 2
                lines = err.getvalue().strip().split("\n")  # not splitlines: \x1e in an argument is no new line
                assert code == 2 and lines and lines[0].startswith("usage:") and ": error: " in lines[-1], lines
                return
    lines = err.getvalue().strip().split("\n")  # not splitlines: \x1e in an argument is no new line
    assert "Traceback" not in err.getvalue()
    if code == 0:
        assert out.getvalue().startswith("nothing to do"), out.getvalue()
    else:
        assert code == 2 and len(lines) == 1 and lines[0].startswith("jepa-torch: error: "), (code, lines)
