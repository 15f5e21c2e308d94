"""Replacing a file atomically: a reader sees the old content or the new one, never a mix.

The new content goes to a temporary file in the *same directory* as the target, is flushed to
disk (``fsync``), and is renamed over the target (``os.replace``, atomic within one
filesystem); the directory is then flushed too, so the rename survives a crash. ldactl creates
its temporary file in the system temporary directory (``tempfile::NamedTempFile::new()`` in
tarqd/ldactl ``ldactl/src/main.rs``), so its rename fails (``EXDEV``) whenever the target is on
another filesystem (a container volume, a Kubernetes mount), and it does not ``fsync``.

The temporary file is created with its final mode (``os.open`` with ``mode``), never widened
and narrowed afterwards: a file holding keys is never readable by others, not even for an
instant.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def write_file_atomically(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data``, atomically, the file created with ``mode``.

    Blocking: run it in a thread from async code.

    :raises OSError: when the directory is missing or not writable, the disk is full, ...; the
        target is then unchanged and no temporary file is left behind.
    """
    target = Path(path)
    directory = target.parent
    # Hidden, unique, and in the target's directory: same filesystem, so the rename is atomic.
    temporary = directory / f".{target.name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: Path) -> None:
    """Flush the directory entry of the rename (where the platform allows opening a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # e.g. Windows: no directory handles; the rename is done regardless
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on a directory; the data itself is on disk
    finally:
        os.close(fd)
