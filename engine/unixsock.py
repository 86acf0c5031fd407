"""Unix socket pairs between processes of a tree, with the data queued in them.
Dump and restore.

Which socket is whose peer comes from sock_diag (NETLINK_SOCK_DIAG, the
interface `ss` uses).  Dump (every process frozen): each end's queued data is
read through that end, taken into incr with pidfd_getfd, and sent straight
back through its peer, message by message for datagram and seqpacket
sockets: the job finds its queues as they were.  Restore: the pair is created
(an injected socketpair), refilled from incr through stolen ends, and handed
to the processes that hold its ends.

SO_PEERCRED (and SO_PEERGROUPS) of both ends name the process that called
socketpair() and its effective user and group ids and groups at that moment:
the kernel takes them from the calling thread then, and nothing sets them
later.  So the restored pair is created by the process of the job with that
PID, its effective ids switched to the recorded ones for the call (the stubs
are still root: they switch back, and their dumpable flag, which the switch
clears, is put back), or, when that process had exited, by a brief helper
with its PID (Stub.fork_sibling) and those ids; the pair is then taken over by
the first process that holds an end.  Refused at the checkpoint: a pair whose
creator is a zombie of the job (its PID is the zombie's), alive outside the
job (no restore can make that very process the creator), or in another PID
namespace; refused at the restore, before anything is created: one whose
exited creator's PID is taken now (--new-pidns makes it free).
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from incr.proto import image_pb2

from . import proc
from . import ptrace as pt
from .errors import EngineError, PidTaken, RestoreError, Unsupported
from .pipes import stolen
from .remote import RemoteProcess, Stub

NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY = 4, 20
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
UDIAG_SHOW_NAME, UDIAG_SHOW_PEER, UDIAG_SHOW_SHUTDOWN = 0x1, 0x4, 0x100
UNIX_DIAG_NAME, UNIX_DIAG_PEER, UNIX_DIAG_SHUTDOWN = 0, 2, 6
_NLMSG = struct.Struct("<IHHII")
_REQ = struct.Struct("<BBHIIIII")
_MSG = struct.Struct("<BBBBIII")
TYPES = {socket.SOCK_STREAM: "stream", socket.SOCK_DGRAM: "datagram", socket.SOCK_SEQPACKET: "seqpacket"}
SO_PEERCRED, SO_PEERGROUPS = 17, 59
_UCRED = struct.Struct("<iII")
PR_GET_DUMPABLE, PR_SET_DUMPABLE = 3, 4
KEEP_ID = -1                   # setresuid/setresgid: leave this one as it is


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
        creator = _peer_cred(sa)
        if creator != _peer_cred(sb):
            raise Unsupported(pid, what, "its two ends report different peers (SO_PEERCRED): not a socketpair(); "
                              "not supported")
    return image_pb2.SocketPairImage(ino_a=a[2], ino_b=b[2], type=stype, queue_a=queue_a, queue_b=queue_b,
                                     creator=creator)


def _peer_cred(sock: socket.socket) -> image_pb2.PeerCred:
    pid, uid, gid = _UCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, SO_PEERCRED, _UCRED.size))
    size = 64 * 4
    while True:
        try:
            raw = sock.getsockopt(socket.SOL_SOCKET, SO_PEERGROUPS, size)
            break
        except OSError as exc:
            if exc.errno != errno.ERANGE or size >= 1 << 20:
                raise
            size *= 4
    groups = struct.unpack(f"<{len(raw) // 4}I", raw)
    return image_pb2.PeerCred(pid=pid, uid=uid, gid=gid, groups=groups)


def check_creators(image: image_pb2.TreeImage) -> None:
    """Refuses the pairs whose creator (SO_PEERCRED) a restore could not make create them again."""
    alive = {p.pid for p in image.processes if not p.zombie}
    zombies = {p.pid for p in image.processes if p.zombie}
    for pair in image.socketpairs:
        pid = pair.creator.pid
        if pid in alive:
            continue
        if pid in zombies:
            why = "a zombie of the job (exited, not yet waited for), whose PID a helper cannot take"
        elif not pid:
            why = "a process in another PID namespace"
        elif proc.exists(pid):
            why = f"{proc.describe(pid)}, outside the job, which a restore cannot make create it again"
        else:
            continue                            # exited: a helper with its PID creates it (PairMaker)
        holder, fd = _holder(image, pair.ino_a)
        raise Unsupported(holder, f"fd {fd} (socket:[{pair.ino_a}])", f"the socket pair was created by PID {pid} "
                          f"(SO_PEERCRED names it), {why}")


def _holder(image: image_pb2.TreeImage, ino: int) -> tuple[int, int]:
    for p in image.processes:
        ids = {f.id for f in p.files if f.kind == image_pb2.OpenFile.SOCKETPAIR and f.socket == ino}
        for d in p.fds:
            if d.file in ids:
                return p.pid, d.fd
    return image.root_pid, -1


def needs_version_3(image: image_pb2.TreeImage) -> bool:
    return any(pair.HasField("creator") for pair in image.socketpairs)


def preflight(tree: image_pb2.TreeImage, *, new_pidns: bool = False) -> None:
    """Refuses, creating nothing, pairs whose exited creator's PID someone holds now."""
    if new_pidns:
        return
    job = {p.pid for p in tree.processes}
    for pair in tree.socketpairs:
        pid = pair.creator.pid
        if pair.HasField("creator") and pid not in job and proc.exists(pid):
            raise RestoreError(f"cannot restore: a socket pair of the job (socket:[{pair.ino_a}]) was created by "
                               f"PID {pid}, which had exited; SO_PEERCRED names it, so a helper with that PID must "
                               f"create it again, but PID {pid} is in use by {proc.describe(pid)}: end that "
                               "process, or restore with --new-pidns")


class PairMaker:
    """Creates the job's socket pairs in the name of their creators (SO_PEERCRED): `stubs`, every
    process of the job being restored, by PID as the job sees it; `root`, the root's stub (helpers
    are cloned from it); `own`, the stubs' credentials (incr's) to switch back to."""

    def __init__(self, stubs: Mapping[int, Stub], root: Stub, own: image_pb2.Creds) -> None:
        self.stubs = stubs
        self.root = root
        self.own = own

    def create(self, target: RemoteProcess, pair: image_pb2.SocketPairImage) -> tuple[int, int]:
        """The pair, its queues refilled, in `target`: (fd of end a, fd of end b) there."""
        if not pair.HasField("creator"):
            return create(target, pair)             # an image older than version 3
        creator = self.stubs.get(pair.creator.pid)
        helper = None
        if creator is None:
            try:
                helper = creator = self.root.fork_sibling(pair.creator.pid)
            except PidTaken as exc:
                raise RestoreError(f"cannot restore the socket pair socket:[{pair.ino_a}]: it was created by PID "
                                   f"{pair.creator.pid} (SO_PEERCRED names it): {exc}") from None
        try:
            with _as_creator(creator, pair.creator, self.own, restore=helper is None):
                fa, fb = create(creator, pair)
            if creator is target:
                return fa, fb
            try:
                return _take(target, creator.vpid, fa), _take(target, creator.vpid, fb)
            finally:
                creator.call("close", fa)
                creator.call("close", fb)
        finally:
            if helper is not None:
                helper.kill()


def _take(target: RemoteProcess, pid: int, fd: int) -> int:
    """Descriptor `fd` of process `pid` (as the job sees it), copied into `target`."""
    pidfd = target.call("pidfd_open", pid, 0)
    try:
        return target.call("pidfd_getfd", pidfd, fd, 0)
    finally:
        target.call("close", pidfd)


@contextmanager
def _as_creator(target: RemoteProcess, cred: image_pb2.PeerCred, own: image_pb2.Creds, *,
                restore: bool) -> Iterator[None]:
    """`target` (a single-threaded stub, root) with the effective ids and groups of `cred` meanwhile;
    `restore`: back to `own` afterwards, its dumpable flag too (changing the effective uid clears it)."""
    if (cred.uid, cred.gid, list(cred.groups)) == (own.uids[1], own.gids[1], list(own.groups)):
        yield
        return
    dumpable = target.call("prctl", PR_GET_DUMPABLE, 0, 0, 0, 0)
    _set_ids(target, cred.uid, cred.gid, list(cred.groups))
    try:
        yield
    finally:
        if restore:
            _set_ids(target, own.uids[1], own.gids[1], list(own.groups))
            target.call("prctl", PR_SET_DUMPABLE, dumpable, 0, 0, 0)


def _set_ids(target: RemoteProcess, uid: int, gid: int, groups: list[int]) -> None:
    """Effective ids: the real and saved ones stay root's, so that the stub can switch back."""
    target.call("setresuid", KEEP_ID, 0, KEEP_ID)      # privileged first, for groups and gid
    raw = struct.pack(f"<{len(groups)}I", *groups)
    target.call("setgroups", len(groups), target.put(raw) if raw else 0)
    target.call("setresgid", KEEP_ID, gid, KEEP_ID)
    target.call("setresuid", KEEP_ID, uid, KEEP_ID)


def create(target: RemoteProcess, pair: image_pb2.SocketPairImage) -> tuple[int, int]:
    """A new socket pair made by `target`, its queues refilled: (fd of end a, fd of end b) there."""
    at = target.put(bytes(8))
    target.call("socketpair", socket.AF_UNIX, pair.type, 0, at)
    buf = bytearray(8)
    pt.vm_read_into(target.pid, [(at, 8)], buf)
    fa, fb = struct.unpack("<ii", buf)
    with _socket_of(target.pid, fa) as sa, _socket_of(target.pid, fb) as sb:
        _send(sb, pair.type, pair.queue_a)
        _send(sa, pair.type, pair.queue_b)
    return fa, fb
