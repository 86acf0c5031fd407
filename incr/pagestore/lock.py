"""The store's write lock: an exclusive ``flock`` on ``STORE/locks/write``.

One writer at a time per store (snapshot writers, and later gc).  Readers
never take it: they only read immutable files and LMDB, which has its own
reader protocol.  ``flock`` locks belong to an open file description, so two
writers in one process (each opening the file) exclude each other like two
processes do, and the kernel drops the lock when its holder dies, SIGKILL
included: there is no stale lock to break.  A forked child inherits the
description, hence the lock: fork with a writer open only to exec.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from pathlib import Path

from .errors import StoreLocked
from .fsutil import FILE_MODE

log = logging.getLogger("incr.pagestore")


class WriteLock:
    """Holder of the store's write lock; ``acquire`` once, ``release`` once."""

    def __init__(self, path: Path, store_path: Path) -> None:
        self.path = path
        self._store_path = store_path
        self._fd: int | None = None
        self._key = (0, 0, 0)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def _holder(self, fd: int) -> str:
        # The holder writes its pid after locking: a reader may see it empty in between.
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        if not text.isdigit():
            return "unknown"
        if not os.path.exists(f"/proc/{text}"):
            # The lock is an open file description's: a child the writer forked holds it still.
            return f"{text}, which has exited; a process it started holds the lock"
        return text

    def acquire(self, *, wait: bool = True) -> None:
        """Take the lock: try at once; if held, fail (``wait=False``) or log who holds it and block.

        RuntimeError if the calling thread already holds this store's lock:
        it would wait for itself forever.
        """
        assert self._fd is None, "lock already held"
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        try:
            st = os.fstat(fd)
            key = (st.st_dev, st.st_ino, threading.get_ident())
            with _HELD_LOCK:
                if key in _HELD:
                    raise RuntimeError(
                        f"this thread already has an open writer on store {self._store_path}; "
                        "commit or abort it first"
                    )
            os.fchmod(fd, FILE_MODE)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = self._holder(fd)
                if not wait:
                    raise StoreLocked(self._store_path, holder) from None
                log.warning("waiting for the store lock held by pid %s", holder)
                fcntl.flock(fd, fcntl.LOCK_EX)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._key = key
        with _HELD_LOCK:
            _HELD.add(key)

    def release(self) -> None:
        """Drop the lock; harmless if not held."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with _HELD_LOCK:
            _HELD.discard(self._key)
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)


# (device, inode of the lock file, thread) of every write lock held in this process.
_HELD: set[tuple[int, int, int]] = set()
_HELD_LOCK = threading.Lock()
