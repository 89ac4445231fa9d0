"""The one atomic-write helper: all or nothing under the destination's name."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import BinaryIO

import pytest

from jepa_torch.io.files import WriteError, atomic_write


def test_writes_the_whole_content_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    dest = tmp_path / "a.bin"
    atomic_write(dest, lambda f: f.write(b"new"))
    assert dest.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_a_failing_write_keeps_the_old_file_and_names_it(tmp_path: Path) -> None:
    dest = tmp_path / "a.bin"
    dest.write_bytes(b"old")

    def full_disk(f: BinaryIO) -> None:
        f.write(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(WriteError, match=r"cannot write .*a\.bin \(no space left on the device\)") as info:
        atomic_write(dest, full_disk)
    assert info.value.errno == errno.ENOSPC
    assert dest.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_a_missing_folder_is_one_line_naming_it(tmp_path: Path) -> None:
    with pytest.raises(WriteError, match="does not exist; create it first"):
        atomic_write(tmp_path / "nowhere" / "a.bin", lambda f: f.write(b"x"))


def test_a_bug_in_the_writer_is_not_disguised(tmp_path: Path) -> None:
    def buggy(f: BinaryIO) -> None:
        raise KeyError("state")

    with pytest.raises(KeyError):
        atomic_write(tmp_path / "a.bin", buggy)
    assert list(tmp_path.iterdir()) == []
