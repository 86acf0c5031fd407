"""Named FIFOs open in a tree, with the bytes buffered in them.  Dump and restore.

Every process that has a FIFO open must be in the tree: an outsider's bytes
or its hold on the buffer would outlive the job and be doubled or lost.
Dump (tree frozen): incr opens the FIFO itself O_RDWR (never blocks, and
is reader and writer at once), reads what is buffered and writes it straight
back.  Restore: the FIFO must exist at its path again (it is the user's
file); incr opens it O_RDWR, refills it, and keeps it open until every
process has reopened its descriptions by path -- so that no open blocks
waiting for the other end, and the buffer is not dropped in between.
"""

from __future__ import annotations

import fcntl
import os
import stat

from incr.proto import image_pb2

from .errors import RestoreError, Unsupported
from .pipes import F_GETPIPE_SZ, duplicate, queued, refill

_NONBLOCKING_BOTH_ENDS = os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC

Key = tuple[int, int]                # (device, inode) of the FIFO's file


def key_of(f: image_pb2.OpenFile) -> Key:
    return f.file.dev, f.file.ino


def capture(holder: tuple[int, int], key: Key) -> image_pb2.PipeImage:
    """The contents of a FIFO, reached through descriptor `holder` (pid, fd) of a holder, left in place."""
    pid, n = holder
    link = f"/proc/{pid}/fd/{n}"
    fd = os.open(link, _NONBLOCKING_BOTH_ENDS)
    try:
        capacity = fcntl.fcntl(fd, F_GETPIPE_SZ)
        chunks = duplicate(fd, capacity, f"the FIFO behind {link}")
    finally:
        os.close(fd)
    if chunks.packets:      # (only an anonymous pipe's own ends take O_DIRECT: not seen here)
        raise Unsupported(pid, f"fd {n} (FIFO {os.readlink(link)})", "packets queued in a FIFO; not supported")
    return chunks.image(dev=key[0], ino=key[1], capacity=capacity)


def preflight(f: image_pb2.OpenFile) -> None:
    try:
        st = os.stat(f.path)
    except OSError as exc:
        raise RestoreError(f"cannot restore: the named FIFO {f.path}, open in the job, is not accessible "
                           f"({exc.strerror}); create it again (mkfifo {f.path})") from None
    if not stat.S_ISFIFO(st.st_mode):
        raise RestoreError(f"cannot restore: {f.path} was a named FIFO in the job and is no longer one")
    fd = os.open(f.path, _NONBLOCKING_BOTH_ENDS)
    try:
        waiting = queued(fd)
    finally:
        os.close(fd)
    if waiting:
        raise RestoreError(f"cannot restore: the named FIFO {f.path} already holds {waiting} bytes, from "
                           "a process outside the job that has it open; end that process first")


class Keepers:
    """incr's own O_RDWR descriptor of each FIFO being restored, refilled once."""

    def __init__(self, fifos: list[image_pb2.PipeImage]) -> None:
        self.contents = {(p.dev, p.ino): p for p in fifos}
        self.open: dict[Key, int] = {}

    def ensure(self, f: image_pb2.OpenFile, path: str) -> None:
        """The FIFO of `f`, at `path`, held open by incr, with its dumped capacity and contents."""
        key = key_of(f)
        if key in self.open:
            return
        fd = os.open(path, _NONBLOCKING_BOTH_ENDS)
        self.open[key] = fd
        dumped = self.contents.get(key, image_pb2.PipeImage())
        refill(fd, dumped.data, dumped.capacity)

    def close(self) -> None:
        for fd in self.open.values():
            os.close(fd)
        self.open.clear()
