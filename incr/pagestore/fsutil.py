"""File-system helpers: private modes whatever the umask, durable writes.

The store holds a job's memory, secrets included, so every file is created
0600 and every directory 0700.  Modes are set explicitly after creation
(``fchmod``/``chmod``) rather than trusted to the creation mode, because a
umask can only remove bits and a caller's odd umask (say 0o277) must not leave
the store unwritable to its owner either.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Final

FILE_MODE: Final = 0o600
DIR_MODE: Final = 0o700
TMP_SUFFIX: Final = ".tmp"


def make_dir(path: Path) -> bool:
    """Create ``path`` with mode 0700; return False if it already existed (its mode is left alone)."""
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:
        return False
    os.chmod(path, DIR_MODE)
    return True


def fsync_dir(path: Path) -> None:
    """Make the entries of directory ``path`` (creations, renames) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def create_file(path: Path) -> int:
    """Create ``path`` exclusively, mode 0600, and return a write-only fd."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    """``write(2)`` until all of ``data`` is written (short writes happen on signals and full disks)."""
    view = memoryview(data).cast("B")
    while view:
        n = os.write(fd, view)
        view = view[n:]


def temp_name(directory: Path, stem: str = "") -> Path:
    """A fresh ``*.tmp`` name in ``directory``; writers remove stale ones under the write lock."""
    return directory / f"{stem or secrets.token_hex(16)}{TMP_SUFFIX}"


def write_durable(tmp: Path, data: bytes) -> None:
    """Write ``data`` to the new file ``tmp`` (0600) and fsync it; the caller renames it into place."""
    fd = create_file(tmp)
    try:
        write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_file(path: Path) -> bytes:
    """Whole content of a (small) file."""
    with open(path, "rb") as f:
        return f.read()
