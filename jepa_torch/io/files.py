"""Atomic file writes: a reader never sees a half-written file, and a failed write keeps the old one.

Every file the project writes for keeps (checkpoints, exported weights, configs, the run log) goes
through :func:`atomic_write`: the bytes go to a temporary file in the destination's folder, which is
flushed and fsynced, renamed over the destination with ``os.replace`` (atomic on POSIX and
Windows), and the folder is fsynced so the rename survives a power cut. The file gets the permissions
an ordinary ``open`` would give it (``0o666`` less the umask), not ``mkstemp``'s private ``0o600``, so a
colleague can read a run's weights wherever the umask lets them.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["WriteError", "atomic_write", "describe_os_error", "file_mode"]


class WriteError(OSError):
    """Writing a file failed (no folder, a full disk, no permission); the message names the file and the fix."""


_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_DENIED = {errno.EACCES, errno.EPERM}


def os_error_cause(exc: OSError, folder: str | os.PathLike[str] | None = None) -> tuple[str, str]:
    """``(cause, fix)`` of a failed file operation, for the cause that occurred: a full disk (or quota),
    a missing permission, a read-only file system, a missing folder, a file where a folder should be;
    else the system's own words and a general fix. ``folder``: where the write went, for the fix."""
    where = f" on {os.fspath(folder)}" if folder is not None else ""
    code = exc.errno
    if code in _FULL:
        return ("no space left on the device" if code == errno.ENOSPC else "disk quota exceeded",
                "free disk space or write elsewhere")
    if code in _DENIED:
        return "permission denied", f"give this user write permission{where} or write elsewhere"
    if code == errno.EROFS:
        return "read-only file system", "write elsewhere"
    if code == errno.ENOENT:
        return "no such file or folder", "check the path (a folder of it may have been moved or deleted)"
    if code == errno.ENOTDIR:
        return "a part of the path is a file, not a folder", "check the path"
    return (exc.strerror or type(exc).__name__), "check the path and the disk"


def describe_os_error(exc: OSError) -> str:
    """One line for a failed file operation: what failed, on which file, why, and the fix for that cause."""
    if isinstance(exc, WriteError):  # already one line with its own fix
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    name = exc.filename
    folder = None if name is None else Path(os.fsdecode(name)).parent
    cause, fix = os_error_cause(exc, folder)
    what = f"{os.fsdecode(name)!r}: " if name is not None else ""
    return f"{what}{cause}; {fix}, then rerun"


def _umask() -> int:
    """The process's umask, read without changing it where the kernel reports it (Linux >= 4.7)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: read it by setting it, and put it straight back
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode a new file gets from ``open``: ``0o666`` less the umask."""
    return 0o666 & ~_umask()


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], object], *,
                 error: type[WriteError] = WriteError) -> None:
    """Write ``path`` through ``write(binary_file)`` atomically.

    Args:
        path: the destination; its folder must exist.
        write: writes the whole content to the open binary file it is given.
        error: the :class:`WriteError` subclass to raise (e.g. the checkpoint module's).

    Raises:
        WriteError: (or ``error``) the folder is missing, or an ``OSError`` while writing; one line naming
            the file. The temporary file is removed and an existing file at ``path`` is left as it was.
    """
    dest = Path(path)
    if not dest.parent.is_dir():
        raise error(f"cannot write {dest}: folder {dest.parent} does not exist; create it first")
    tmp = ""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
        if hasattr(os, "fchmod"):  # not on Windows before Python 3.13
            os.fchmod(fd, file_mode())  # mkstemp makes it 0o600
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException as exc:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, WriteError):
            cause, fix = os_error_cause(exc, dest.parent)
            failure = error(f"cannot write {dest} ({cause}); nothing under that name was changed; {fix}, then rerun")
            failure.errno = exc.errno
            raise failure from exc
        raise
    dir_fd = os.open(dest.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
