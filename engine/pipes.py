"""Pipes between processes of a tree, with the bytes buffered in them.  Dump and restore.

Dump (every process frozen): one end of each pipe is taken into incr with
pidfd_getfd, the buffered bytes are read (FIONREAD says how many, so a
blocking read never blocks) and written straight back in order, through the
other end: the job finds its pipe as it was.  Restore: the pipe is created in
the first process that holds an end (an injected pipe2), filled from incr
through a stolen write end, and handed to the other holders (files.Installer).

A widowed pipe (every process closed one of its ends; the tree holds the other)
is inside the job all the same: poll(2) on the end held tells that no end of the
other kind is open anywhere (POLLHUP on a read end, POLLERR on a write end), with
no scan of /proc.  Its bytes are copied without being consumed (tee(2) into a
pipe of incr's own, through the read end: the job's, or one incr opens through
/proc); restored, the pipe is created, filled, and the other end closed.

Every pipe's and FIFO's bytes are read so, never consumed: a SIGKILLed incr
cannot lose one.  Packet mode (a write end with O_DIRECT: each write one
packet, each read at most one) survives tee(2), so the copy's reads tell the
packets; the image keeps their sizes and the restore writes each on its own
through the new write end, O_DIRECT for the while.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import select
import struct
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from incr.proto import image_pb2

from . import ptrace as pt
from .errors import EngineError
from .remote import RemoteProcess

FIONREAD = 0x541B
F_SETPIPE_SZ, F_GETPIPE_SZ = 1031, 1032
O_ACCMODE = 0o3
SPLICE_F_NONBLOCK = 0x2
_libc = ctypes.CDLL(None, use_errno=True)
_libc.tee.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_size_t, ctypes.c_uint]
_libc.tee.restype = ctypes.c_ssize_t


@contextmanager
def stolen(pid: int, fd: int) -> Iterator[int]:
    """Descriptor `fd` of process `pid`, as a descriptor of incr's own (same open file description)."""
    pidfd = os.pidfd_open(pid)
    try:
        mine = pt.pidfd_getfd(pidfd, fd)
    finally:
        os.close(pidfd)
    try:
        yield mine
    finally:
        os.close(mine)


def capture(ino: int, reader: tuple[int, int]) -> image_pb2.PipeImage:
    """The contents of pipe `ino`, duplicated (tee) through its read end (pid, fd) `reader`, left in place."""
    with stolen(*reader) as r:
        capacity = fcntl.fcntl(r, F_GETPIPE_SZ)
        chunks = duplicate(r, capacity, f"pipe:[{ino}]")
    return chunks.image(ino=ino, capacity=capacity)


def other_end_closed(pid: int, fd: int, end: int) -> bool:
    """Whether no end but `end`s (O_RDONLY or O_WRONLY) of the pipe that fd `fd` of `pid` is one of is
    open anywhere: not in a process, not in flight in a Unix socket message."""
    with stolen(pid, fd) as mine:
        poller = select.poll()
        poller.register(mine, 0)            # POLLHUP and POLLERR are always reported
        revents = dict(poller.poll(0)).get(mine, 0)
    return bool(revents & (select.POLLHUP if end == os.O_RDONLY else select.POLLERR))


def capture_widowed(ino: int, holder: tuple[int, int], end: int) -> image_pb2.PipeImage:
    """The contents of pipe `ino` whose only open ends are `end`s, held by (pid, fd) `holder` and
    others of the tree: duplicated (tee), never consumed, through its read end."""
    pid, fd = holder
    with stolen(pid, fd) as held, contextlib.ExitStack() as stack:
        if end == os.O_RDONLY:
            r = held
        else:   # a read end of incr's own, for the while (the pipe can be reopened through /proc)
            r = os.open(f"/proc/{pid}/fd/{fd}", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            stack.callback(os.close, r)
        capacity = fcntl.fcntl(r, F_GETPIPE_SZ)
        chunks = duplicate(r, capacity, f"pipe:[{ino}]")
    return chunks.image(ino=ino, capacity=capacity, widowed=True)


def duplicate(r: int, capacity: int, what: str) -> Chunks:
    """What pipe read end `r` holds, left in place: tee(2) into a pipe of incr's own as big, then read
    from there (a packet stays a packet: each read returns one)."""
    size = queued(r)
    if not size:
        return Chunks([], packets=False)
    sr, sw = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        fcntl.fcntl(sw, F_SETPIPE_SZ, capacity)
        got = _libc.tee(r, sw, size, SPLICE_F_NONBLOCK)
        if got != size:
            err = ctypes.get_errno() if got < 0 else 0
            raise EngineError(f"{what}: its {size} bytes could not be copied ({os.strerror(err) if err else got})")
        chunks = []
        while got > 0:
            chunk = os.read(sr, got)
            chunks.append(chunk)
            got -= len(chunk)
        return Chunks(chunks, packets=len(chunks) > 1)
    finally:
        os.close(sr)
        os.close(sw)


@dataclass
class Chunks:
    """What a pipe held, in the pieces reads returned: one per packet in packet mode."""

    data: list[bytes]
    packets: bool

    def image(self, **fields: int | bool) -> image_pb2.PipeImage:
        img = image_pb2.PipeImage(data=b"".join(self.data), **fields)   # type: ignore[arg-type]
        if self.packets:
            img.packets.extend(len(c) for c in self.data)
        return img


def queued(fd: int) -> int:
    """Bytes buffered in the pipe or FIFO `fd` is an end of."""
    return int(struct.unpack("i", fcntl.ioctl(fd, FIONREAD, b"\0\0\0\0"))[0])


def refill(w: int, data: bytes, capacity: int, packets: Sequence[int] = ()) -> None:
    """`data` into an empty pipe through its write end `w`, its capacity first (0: as it is); in
    `packets` of those sizes when there are any (through `w` in packet mode for the while)."""
    if capacity and fcntl.fcntl(w, F_GETPIPE_SZ) != capacity:
        fcntl.fcntl(w, F_SETPIPE_SZ, capacity)
    if packets:
        flags = fcntl.fcntl(w, fcntl.F_GETFL)
        fcntl.fcntl(w, fcntl.F_SETFL, flags | os.O_DIRECT)
        try:
            at = 0
            for size in packets:
                if os.write(w, data[at:at + size]) != size:
                    raise EngineError(f"a packet of {size} bytes could not be written whole into a pipe")
                at += size
        finally:
            fcntl.fcntl(w, fcntl.F_SETFL, flags)
        return
    put = 0
    while put < len(data):
        put += os.write(w, data[put:])


def create(target: RemoteProcess, pipe: image_pb2.PipeImage) -> tuple[int, int]:
    """A new pipe in `target`, with the dumped capacity and contents: (read fd, write fd) there."""
    at = target.put(bytes(8))
    target.call("pipe2", at, 0)
    rfd, wfd = struct.unpack("<ii", _read(target, at, 8))
    with stolen(target.pid, wfd) as w:
        refill(w, pipe.data, pipe.capacity, pipe.packets)
    return rfd, wfd


def create_widowed(target: RemoteProcess, pipe: image_pb2.PipeImage, end: int) -> int:
    """A new pipe in `target` like create(), with only its `end` left open: that fd there."""
    rfd, wfd = create(target, pipe)
    mine, other = (rfd, wfd) if end == os.O_RDONLY else (wfd, rfd)
    target.call("close", other)
    return mine


def _read(target: RemoteProcess, addr: int, size: int) -> bytes:
    buf = bytearray(size)
    pt.vm_read_into(target.pid, [(addr, size)], buf)
    return bytes(buf)
