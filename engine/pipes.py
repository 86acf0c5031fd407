"""Pipes between processes of a tree, with the bytes buffered in them.  Dump and restore.

Dump (every process frozen): one end of each pipe is taken into incr with
pidfd_getfd, the buffered bytes are read (FIONREAD says how many, so a
blocking read never blocks) and written straight back in order, through the
other end: the job finds its pipe as it was.  Restore: the pipe is created in
the first process that holds an end (an injected pipe2), filled from incr
through a stolen write end, and handed to the other holders (files.Installer).

Packet mode (a write end with O_DIRECT: each write one packet, each read at most
one) keeps its packets where they were: each is read and written back on its
own, through a description of incr's own opened O_DIRECT.  The image holds bytes
only, so a pipe or FIFO with packets queued is refused, naming them.
"""

from __future__ import annotations

import fcntl
import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from incr.proto import image_pb2

from . import ptrace as pt
from .errors import EngineError, Unsupported
from .remote import RemoteProcess

FIONREAD = 0x541B
F_SETPIPE_SZ, F_GETPIPE_SZ = 1031, 1032
O_ACCMODE = 0o3


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


def capture(ino: int, reader: tuple[int, int], writer: tuple[int, int]) -> image_pb2.PipeImage:
    """The contents of pipe `ino`, read through (pid, fd) `reader` and put back through `writer`."""
    with stolen(*reader) as r, stolen(*writer) as w:
        chunks = read_back(r, w, f"pipe:[{ino}]")
        capacity = fcntl.fcntl(r, F_GETPIPE_SZ)
    refuse_packets(reader[0], f"fd {reader[1]} (pipe:[{ino}])", chunks)
    return image_pb2.PipeImage(ino=ino, data=b"".join(chunks.data), capacity=capacity)


@dataclass
class Chunks:
    """What a pipe held, in the pieces reads returned: one per packet in packet mode."""

    data: list[bytes]
    packets: bool


def refuse_packets(pid: int, what: str, chunks: Chunks) -> None:
    if chunks.packets and chunks.data:
        n = len(chunks.data)
        raise Unsupported(pid, what, f"{n} packet{'s' if n > 1 else ''} queued in packet mode (O_DIRECT): "
                          "their boundaries cannot be restored yet")


def queued(fd: int) -> int:
    """Bytes buffered in the pipe or FIFO `fd` is an end of."""
    return int(struct.unpack("i", fcntl.ioctl(fd, FIONREAD, b"\0\0\0\0"))[0])


def read_back(r: int, w: int, what: str) -> Chunks:
    """Everything buffered, read through `r` and written straight back in order through `w`
    (FIONREAD says how much, so no read blocks).  A read that returns less than is left has
    met the end of a packet: then (or with O_DIRECT on `w`) each piece goes back as a packet."""
    size = queued(r)
    chunks: list[bytes] = []
    got = 0
    while got < size:
        try:
            chunk = os.read(r, size - got)
        except BlockingIOError:
            chunk = b""
        if not chunk:
            raise EngineError(f"{what} emptied while the job was frozen")
        chunks.append(chunk)
        got += len(chunk)
    flags = fcntl.fcntl(w, fcntl.F_GETFL)
    packets = len(chunks) > 1 or bool(flags & os.O_DIRECT)
    if not packets:
        refill(w, b"".join(chunks), 0)
        return Chunks(chunks, packets=False)
    # Only an anonymous pipe's own ends take O_DIRECT (a FIFO or a /proc reopening refuses it), so
    # packets go back through the job's write end; one whose O_DIRECT the job cleared after writing
    # them gets it for the while (the job is frozen).
    if not flags & os.O_DIRECT:
        fcntl.fcntl(w, fcntl.F_SETFL, flags | os.O_DIRECT)
    try:
        for chunk in chunks:
            if os.write(w, chunk) != len(chunk):
                raise EngineError(f"{what}: a packet could not be put back whole")
    finally:
        if not flags & os.O_DIRECT:
            fcntl.fcntl(w, fcntl.F_SETFL, flags)
    return Chunks(chunks, packets=True)


def refill(w: int, data: bytes, capacity: int) -> None:
    """`data` into an empty pipe through its write end `w`, its capacity first (0: as it is)."""
    if capacity and fcntl.fcntl(w, F_GETPIPE_SZ) != capacity:
        fcntl.fcntl(w, F_SETPIPE_SZ, capacity)
    put = 0
    while put < len(data):
        put += os.write(w, data[put:])


def create(target: RemoteProcess, pipe: image_pb2.PipeImage) -> tuple[int, int]:
    """A new pipe in `target`, with the dumped capacity and contents: (read fd, write fd) there."""
    at = target.put(bytes(8))
    target.call("pipe2", at, 0)
    rfd, wfd = struct.unpack("<ii", _read(target, at, 8))
    with stolen(target.pid, wfd) as w:
        refill(w, pipe.data, pipe.capacity)
    return rfd, wfd


def _read(target: RemoteProcess, addr: int, size: int) -> bytes:
    buf = bytearray(size)
    pt.vm_read_into(target.pid, [(addr, size)], buf)
    return bytes(buf)
