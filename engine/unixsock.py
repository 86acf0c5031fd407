"""Unix socket pairs between processes of a tree, with the data queued in them.
Dump and restore.

Which socket is whose peer comes from sock_diag (NETLINK_SOCK_DIAG, the
interface `ss` uses).  Dump (every process frozen): each end's queued data is
read through that end, taken into incr with pidfd_getfd, and sent straight
back through its peer, message by message for datagram and seqpacket
sockets: the job finds its queues as they were.  Restore: the pair is created
(an injected socketpair) in the first process that holds an end, refilled
from incr through stolen ends, and handed to the other holders.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from incr.proto import image_pb2

from . import ptrace as pt
from .errors import EngineError, Unsupported
from .pipes import stolen
from .remote import RemoteProcess

NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY = 4, 20
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
UDIAG_SHOW_NAME, UDIAG_SHOW_PEER, UDIAG_SHOW_SHUTDOWN = 0x1, 0x4, 0x100
UNIX_DIAG_NAME, UNIX_DIAG_PEER, UNIX_DIAG_SHUTDOWN = 0, 2, 6
_NLMSG = struct.Struct("<IHHII")
_REQ = struct.Struct("<BBHIIIII")
_MSG = struct.Struct("<BBBBIII")
TYPES = {socket.SOCK_STREAM: "stream", socket.SOCK_DGRAM: "datagram", socket.SOCK_SEQPACKET: "seqpacket"}


@dataclass
class UnixInfo:
    ino: int
    type: int
    peer: int
    name: bytes
    shutdown: int


def unix_sockets() -> dict[int, UnixInfo]:
    """Every Unix socket of the system (this network namespace), by inode."""
    out: dict[int, UnixInfo] = {}
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as nl:
        req = _REQ.pack(socket.AF_UNIX, 0, 0, 0xFFFFFFFF, 0, UDIAG_SHOW_NAME | UDIAG_SHOW_PEER | UDIAG_SHOW_SHUTDOWN,
                        0xFFFFFFFF, 0xFFFFFFFF)
        nl.send(_NLMSG.pack(_NLMSG.size + len(req), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, 1, 0) + req)
        while True:
            data = nl.recv(1 << 16)
            pos = 0
            while pos < len(data):
                length, kind, _, _, _ = _NLMSG.unpack_from(data, pos)
                if kind == NLMSG_DONE:
                    return out
                if kind == NLMSG_ERROR:
                    raise EngineError("sock_diag refused the Unix socket dump")
                body = data[pos + _NLMSG.size:pos + length]
                _, stype, _, _, ino, _, _ = _MSG.unpack_from(body)
                info = UnixInfo(ino=ino, type=stype, peer=0, name=b"", shutdown=0)
                at = _MSG.size
                while at + 4 <= len(body):
                    alen, atype = struct.unpack_from("<HH", body, at)
                    value = body[at + 4:at + alen]
                    if atype == UNIX_DIAG_PEER:
                        info.peer = struct.unpack_from("<I", value)[0]
                    elif atype == UNIX_DIAG_NAME:
                        info.name = value
                    elif atype == UNIX_DIAG_SHUTDOWN:
                        info.shutdown = value[0]
                    at += (alen + 3) & ~3
                out[ino] = info
                pos += (length + 3) & ~3


def _drain(sock: socket.socket, stype: int) -> list[bytes]:
    """Every queued message (or, for a stream, the queued bytes as one)."""
    msgs: list[bytes] = []
    while True:
        try:
            data, ancdata, _, _ = sock.recvmsg(1 << 20, socket.CMSG_SPACE(64 * 4), socket.MSG_DONTWAIT)
        except BlockingIOError:
            break
        if ancdata:
            raise EngineError("descriptors or credentials in flight")
        if not data and stype == socket.SOCK_STREAM:
            break
        msgs.append(data)
    if stype == socket.SOCK_STREAM and msgs:
        return [b"".join(msgs)]
    return msgs


@contextmanager
def _socket_of(pid: int, fd: int) -> Iterator[socket.socket]:
    """Descriptor `fd` of process `pid` as a socket object of incr's (same socket)."""
    with stolen(pid, fd) as mine:
        sock = socket.socket(fileno=os.dup(mine))
        try:
            yield sock
        finally:
            sock.close()


def _send(sock: socket.socket, stype: int, msgs: Iterable[bytes]) -> None:
    for msg in msgs:
        if stype == socket.SOCK_STREAM:
            sock.sendall(msg)
        else:
            sock.send(msg)


def capture(pid: int, what: str, a: tuple[int, int, int], b: tuple[int, int, int],
            stype: int) -> image_pb2.SocketPairImage:
    """Queues of the pair whose ends are (pid, fd, ino) `a` and `b`; each put back through its peer."""
    with _socket_of(a[0], a[1]) as sa, _socket_of(b[0], b[1]) as sb:
        try:
            queue_a, queue_b = _drain(sa, stype), _drain(sb, stype)
        except EngineError as exc:
            raise Unsupported(pid, what, f"{exc}: not supported yet") from None
        _send(sb, stype, queue_a)               # what a had queued arrives from b
        _send(sa, stype, queue_b)
    return image_pb2.SocketPairImage(ino_a=a[2], ino_b=b[2], type=stype, queue_a=queue_a, queue_b=queue_b)


def create(target: RemoteProcess, pair: image_pb2.SocketPairImage) -> tuple[int, int]:
    """A new socket pair in `target`, its queues refilled: (fd of end a, fd of end b) there."""
    at = target.put(bytes(8))
    target.call("socketpair", socket.AF_UNIX, pair.type, 0, at)
    buf = bytearray(8)
    pt.vm_read_into(target.pid, [(at, 8)], buf)
    fa, fb = struct.unpack("<ii", buf)
    with _socket_of(target.pid, fa) as sa, _socket_of(target.pid, fb) as sb:
        _send(sb, pair.type, pair.queue_a)
        _send(sa, pair.type, pair.queue_b)
    return fa, fb
