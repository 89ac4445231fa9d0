"""Plumbing of the law suite: backend selection and Hypothesis profiles.

Choose the implementation under test explicitly, as array-api-tests does:

    pytest properties --jepa-backend=jepa_core.reference:backend
    JEPA_BACKEND=my_pkg.jepa:backend pytest properties

With no backend named the suite stops with a usage error: it never passes by
testing nothing.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings

ENV_VAR = "JEPA_BACKEND"

_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("ci", max_examples=200, derandomize=True, print_blob=True, **_COMMON)
settings.register_profile("dev", max_examples=50, print_blob=True, **_COMMON)
settings.register_profile("quick", max_examples=15, derandomize=True, print_blob=True, **_COMMON)
# for tests/test_mutants.py: a mutant only has to be caught, not shrunk
settings.register_profile("mutant", max_examples=15, derandomize=True,
                          phases=[Phase.explicit, Phase.reuse, Phase.generate], **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--jepa-backend",
        action="store",
        default=None,
        metavar="MODULE:ATTR",
        help=f"the backend under test, e.g. jepa_core.reference:backend (fallback: ${ENV_VAR})",
    )


def _load_backend(spec: str) -> Any:
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise pytest.UsageError(
            f"--jepa-backend={spec!r}: expected 'package.module:attribute', "
            "e.g. jepa_core.reference:backend"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise pytest.UsageError(f"--jepa-backend={spec!r}: cannot import {module_name!r} ({exc})") from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise pytest.UsageError(f"--jepa-backend={spec!r}: module {module_name!r} has no attribute {attr!r}") from None


def pytest_configure(config: pytest.Config) -> None:
    spec = config.getoption("--jepa-backend") or os.environ.get(ENV_VAR)
    if not spec:
        raise pytest.UsageError(
            "the law suite needs a backend: pass --jepa-backend=package.module:attr "
            f"(e.g. jepa_core.reference:backend) or set ${ENV_VAR}"
        )
    config.stash[_BACKEND_KEY] = _load_backend(spec)


def pytest_report_header(config: pytest.Config) -> list[str]:
    backend = config.stash[_BACKEND_KEY]
    lines = [f"jepa backend: {_name(backend)}"]
    missing = [f"{chapter}: no {member}" for member, chapter in OPTIONAL_CHAPTERS.items()
               if getattr(backend, member, None) is None]
    if missing:
        lines.append(f"chapters skipped: {'; '.join(missing)}")
    return lines


# A chapter whose Backend member is optional skips when the backend lacks it, and says so
# in the header and in the terminal summary: the suite never passes a chapter silently.
OPTIONAL_CHAPTERS = {"mask_sampler": "3 (masks)"}
_SKIPPED_KEY = pytest.StashKey[dict[str, str]]()  # chapter -> the line that says why


def _name(backend: Any) -> str:
    return str(getattr(backend, "name", type(backend).__name__))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    for line in config.stash.get(_SKIPPED_KEY, {}).values():
        terminalreporter.write_line(line, yellow=True, bold=True)


@pytest.fixture(scope="session")
def mask_sampler(backend: Any, pytestconfig: pytest.Config) -> Any:
    """``backend.mask_sampler`` (the API of ``jepa_core.masks``); without one chapter 3 skips, and says so."""
    found = getattr(backend, "mask_sampler", None)
    if found is None:
        chapter = OPTIONAL_CHAPTERS["mask_sampler"]
        line = f"chapter {chapter} skipped: backend {_name(backend)!r} has no mask_sampler"
        pytestconfig.stash.setdefault(_SKIPPED_KEY, {})[chapter] = line
        pytest.skip(line)
    return found


_BACKEND_KEY = pytest.StashKey[Any]()


@pytest.fixture(scope="session")
def backend(pytestconfig: pytest.Config) -> Any:
    """The backend object named by ``--jepa-backend``."""
    return pytestconfig.stash[_BACKEND_KEY]
