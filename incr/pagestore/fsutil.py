"""File-system helpers: private modes whatever the umask, durable writes.

The store holds a job's memory, secrets included, so every file is created
0600 and every directory 0700.  Modes are set explicitly after creation
(``fchmod``/``chmod``) rather than trusted to the creation mode, because a
umask can only remove bits and a caller's odd umask (say 0o277) must not leave
the store unwritable to its owner either.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import errno
import fcntl
import mmap
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


#: Bytes gathered before each direct write: whole pages of a buffer incr owns (O_DIRECT wants
#: the address, the length and the file offset aligned to the device's block).
DIRECT_CHUNK: Final = 2 << 20
DIRECT_ALIGN: Final = 4096


class AppendFile:
    """A new file written front to back, with O_DIRECT where the file system takes it.

    Why: a checkpoint writes its packs once and does not read them back, and
    copying them into the page cache cost more CPU than compressing them (the
    copy faults in a fresh page per 4 KiB on this VM: 1.7 s of system time per
    GiB buffered, 0.2 s direct).  Data is gathered in an aligned buffer, and
    each full chunk is written by a thread of the file's own while the next
    one fills (the writes of a 1 GiB checkpoint held its sink 0.7 s of the 5 s
    it took, compressing nothing meanwhile).  The last, unaligned bytes (and
    everything, where O_DIRECT is refused: tmpfs, some network file systems)
    go through the page cache.  An error of a chunk's write is raised by the
    next call.  ``finish()`` makes it all durable.  Not thread-safe.
    """

    def __init__(self, path: Path) -> None:
        self.fd = create_file(path)
        self._buf: mmap.mmap | None = None
        self._spare: mmap.mmap | None = None
        self._used = 0
        # The chunk being written: its buffer, its aligned length, the write's future.
        self._pending: tuple[mmap.mmap, int, concurrent.futures.Future[int]] | None = None
        self._writer: concurrent.futures.ThreadPoolExecutor | None = None
        try:
            fcntl.fcntl(self.fd, fcntl.F_SETFL, fcntl.fcntl(self.fd, fcntl.F_GETFL) | os.O_DIRECT)
        except OSError:
            return
        try:
            self._buf = mmap.mmap(-1, DIRECT_CHUNK)
        except BaseException:
            os.close(self.fd)
            raise

    @property
    def direct(self) -> bool:
        return self._buf is not None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._buf is None:
            self._wait()
            write_all(self.fd, data)
            return
        view = memoryview(data).cast("B")
        while view:
            n = min(len(view), DIRECT_CHUNK - self._used)
            self._buf[self._used : self._used + n] = view[:n]
            self._used += n
            view = view[n:]
            if self._used == DIRECT_CHUNK:
                self._flush()
                if self._buf is None:       # gone buffered
                    write_all(self.fd, view)
                    return

    def _flush(self) -> None:
        """Hand the aligned part of the buffer to the writer thread; go on in the spare buffer,
        the unaligned rest at its start."""
        assert self._buf is not None
        self._wait()
        if self._buf is None:               # the last chunk's write went buffered: so does this one
            return
        aligned = self._used - self._used % DIRECT_ALIGN
        full = self._buf
        self._buf = self._spare if self._spare is not None else mmap.mmap(-1, DIRECT_CHUNK)
        self._spare = None
        self._buf[: self._used - aligned] = full[aligned : self._used]
        self._used -= aligned
        if self._writer is None:
            self._writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="incr-pack-write")
        self._pending = (full, aligned, self._writer.submit(self._write_direct, full, aligned))

    def _write_direct(self, buf: mmap.mmap, aligned: int) -> int:
        """Write buf[:aligned] directly; how much was, short of `aligned` where the file system
        took the flag but not the write, or wrote short and unaligned (a full disk)."""
        done = 0
        with memoryview(buf) as whole:
            while done < aligned:
                try:
                    n = os.write(self.fd, whole[done:aligned])
                except OSError as e:
                    if e.errno != errno.EINVAL:
                        raise
                    return done
                done += n
                if n % DIRECT_ALIGN:
                    return done
        return done

    def _wait(self) -> None:
        """Wait for the chunk being written; where it was refused, go buffered from where it stopped."""
        if self._pending is None:
            return
        full, aligned, future = self._pending
        self._pending = None
        done = future.result()
        if done == aligned:
            self._spare = full
            return
        rest = full[done:aligned]               # a copy: what the refused write left, first
        with contextlib.suppress(BufferError):
            full.close()
        self._go_buffered(rest)

    def _go_buffered(self, first: bytes = b"") -> None:
        """Stop writing directly: `first`, then what the buffer holds, go through the page cache,
        as will everything after."""
        fcntl.fcntl(self.fd, fcntl.F_SETFL, fcntl.fcntl(self.fd, fcntl.F_GETFL) & ~os.O_DIRECT)
        write_all(self.fd, first)
        if self._buf is not None:
            buf, self._buf = self._buf, None
            write_all(self.fd, buf[: self._used])
            with contextlib.suppress(BufferError):
                buf.close()

    def finish(self) -> None:
        """Write what is buffered and fsync."""
        if self._buf is not None:
            self._flush()
        self._wait()
        if self._buf is not None:           # the unaligned tail
            self._go_buffered()
        os.fsync(self.fd)

    def close(self) -> None:
        try:
            if self._pending is not None:
                with contextlib.suppress(OSError):
                    self._pending[2].result()       # never close the descriptor under a write
                self._pending = None
        finally:
            if self._writer is not None:
                self._writer.shutdown(wait=True)
                self._writer = None
            for buf in (self._buf, self._spare):
                if buf is not None:
                    with contextlib.suppress(BufferError):
                        buf.close()
            self._buf = self._spare = None
            os.close(self.fd)
