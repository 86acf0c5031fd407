"""Netlink sockets (AF_NETLINK: route, uevent, generic, ...) of a job.  Dump and restore.

Dump, through each socket taken into incr (pidfd_getfd): its type and protocol, its port id and
the multicast groups it joined (getsockname, NETLINK_LIST_MEMBERSHIPS: bind(2)'s 32 and those
NETLINK_ADD_MEMBERSHIP added), the destination connect(2) gave it, and every option a program
can read back (SOL_SOCKET, SOL_NETLINK).  Refused: a message queued to be read (a kernel's
answer or an event: it cannot be put back), a protocol this kernel will not let incr open.

Restore: the socket is made by the first process that holds it, bound to its port id (which
the kernel had given it at its first bind or send: the restored process's PID then, as before,
or any free one it chose), its groups joined, connected, its options set.  A port id taken now
refuses the restore before anything is made (preflight).
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from incr.proto import image_pb2

from . import ptrace as pt
from . import unixsock
from .errors import RestoreError, Unsupported
from .remote import RemoteProcess
from .unixsock import Option

SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP, NETLINK_LIST_MEMBERSHIPS = 1, 9
_NETLINK = tuple(Option(name, number, level=SOL_NETLINK) for name, number in (
    ("NETLINK_PKTINFO", 3), ("NETLINK_BROADCAST_ERROR", 4), ("NETLINK_NO_ENOBUFS", 5),
    ("NETLINK_LISTEN_ALL_NSID", 8), ("NETLINK_CAP_ACK", 10), ("NETLINK_EXT_ACK", 11),
    ("NETLINK_GET_STRICT_CHK", 12)))
# SOL_SOCKET: what a netlink socket answers of Unix sockets' list (credentials pass as netlink's own).
_SOCKET = tuple(o for o in unixsock.OPTIONS if o.name in (
    "SO_SNDBUF", "SO_RCVBUF", "SO_PRIORITY", "SO_RCVLOWAT", "SO_RCVTIMEO", "SO_SNDTIMEO", "SO_MARK",
    "SO_PASSCRED", "SO_RXQ_OVFL", "SO_TIMESTAMP_OLD", "SO_TIMESTAMPNS_OLD"))
OPTIONS = (*_SOCKET, *_NETLINK)
BY_NAME = {o.name: o for o in OPTIONS}
PROTOCOLS = {0: "route", 2: "usersock", 4: "sock_diag", 9: "audit", 15: "uevent", 16: "generic"}


def is_netlink(pid: int, fd: int) -> bool:
    with _taken(pid, fd) as sock:
        return sock.family == socket.AF_NETLINK


@contextmanager
def _taken(pid: int, fd: int) -> Iterator[socket.socket]:
    pidfd = os.pidfd_open(pid)
    try:
        sock = socket.socket(fileno=pt.pidfd_getfd(pidfd, fd))
    finally:
        os.close(pidfd)
    try:
        yield sock
    finally:
        sock.close()


def _memberships(sock: socket.socket) -> list[int]:
    size = 32
    while True:
        raw = sock.getsockopt(SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, size)
        if len(raw) < size or size >= 1 << 16:
            break
        size *= 4
    words = struct.unpack(f"<{len(raw) // 4}I", raw[:len(raw) // 4 * 4])
    return [32 * i + bit + 1 for i, w in enumerate(words) for bit in range(32) if w >> bit & 1]


def capture(pid: int, fd: int, ino: int, label: str) -> image_pb2.NetlinkSocketImage:
    """Socket `ino`, descriptor `fd` of `pid` (the job frozen)."""
    with _taken(pid, fd) as sock:
        protocol = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL)
        what = f"{label} (netlink socket, {PROTOCOLS.get(protocol, f'protocol {protocol}')})"
        queued = struct.unpack_from("<I", sock.getsockopt(socket.SOL_SOCKET, unixsock.SO_MEMINFO, 9 * 4), 0)[0]
        if queued:
            raise Unsupported(pid, what, "messages wait to be read in it (an answer or events the kernel sent); "
                              "they cannot be put back: checkpoint once it is read")
        portid, _ = sock.getsockname()
        dst = sock.getpeername()
        img = image_pb2.NetlinkSocketImage(ino=ino, type=sock.type, protocol=protocol, portid=portid,
                                           groups=_memberships(sock), dst_portid=dst[0], dst_group=dst[1])
        img.options.extend(unixsock.read_options(sock, OPTIONS))
        img.owner.CopyFrom(unixsock.owner_of(sock))
    with contextlib.ExitStack() as stack:
        try:
            scratch = stack.enter_context(socket.socket(socket.AF_NETLINK, img.type, img.protocol))
        except OSError as exc:
            raise Unsupported(pid, what, f"incr cannot open a socket of its kind ({exc.strerror})") from None
        failed = (unixsock.set_options(scratch, img.options, buffers=True, by_name=BY_NAME)
                  or unixsock.set_options(scratch, img.options, buffers=False, by_name=BY_NAME))
    if failed:
        raise Unsupported(pid, what, f"socket option {failed}: incr cannot set it on a new socket; not supported")
    return img


def needs_version_8(image: image_pb2.TreeImage) -> bool:
    return bool(image.netlink_sockets)


# -- restore -----------------------------------------------------------------------------


def _ports_taken(protocol: int) -> set[int]:
    """Port ids of `protocol` sockets bound now (/proc/net/netlink: sk, Eth (protocol), Pid, ...)."""
    taken = set()
    with open("/proc/net/netlink", encoding="ascii") as f:
        next(f)
        for line in f:
            fields = line.split()
            if len(fields) > 2 and int(fields[1]) == protocol:
                taken.add(int(fields[2]))
    return taken


def preflight(tree: image_pb2.TreeImage) -> None:
    for img in tree.netlink_sockets:
        if img.portid and img.portid in _ports_taken(img.protocol):
            raise RestoreError(f"cannot restore the netlink socket ({PROTOCOLS.get(img.protocol, img.protocol)}) "
                               f"with port id {img.portid}: another socket has it now (the job still running?)")


class Maker:
    """Makes the job's netlink sockets during a restore (files.Installer), each in the first process
    that holds it."""

    def __init__(self, images: Iterable[image_pb2.NetlinkSocketImage]) -> None:
        self.images = {i.ino: i for i in images}

    def obtain(self, target: RemoteProcess, ino: int) -> int:
        """Socket `ino` made in `target`: its descriptor there."""
        img = self.images.get(ino)
        if img is None:
            raise RestoreError(f"cannot restore socket:[{ino}]: the checkpoint does not describe it")
        fd = target.call("socket", socket.AF_NETLINK, img.type, img.protocol)
        what = f"the netlink socket ({PROTOCOLS.get(img.protocol, img.protocol)}) of PID {target.vpid}"
        try:
            with _taken(target.pid, fd) as sock:
                failed = self._build(sock, img)
        except OSError as exc:
            raise RestoreError(f"cannot restore {what}: {exc.strerror}") from None
        if failed:
            raise RestoreError(f"cannot restore {what}: socket option {failed}")
        return int(fd)

    @staticmethod
    def _build(sock: socket.socket, img: image_pb2.NetlinkSocketImage) -> str:
        """The socket bound, joined, connected; the option that did not come out as recorded ("")."""
        failed = (unixsock.set_options(sock, img.options, buffers=True, by_name=BY_NAME)
                  or unixsock.set_options(sock, img.options, buffers=False, by_name=BY_NAME))
        if failed:
            return failed
        if img.HasField("owner"):
            unixsock.give_owner(sock, img.owner)
        if img.portid:
            sock.bind((img.portid, 0))
        for group in img.groups:
            sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group)
        if img.dst_portid or img.dst_group:
            sock.connect((img.dst_portid, img.dst_group))
        return ""
