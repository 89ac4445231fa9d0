"""The law suite skips a chapter whose optional Backend member is missing, and says so plainly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from jepa_core.reference import ReferenceBackend

ROOT = Path(__file__).resolve().parents[1]


class NoMaskSampler(ReferenceBackend):
    """The reference backend without a mask sampler (a model-only backend)."""

    name = "no mask sampler"
    mask_sampler = None


backend = NoMaskSampler()


def test_a_backend_without_mask_sampler_skips_chapter_3_and_says_so() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "properties/test_masks.py", f"--jepa-backend={__name__}:backend",
         "-p", "no:cacheprovider", "-o", "addopts="],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "chapters skipped: 3 (masks): no mask_sampler" in result.stdout, result.stdout
    assert "chapter 3 (masks) skipped: backend 'no mask sampler' has no mask_sampler" in result.stdout, result.stdout
