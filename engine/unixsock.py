"""Unix socket pairs between processes of a tree, with the data queued in them.
Dump and restore.

Which socket is whose peer comes from sock_diag (NETLINK_SOCK_DIAG, the
interface `ss` uses), and so does each end's shutdown state.  Dump (every
process frozen), through each end taken into incr with pidfd_getfd: a
stream's queued bytes, and a datagram or seqpacket end's messages, are read
with MSG_PEEK from successive peek offsets (SO_PEEK_OFF, put back afterwards),
so the queue is never touched and a SIGKILLed incr cannot lose a message.
Peeks from an offset skip an empty message behind others (and one peeked
before): what the peer has charged to its send buffer for unread messages
(SO_MEMINFO) is then more than the peeked ones take, and only then are the
messages read out and sent straight back through the peer, one by one (a
window in which a SIGKILL of incr loses them: docs/crash-model.md), unless a
shutdown forbids sending them back: then only an empty queue is supported.
Every socket option a program can read back (OPTIONS) is read with
getsockopt.  Restore: the pair is created (an injected socketpair), refilled
from incr through stolen ends (with send buffers large enough meanwhile),
its options set and its ends shut down as they were, all before it is
handed to the processes that hold its ends.

Descriptors (SCM_RIGHTS) and credentials (SCM_CREDENTIALS) a pair's queued
messages carry come back with them (inflight.py).  Refused at the checkpoint,
before any other check of the job's descriptors (check_in_flight, MSG_PEEK
only): a queued message carrying other ancillary data - a pidfd
(SO_PASSPIDFD), a security label, a send time - which a restore could not put
back (they would be incr's, or lost), or any in a socket that is not a plain
pair; also an out-of-band byte, a socket filter, and an option a new socket
does not take back exactly.  Not seen (and so not refused): the credentials a
queued message carries while the receiver's SO_PASSCRED is off, which a
program that turns it on later would read (none after a restore).

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

import contextlib
import ctypes
import errno
import fcntl
import functools
import os
import socket
import stat
import struct
import termios
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from incr.faults import fault_point
from incr.proto import image_pb2

from . import inflight, proc
from . import ptrace as pt
from .errors import EngineError, PidTaken, RestoreError, Unsupported
from .inflight import installed
from .pipes import stolen
from .remote import RemoteProcess, Stub

NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY = 4, 20
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
UDIAG_SHOW_NAME, UDIAG_SHOW_VFS, UDIAG_SHOW_PEER, UDIAG_SHOW_ICONS = 0x1, 0x2, 0x4, 0x8
UDIAG_SHOW_RQLEN, UDIAG_SHOW_SHUTDOWN = 0x10, 0x100
UNIX_DIAG_NAME, UNIX_DIAG_VFS, UNIX_DIAG_PEER, UNIX_DIAG_ICONS, UNIX_DIAG_RQLEN = 0, 1, 2, 3, 4
UNIX_DIAG_SHUTDOWN = 6
_NLMSG = struct.Struct("<IHHII")
_REQ = struct.Struct("<BBHIIIII")
_MSG = struct.Struct("<BBBBIII")
TCP_ESTABLISHED, TCP_CLOSE, TCP_LISTEN = 1, 7, 10
TYPES = {socket.SOCK_STREAM: "stream", socket.SOCK_DGRAM: "datagram", socket.SOCK_SEQPACKET: "seqpacket"}
SO_PEERCRED, SO_PEERGROUPS = 17, 59
SO_GET_FILTER, SO_PEEK_OFF, SO_MEMINFO = 26, 42, 55
SO_SNDBUFFORCE, SO_RCVBUFFORCE = 32, 33
SK_MEMINFO_WMEM_ALLOC = 2
SCM_RIGHTS, SCM_CREDENTIALS, SCM_SECURITY, SCM_PIDFD = 1, 2, 3, 4
SCM_TIMESTAMPS = {29, 35, 37, 63, 64, 65}   # SO_TIMESTAMP(NS|ING), _OLD and _NEW: the time a message was sent
RCV_SHUTDOWN, SEND_SHUTDOWN = 1, 2
CONTROL_SPACE = 8192           # room for SCM_MAX_FD (253) descriptors, credentials, a pidfd, a label
_UCRED = struct.Struct("<iII")
PR_GET_DUMPABLE, PR_SET_DUMPABLE = 3, 4
_libc = ctypes.CDLL(None, use_errno=True)
KEEP_ID = -1                   # setresuid/setresgid: leave this one as it is


@dataclass(frozen=True)
class Option:
    """A SOL_SOCKET option a program can set on a Unix socket and read back: `size`, the bytes
    getsockopt returns; `force`, the option that sets it (the buffers: their *FORCE variants,
    given half the value, which the kernel doubles, and free of net.core.[wr]mem_max)."""

    name: str
    number: int
    size: int = 4
    force: int = 0
    level: int = socket.SOL_SOCKET


# Asm-generic numbers (x86-64).  Left out, as nothing of the socket a program sees: SO_TYPE,
# SO_PROTOCOL, SO_DOMAIN, SO_ACCEPTCONN, SO_PEERCRED/PEERGROUPS/PEERPIDFD (the creator, restored
# as such), SO_ERROR (reading clears it; a pair's ends only get one when the peer goes), SO_COOKIE
# (a new socket's, like its inode), SO_MEMINFO (accounting), SO_SNDLOWAT (always 1), SO_BSDCOMPAT
# (ignored), SO_REUSEPORT, SO_ZEROCOPY, SO_RESERVE_MEM and SO_TXREHASH (refused on Unix sockets);
# the *_NEW timeouts read the same state as the old ones.  SO_BINDTOIFINDEX is SO_BINDTODEVICE's
# state.  Socket filters (SO_ATTACH_FILTER/BPF) are refused (filter_attached).
OPTIONS = (
    Option("SO_SNDBUF", 7, force=SO_SNDBUFFORCE), Option("SO_RCVBUF", 8, force=SO_RCVBUFFORCE),
    Option("SO_DEBUG", 1), Option("SO_REUSEADDR", 2), Option("SO_DONTROUTE", 5), Option("SO_BROADCAST", 6),
    Option("SO_KEEPALIVE", 9), Option("SO_OOBINLINE", 10), Option("SO_NO_CHECK", 11), Option("SO_PRIORITY", 12),
    Option("SO_LINGER", 13, 8), Option("SO_PASSCRED", 16), Option("SO_RCVLOWAT", 18),
    Option("SO_RCVTIMEO", 20, 16), Option("SO_SNDTIMEO", 21, 16), Option("SO_TIMESTAMP_OLD", 29),
    Option("SO_PASSSEC", 34), Option("SO_TIMESTAMPNS_OLD", 35), Option("SO_MARK", 36),
    Option("SO_TIMESTAMPING", 37, 8), Option("SO_RXQ_OVFL", 40), Option("SO_WIFI_STATUS", 41),
    Option("SO_PEEK_OFF", SO_PEEK_OFF), Option("SO_NOFCS", 43), Option("SO_SELECT_ERR_QUEUE", 45),
    Option("SO_BUSY_POLL", 46), Option("SO_MAX_PACING_RATE", 47, 8), Option("SO_INCOMING_CPU", 49),
    Option("SO_TXTIME", 61, 8), Option("SO_BINDTOIFINDEX", 62), Option("SO_TIMESTAMP_NEW", 63),
    Option("SO_TIMESTAMPNS_NEW", 64), Option("SO_PREFER_BUSY_POLL", 69), Option("SO_BUF_LOCK", 72),
    Option("SO_RCVMARK", 75), Option("SO_PASSPIDFD", 76), Option("SO_RCVPRIORITY", 82),
    Option("SO_PASSRIGHTS", 83),
    Option("SO_LOCK_FILTER", 44),   # last: it only forbids changing the (absent) filter
)
BY_NAME = {o.name: o for o in OPTIONS}
BUFFERS = ("SO_SNDBUF", "SO_RCVBUF")        # set before the others (SO_BUF_LOCK tells they were set)


@dataclass
class UnixInfo:
    ino: int
    type: int
    peer: int
    name: bytes
    shutdown: int
    state: int = 0                  # TCP_ESTABLISHED (1) once connected, TCP_CLOSE (7) never, TCP_LISTEN (10)
    vfs: tuple[int, int] | None = None      # a path name's file: (st_dev, st_ino) as stat(2) gives them
    icons: tuple[int, ...] = ()     # listening: the clients whose connections wait in its backlog, in order
    backlog: int = 0                # listening: listen(2)'s backlog

    @property
    def widowed(self) -> bool:
        """Connected once, its peer closed since: what the peer had sent still readable."""
        return not self.peer and self.state == TCP_ESTABLISHED and not self.name


def _kernel_dev(raw: int) -> int:
    """A kernel-internal dev_t (major << 20 | minor, as sock_diag reports it) as stat(2)'s st_dev."""
    return os.makedev(raw >> 20, raw & 0xFFFFF)


def unix_sockets() -> dict[int, UnixInfo]:
    """Every Unix socket of the system (this network namespace), by inode."""
    out: dict[int, UnixInfo] = {}
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as nl:
        req = _REQ.pack(socket.AF_UNIX, 0, 0, 0xFFFFFFFF, 0, UDIAG_SHOW_NAME | UDIAG_SHOW_VFS | UDIAG_SHOW_PEER
                   | UDIAG_SHOW_ICONS | UDIAG_SHOW_RQLEN | UDIAG_SHOW_SHUTDOWN,
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
                    errno_ = -struct.unpack_from("<i", data, pos + _NLMSG.size)[0]
                    raise EngineError(f"the kernel would not list its Unix sockets (sock_diag: "
                                      f"{os.strerror(errno_)}); load its unix_diag module (modprobe unix_diag) "
                                      "and try again")
                body = data[pos + _NLMSG.size:pos + length]
                _, stype, state, _, ino, _, _ = _MSG.unpack_from(body)
                info = UnixInfo(ino=ino, type=stype, peer=0, name=b"", shutdown=0, state=state)
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
                    elif atype == UNIX_DIAG_VFS:
                        vino, vdev = struct.unpack_from("<II", value)
                        info.vfs = (_kernel_dev(vdev), vino)
                    elif atype == UNIX_DIAG_ICONS:
                        info.icons = struct.unpack_from(f"<{len(value) // 4}I", value)
                    elif atype == UNIX_DIAG_RQLEN and state == TCP_LISTEN:
                        info.backlog = struct.unpack_from("<II", value)[1]
                    at += (alen + 3) & ~3
                out[ino] = info
                pos += (length + 3) & ~3


def _int(raw: bytes) -> int:
    return int.from_bytes(raw[:4], "little", signed=True)


def _show(raw: bytes) -> str:
    """An option's value as a program would print it."""
    if len(raw) == 4:
        return str(_int(raw))
    if len(raw) == 16:
        sec, usec = struct.unpack("<qq", raw)
        return f"{sec}.{usec:06d} s"
    return "/".join(str(v) for v in struct.unpack(f"<{len(raw) // 4}i", raw))


def read_options(sock: socket.socket, table: Iterable[Option] = OPTIONS) -> list[image_pb2.SocketOption]:
    """Every option of `table` this kernel knows, as getsockopt returns it."""
    out = []
    for opt in table:
        try:
            raw = sock.getsockopt(opt.level, opt.number, opt.size)
        except OSError as exc:
            if exc.errno in (errno.ENOPROTOOPT, errno.EOPNOTSUPP, errno.EINVAL):
                continue                        # unknown to this kernel: no program can have set it
            raise
        out.append(image_pb2.SocketOption(name=opt.name, value=raw))
    return out


def set_options(sock: socket.socket, options: Iterable[image_pb2.SocketOption], *, buffers: bool,
                by_name: Mapping[str, Option] = BY_NAME) -> str:
    """Sets those `options` (the buffers, or all the others) whose value differs on `sock`; what did
    not come out as recorded ("" when everything did).  `by_name`: the table they come from."""
    for o in options:
        opt = by_name.get(o.name)
        if opt is None:
            return f"{o.name} (an option this incr does not know)"
        if (o.name in BUFFERS) != buffers:
            continue
        try:
            if sock.getsockopt(opt.level, opt.number, opt.size) == o.value:
                continue
            if opt.force:
                sock.setsockopt(opt.level, opt.force, _int(o.value) // 2)
            else:
                sock.setsockopt(opt.level, opt.number, o.value)
            now = sock.getsockopt(opt.level, opt.number, opt.size)
        except OSError as exc:
            return f"{o.name} {_show(o.value)} ({exc.strerror})"
        if now != o.value:
            return f"{o.name} {_show(o.value)} (reads back {_show(now)})"
    return ""


def check_options(pid: int, what: str, stype: int, options: list[image_pb2.SocketOption]) -> None:
    """Refuses an end whose options a restore could not set again: tried on a new pair of incr's."""
    scratch = socket.socketpair(socket.AF_UNIX, stype)
    try:
        failed = set_options(scratch[0], options, buffers=True) or set_options(scratch[0], options, buffers=False)
    finally:
        scratch[0].close()
        scratch[1].close()
    if failed:
        raise Unsupported(pid, what, f"socket option {failed}: incr cannot set it on a new socket; not supported")


def filter_attached(sock: socket.socket) -> bool:
    """Whether a socket filter is attached.  SO_GET_FILTER with no room answers a classic filter's
    length in instructions, copying nothing (Python's getsockopt would give it room for at most
    1024 bytes, while the kernel copies 8 per instruction), and EACCES for an eBPF one."""
    length = ctypes.c_uint32(0)
    if _libc.getsockopt(sock.fileno(), socket.SOL_SOCKET, SO_GET_FILTER, None, ctypes.byref(length)) < 0:
        err = ctypes.get_errno()
        if err == errno.EACCES:
            return True
        raise OSError(err, os.strerror(err))
    return length.value > 0


def what_carried(ancdata: list[tuple[int, int, bytes]], flags: int,
                 supported: frozenset[int] = frozenset()) -> str:
    """What ancillary data a queued message carries that is not `supported`, in words ("" when
    none): inflight.CARRIED in a pair's queues."""
    kinds = {kind for level, kind, _ in ancdata if level == socket.SOL_SOCKET} - supported
    ancdata = [item for item in ancdata if item[0] != socket.SOL_SOCKET or item[1] not in supported]
    if SCM_RIGHTS in kinds or flags & socket.MSG_CTRUNC:
        return "descriptors (SCM_RIGHTS): descriptors in flight are not supported"
    if kinds & {SCM_CREDENTIALS, SCM_PIDFD}:
        return ("its sender's credentials (SO_PASSCRED or SO_PASSPIDFD is on): credentials in flight are not "
                "supported (a restore would put incr's in their place)")
    if SCM_SECURITY in kinds:
        return "its sender's security label (SO_PASSSEC is on): labels in flight are not supported"
    if kinds & SCM_TIMESTAMPS:
        return ("the time it was sent (SO_TIMESTAMP* is on): send times in flight are not supported (a restore "
                "would put its own in their place)")
    if ancdata:
        level, kind, _ = ancdata[0]
        return f"ancillary data (level {level}, type {kind}) in flight, which is not supported"
    return ""


def _peek(sock: socket.socket, buf: bytearray, carried: Noter | None = None) -> tuple[int, str, int]:
    """The next message from the socket's peek offset, left queued: (its length, what it carries
    that cannot be restored, the flags); raises BlockingIOError when there is none.  `carried`:
    told what the message carries (a pair's queue), before incr's copies of its descriptors go."""
    n, ancdata, flags, _ = sock.recvmsg_into([buf], CONTROL_SPACE, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    try:
        if carried is None:
            return n, what_carried(ancdata, flags), flags
        return n, what_carried(ancdata, flags, inflight.CARRIED) or carried(ancdata), flags
    finally:
        inflight.close_all(installed(ancdata))


Noter = Callable[[inflight.Ancdata], str]


def peek_offset(sock: socket.socket) -> int:
    return _int(sock.getsockopt(socket.SOL_SOCKET, SO_PEEK_OFF, 4))


def peek_queue(sock: socket.socket, stype: int, shutdown: int, carried: Callable[[int], Noter] | None = None
               ) -> tuple[list[bytes], str]:
    """Every message queued to be read from `sock` (a stream's bytes in pieces), read with MSG_PEEK
    from successive peek offsets, so that the queue stays as it is; and what the first message that
    carries ancillary data that cannot be restored carries ("" when none).  The socket's own peek
    offset is put back.  `carried(i)`: what notes what message i carries (a pair's queue), if any.

    A stream's pieces end where a reader's recv(2) would stop: after bytes that carry descriptors,
    and where the credentials change.  An empty message in a seqpacket socket shut down for reading
    looks like its end of file.  Peeks from an offset show an empty datagram once only (the kernel marks it
    peeked), and never one behind others: peeked_whole tells."""
    saved = peek_offset(sock)
    buf = bytearray(1 << 16)
    msgs: list[bytes] = []
    at = 0
    why = ""
    try:
        while True:
            # The first message without an offset: such a peek shows it even when empty and peeked before.
            head = not msgs and stype != socket.SOCK_STREAM
            sock.setsockopt(socket.SOL_SOCKET, SO_PEEK_OFF, -1 if head else at)
            try:
                n, what, flags = _peek(sock, buf, None if carried is None else carried(len(msgs)))
            except BlockingIOError:
                break
            why = why or what
            if flags & socket.MSG_TRUNC:
                buf = bytearray(len(buf) * 4)       # the same datagram again, whole
                continue
            if n == 0 and (stype == socket.SOCK_STREAM or shutdown & RCV_SHUTDOWN):
                break                               # end of file
            msgs.append(bytes(buf[:n]))
            at += n
    finally:
        sock.setsockopt(socket.SOL_SOCKET, SO_PEEK_OFF, saved)
    return msgs, why


def peek_head(sock: socket.socket, carried: Noter | None = None) -> str:
    """What the first queued message carries that cannot be restored, left queued (on a running
    job: never when the socket has a peek offset of its own, which a peek would move)."""
    if peek_offset(sock) >= 0:
        return ""
    try:
        return _peek(sock, bytearray(1), carried)[1]
    except BlockingIOError:
        return ""


def oob_queued(sock: socket.socket) -> bool:
    """Whether an out-of-band byte (MSG_OOB) waits in a stream socket (looked at with MSG_PEEK; with
    SO_OOBINLINE on, the kernel answers only once it is off for the look)."""
    inline = _int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_OOBINLINE, 4))
    if inline:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_OOBINLINE, 0)
    try:
        sock.recv(1, socket.MSG_OOB | socket.MSG_PEEK | socket.MSG_DONTWAIT)
        return True
    except OSError as exc:
        if exc.errno in (errno.EINVAL, errno.EAGAIN):
            return False
        raise
    finally:
        if inline:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_OOBINLINE, 1)


def _send_charged(sender: socket.socket) -> int:
    """What the messages `sender` sent and nobody has read yet take of its send buffer (bytes of
    the kernel's accounting: each message's whole buffer, its truesize)."""
    meminfo = sender.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, 9 * 4)
    allocated: int = struct.unpack_from("<I", meminfo, SK_MEMINFO_WMEM_ALLOC * 4)[0]
    return allocated


def sent_queued(sender: socket.socket) -> bool:
    """Whether messages `sender` sent still wait in its peer (they are charged to its send buffer)."""
    return _send_charged(sender) > 0


@functools.lru_cache(maxsize=256)
def _charge_of(stype: int, length: int) -> int:
    """What one message of `length` bytes of a socket of type `stype` takes of its sender's send
    buffer, measured by sending one through a scratch pair here; -1 if it could not be sent."""
    a, b = socket.socketpair(socket.AF_UNIX, stype)
    with a, b:
        try:
            a.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, 2 * length + (1 << 16))
            a.send(bytes(length), socket.MSG_DONTWAIT)
        except OSError:
            return -1
        return _send_charged(a)


def peeked_whole(sender: socket.socket, stype: int, msgs: list[bytes]) -> bool:
    """Whether `msgs`, peeked from the one socket `sender` can send to, are every message queued
    there.  Peeks from offsets skip an empty datagram behind others (or one peeked before); what
    `sender` has charged for unread messages then exceeds what the peeked ones take."""
    want = 0
    for msg in msgs:
        charge = _charge_of(stype, len(msg))
        if charge < 0:
            return False
        want += charge
    return _send_charged(sender) == want


def may_carry(ino: int, ends: Mapping[int, object], unix: Mapping[int, UnixInfo]) -> bool:
    """Whether the messages queued in socket `ino` of the job may carry descriptors and credentials
    (inflight.py): a datagram socket's (its senders are the job's, or it is refused), and those of
    one end of a connection both of whose ends the job holds (a pair's, or made through a name)."""
    info = unix.get(ino)
    if info is None:
        return False
    if info.type == socket.SOCK_DGRAM:
        return True
    peer = unix.get(info.peer)
    return peer is not None and peer.peer == ino and info.peer in ends


def check_in_flight(ends: Mapping[int, tuple[int, int]], unix: Mapping[int, UnixInfo], *, frozen: bool,
                    job: Mapping[int, int], carried: Callable[[int], None] | None = None) -> None:
    """Refuses a socket of the job whose queues hold a message carrying what a restore could not put
    back (looked at with MSG_PEEK: the queues stay as they are): where it may carry some
    (may_carry), credentials of a process outside the job, a socket no process of the job holds,
    and ancillary data other than descriptors and credentials; elsewhere, any ancillary data.
    `ends`: socket inode -> (pid, fd) holding it; `job`: as for inflight.cred_refusal; `carried(fd)`:
    told of each descriptor in flight (incr's copy, closed after).  On a running job only each
    queue's first message is looked at; the frozen dump looks at every message.  Before any other
    check of the descriptors: a pipe or socket whose other end exists only in flight would
    otherwise be refused for the wrong reason."""
    def noter(_: int) -> Noter:
        def note(ancdata: inflight.Ancdata) -> str:
            for fd in inflight.rights(ancdata):
                st = os.fstat(fd)
                if stat.S_ISSOCK(st.st_mode) and st.st_ino not in ends:
                    return (f"descriptors (SCM_RIGHTS), one of socket:[{st.st_ino}], a socket no process of the "
                            "job holds: not supported")
                if carried is not None:
                    carried(fd)
            return inflight.cred_refusal(ancdata, job)
        return note

    for ino, (pid, fd) in sorted(ends.items()):
        info = unix.get(ino)
        if info is None or (info.peer and info.peer not in ends):
            continue                            # its peer is outside the job: refused as such elsewhere
        if info.type != socket.SOCK_DGRAM and info.state != TCP_ESTABLISHED:
            continue                            # listening or never connected: nothing to read
        carries = may_carry(ino, ends, unix)
        try:
            with socket_of(pid, fd) as sock:
                if frozen:
                    why = peek_queue(sock, info.type, info.shutdown, noter if carries else None)[1]
                else:
                    why = peek_head(sock, noter(0) if carries else None)
        except (ProcessLookupError, FileNotFoundError, OSError):
            if frozen:
                raise
            continue                            # the running job closed it meanwhile
        if why:
            raise Unsupported(pid, f"fd {fd} (socket:[{ino}])", f"a message queued in it carries {why}")


@contextmanager
def socket_of(pid: int, fd: int) -> Iterator[socket.socket]:
    """Descriptor `fd` of process `pid` as a socket object of incr's (same socket)."""
    with stolen(pid, fd) as mine:
        sock = socket.socket(fileno=os.dup(mine))
        try:
            yield sock
        finally:
            sock.close()


def send_all(sock: socket.socket, stype: int, msgs: Iterable[bytes]) -> None:
    inflight.send_queue(sock, stype, msgs, (), None)


@dataclass(frozen=True)
class End:
    """One end of a pair at dump: the process and descriptor holding it, its inode and shutdown."""

    pid: int
    fd: int
    ino: int
    shutdown: int

    @property
    def what(self) -> str:
        return f"fd {self.fd} (socket:[{self.ino}])"


def capture(a: End, b: End, stype: int, carrier: inflight.Carrier | None = None) -> image_pb2.SocketPairImage:
    """Queues, options and shutdown states of the pair whose ends are `a` and `b`, and what its
    queued messages carry (told to `carrier`); the job's queues are left as they were."""
    with socket_of(a.pid, a.fd) as sa, socket_of(b.pid, b.fd) as sb:
        for end, sock in ((a, sa), (b, sb)):
            if filter_attached(sock):
                raise Unsupported(end.pid, end.what, "a socket filter (SO_ATTACH_FILTER or SO_ATTACH_BPF) is "
                                  "attached to it: not supported")
        options_a, options_b = read_options(sa), read_options(sb)
        carried_a: list[image_pb2.Ancillary] = []
        carried_b: list[image_pb2.Ancillary] = []
        queue_a = capture_queue(a, sa, b, sb, stype, carrier, carried_a)
        queue_b = capture_queue(b, sb, a, sa, stype, carrier, carried_b)
        creator = peer_cred(sa)
        if creator != peer_cred(sb):
            raise Unsupported(a.pid, a.what, "its two ends report different peers (SO_PEERCRED): not a "
                              "socketpair(); not supported")
    check_options(a.pid, a.what, stype, options_a)
    check_options(b.pid, b.what, stype, options_b)
    return image_pb2.SocketPairImage(ino_a=a.ino, ino_b=b.ino, type=stype, queue_a=queue_a, queue_b=queue_b,
                                     creator=creator, options_a=options_a, options_b=options_b,
                                     shutdown_a=a.shutdown, shutdown_b=b.shutdown, ancillary_a=carried_a,
                                     ancillary_b=carried_b)


def capture_widowed(a: End, stype: int) -> image_pb2.SocketPairImage:
    """The end `a` of a socket pair whose other end was closed: what waits to be read in it (peeked:
    nothing can be sent back into it), its options, shutdown state and creator."""
    with socket_of(a.pid, a.fd) as sa:
        if filter_attached(sa):
            raise Unsupported(a.pid, a.what, "a socket filter (SO_ATTACH_FILTER or SO_ATTACH_BPF) is attached to "
                              "it: not supported")
        if stype == socket.SOCK_STREAM and oob_queued(sa):
            raise Unsupported(a.pid, a.what, "an out-of-band byte (MSG_OOB) is queued in it: not supported")
        msgs, carried = peek_queue(sa, stype, a.shutdown)
        if carried:
            raise Unsupported(a.pid, a.what, f"a message queued in it carries {carried}")
        options = read_options(sa)
        creator = peer_cred(sa)
    check_options(a.pid, a.what, stype, options)
    queue = [b"".join(msgs)] if stype == socket.SOCK_STREAM and msgs else msgs
    return image_pb2.SocketPairImage(ino_a=a.ino, type=stype, queue_a=queue, creator=creator, options_a=options,
                                     shutdown_a=a.shutdown, widowed=True)


def capture_queue(end: End, sock: socket.socket, peer: End, peer_sock: socket.socket, stype: int,
                  carrier: inflight.Carrier | None = None, carried: list[image_pb2.Ancillary] | None = None
                  ) -> list[bytes]:
    """What waits to be read from `end`: a stream's bytes (one item; in pieces when some carry
    something), or its messages.  With a `carrier` (a pair's end), what they carry goes to `carried`."""
    noter = None if carrier is None or carried is None else _noter(carrier, carried)
    if stype == socket.SOCK_STREAM:
        if oob_queued(sock):
            raise Unsupported(end.pid, end.what, "an out-of-band byte (MSG_OOB) is queued in it: not supported")
        msgs, why = peek_queue(sock, stype, end.shutdown, noter)
        if why:
            raise Unsupported(end.pid, end.what, f"a message queued in it carries {why}")
        if carried:
            return msgs
        data = b"".join(msgs)
        return [data] if data else []
    if end.shutdown & RCV_SHUTDOWN or peer.shutdown & SEND_SHUTDOWN:
        # Peeks cannot tell every empty datagram (see peek_queue), and what is read could not be put back.
        if sent_queued(peer_sock):
            raise Unsupported(end.pid, end.what, "messages are queued in it while it is shut down (shutdown(2)) "
                              "for reading or its peer for writing: not supported")
        return []
    # Peeked where the peeks see every message: a queue read is never taken out of the job's socket,
    # even for a moment a SIGKILL of incr could make for good.
    before = list(carried or ())
    msgs, why = peek_queue(sock, stype, end.shutdown, noter)
    if peeked_whole(peer_sock, stype, msgs):
        if why:
            raise Unsupported(end.pid, end.what, f"a message queued in it carries {why}")
        return msgs
    if carried is not None:
        carried[:] = before                 # noted by position, and the drain sees more positions
    return _drain_and_put_back(end, sock, peer_sock, noter)


def _noter(carrier: inflight.Carrier, into: list[image_pb2.Ancillary]) -> Callable[[int], Noter]:
    return lambda index: lambda ancdata: carrier.note(index, ancdata, into)


def _drain_and_put_back(end: End, sock: socket.socket, peer_sock: socket.socket,
                        carried: Callable[[int], Noter] | None) -> list[bytes]:
    """Every queued message of a datagram or seqpacket end, read and sent back in order through its
    peer (the job is frozen) with the descriptors and credentials it carried, its peek offset put
    back; the messages.  (check_in_flight refused before what could not be sent back.)"""
    saved = peek_offset(sock)
    msgs: list[tuple[bytes, inflight.Ancdata, int]] = []
    try:
        try:
            while True:
                size = struct.unpack("<i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, bytes(4)))[0]
                try:
                    data, ancdata, flags, _ = sock.recvmsg(max(size, 1), CONTROL_SPACE, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    break
                inflight.close_all(installed(ancdata, (SCM_PIDFD,)))
                msgs.append((data, [item for item in ancdata if item[1] != SCM_PIDFD], flags))
            fault_point("dgram-drained")
        finally:
            for data, ancdata, _ in msgs:       # what they carried goes back with them, in order
                peer_sock.sendmsg([data], inflight.carried_back(ancdata))
            sock.setsockopt(socket.SOL_SOCKET, SO_PEEK_OFF, saved)
        # Described only once every message is back: describing may refuse.
        why = ""
        for index, (_, ancdata, flags) in enumerate(msgs):
            if carried is None:
                why = why or what_carried(ancdata, flags)
            else:
                why = why or what_carried(ancdata, flags, inflight.CARRIED) or carried(index)(ancdata)
    finally:
        for _, ancdata, _ in msgs:
            inflight.close_all(inflight.rights(ancdata))
    if why:
        raise Unsupported(end.pid, end.what, f"a message queued in it carries {why}")
    return [data for data, _, _ in msgs]


def owner_of(sock: socket.socket) -> image_pb2.Owner:
    """Who owns `sock`'s inode: its maker's fsuid and fsgid."""
    st = os.fstat(sock.fileno())
    return image_pb2.Owner(uid=st.st_uid, gid=st.st_gid)


def give_owner(sock: socket.socket, owner: image_pb2.Owner) -> None:
    """`sock` owned by `owner` again (fchown on a socket sets its inode's owner and sk_uid, which
    owner matches of a firewall test: the restore made it as root).  Unix, netlink and inet sockets."""
    st = os.fstat(sock.fileno())
    if (st.st_uid, st.st_gid) != (owner.uid, owner.gid):
        os.fchown(sock.fileno(), owner.uid, owner.gid)


def peer_cred(sock: socket.socket) -> image_pb2.PeerCred:
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
    for pair in image.socketpairs:
        why = creator_refusal(image, pair.creator.pid)
        if why:
            holder, fd = holder_of(image, pair.ino_a)
            raise Unsupported(holder, f"fd {fd} (socket:[{pair.ino_a}])", f"the socket pair was created by PID "
                              f"{pair.creator.pid} (SO_PEERCRED names it), {why}")


def creator_refusal(image: image_pb2.TreeImage, pid: int) -> str:
    """Why a restore could not make process `pid` call what SO_PEERCRED records ("" when it can: a
    process of the job, or one that has exited, whose PID a helper takes)."""
    if pid in {p.pid for p in image.processes if not p.zombie}:
        return ""
    if pid in {p.pid for p in image.processes if p.zombie}:
        return "a zombie of the job (exited, not yet waited for), whose PID a helper cannot take"
    if not pid:
        return "a process in another PID namespace"
    if proc.exists(pid):
        return f"{proc.describe(pid)}, outside the job, which a restore cannot make create it again"
    return ""


def holder_of(image: image_pb2.TreeImage, ino: int) -> tuple[int, int]:
    """The first process and descriptor holding socket `ino` (a pair's end or a named socket)."""
    kinds = (image_pb2.OpenFile.SOCKETPAIR, image_pb2.OpenFile.UNIX)
    for p in image.processes:
        ids = {f.id for f in p.files if f.kind in kinds and f.socket == ino}
        for d in p.fds:
            if d.file in ids:
                return p.pid, d.fd
    return image.root_pid, -1


def needs_version_3(image: image_pb2.TreeImage) -> bool:
    return any(pair.HasField("creator") or pair.options_a or pair.options_b or pair.shutdown_a or pair.shutdown_b
               for pair in image.socketpairs)


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


class Acting:
    """Calls made in the name of the process SO_PEERCRED names (socketpair, listen, connect record
    their caller): `stubs`, every process of the job being restored, by PID as the job sees it;
    `root`, the root's stub (helpers are cloned from it); `own`, the stubs' credentials (incr's) to
    switch back to."""

    def __init__(self, stubs: Mapping[int, Stub], root: Stub, own: image_pb2.Creds) -> None:
        self.stubs = stubs
        self.root = root
        self.own = own

    @contextmanager
    def process_of(self, cred: image_pb2.PeerCred, what: str) -> Iterator[RemoteProcess]:
        """The process of the job with PID cred.pid, or, when it had exited, a brief helper with it."""
        creator: RemoteProcess | None = self.stubs.get(cred.pid)
        helper = None
        if creator is None:
            try:
                helper = creator = self.root.fork_sibling(cred.pid)
            except PidTaken as exc:
                raise RestoreError(f"cannot restore {what}: it was created by PID {cred.pid} (SO_PEERCRED names "
                                   f"it): {exc}") from None
        try:
            yield creator
        finally:
            if helper is not None:
                helper.kill()

    def switched(self, target: RemoteProcess, cred: image_pb2.PeerCred) -> contextlib.AbstractContextManager[None]:
        """`target` with the effective ids and groups of `cred` meanwhile."""
        return _as_creator(target, cred, self.own)


class PairMaker:
    """Creates the job's socket pairs in the name of their creators (SO_PEERCRED)."""

    def __init__(self, acting: Acting, provider: inflight.Provider | None = None) -> None:
        """`provider`: what queued messages carry (inflight.py)."""
        self.acting = acting
        self.provider = provider

    def create(self, target: RemoteProcess, pair: image_pb2.SocketPairImage) -> tuple[int, int]:
        """The pair, its queues refilled, in `target`: (fd of end a, fd of end b) there."""
        if not pair.HasField("creator"):
            return create(target, pair)             # an image older than version 3
        with self.acting.process_of(pair.creator, f"the socket pair socket:[{pair.ino_a}]") as creator:
            with self.acting.switched(creator, pair.creator):
                fa, fb = create(creator, pair, refill=False)
            finish(creator, pair, fa, fb, self.provider)
            if creator is target:
                return fa, fb
            try:
                return take(target, creator.vpid, fa), take(target, creator.vpid, fb)
            finally:
                creator.call("close", fa)
                creator.call("close", fb)


def take(target: RemoteProcess, pid: int, fd: int) -> int:
    """Descriptor `fd` of process `pid` (as the job sees it), copied into `target`."""
    pidfd = target.call("pidfd_open", pid, 0)
    try:
        return target.call("pidfd_getfd", pidfd, fd, 0)
    finally:
        target.call("close", pidfd)


@contextmanager
def _as_creator(target: RemoteProcess, cred: image_pb2.PeerCred, own: image_pb2.Creds) -> Iterator[None]:
    """`target` (a single-threaded stub, root) with the effective ids and groups of `cred` meanwhile;
    back to `own` afterwards, its dumpable flag too (changing the effective uid clears it)."""
    if (cred.uid, cred.gid, list(cred.groups)) == (own.uids[1], own.gids[1], list(own.groups)):
        yield
        return
    dumpable = target.call("prctl", PR_GET_DUMPABLE, 0, 0, 0, 0)
    _set_ids(target, cred.uid, cred.gid, list(cred.groups))
    try:
        yield
    finally:
        _set_ids(target, own.uids[1], own.gids[1], list(own.groups))
        target.call("prctl", PR_SET_DUMPABLE, dumpable, 0, 0, 0)


def _set_ids(target: RemoteProcess, uid: int, gid: int, groups: list[int]) -> None:
    """Effective ids: the real and saved ones stay root's, so that the stub can switch back."""
    target.call("setresuid", KEEP_ID, 0, KEEP_ID)      # privileged first, for groups and gid
    raw = struct.pack(f"<{len(groups)}I", *groups)
    target.call("setgroups", len(groups), target.put(raw) if raw else 0)
    target.call("setresgid", KEEP_ID, gid, KEEP_ID)
    target.call("setresuid", KEEP_ID, uid, KEEP_ID)


def create(target: RemoteProcess, pair: image_pb2.SocketPairImage, *, refill: bool = True) -> tuple[int, int]:
    """A new socket pair made by `target`, its queues refilled (unless not `refill`: the caller
    does it, with finish()): (fd of end a, fd of end b) there."""
    at = target.put(bytes(8))
    target.call("socketpair", socket.AF_UNIX, pair.type, 0, at)
    buf = bytearray(8)
    pt.vm_read_into(target.pid, [(at, 8)], buf)
    fa, fb = struct.unpack("<ii", buf)
    if refill:
        finish(target, pair, fa, fb, None)
    return fa, fb


def finish(target: RemoteProcess, pair: image_pb2.SocketPairImage, fa: int, fb: int,
           provider: inflight.Provider | None) -> None:
    """The pair at `fa`, `fb` of `target` refilled (what the messages carried from `provider`), its
    options set and its ends shut down as recorded."""
    with socket_of(target.pid, fa) as sa, socket_of(target.pid, fb) as sb:
        ends = ((sa, pair.options_a, pair.shutdown_a), (sb, pair.options_b, pair.shutdown_b))
        if pair.options_a or pair.options_b:
            make_room(sb, pair.queue_a)
            make_room(sa, pair.queue_b)
        inflight.send_queue(sb, pair.type, pair.queue_a, pair.ancillary_a, provider)
        inflight.send_queue(sa, pair.type, pair.queue_b, pair.ancillary_b, provider)
        for sock, options, _ in ends:
            _set_or_fail(pair, sock, options, buffers=True)
        for sock, options, shut in ends:
            # After the refill: SO_PASSCRED on a sending datagram socket would bind it to a name,
            # SO_SNDTIMEO could time our sends out, and a shut end takes no more data.
            _set_or_fail(pair, sock, options, buffers=False)
            if shut:
                sock.shutdown(shut - 1)         # RCV_SHUTDOWN 1 -> SHUT_RD 0, SEND 2 -> SHUT_WR 1, both -> SHUT_RDWR


def make_room(sender: socket.socket, queue: Iterable[bytes]) -> None:
    """A send buffer the refill through `sender` fits in, whatever the recorded one (a job may have
    shrunk it after its messages were queued, and a blocked refill would never end); set back to the
    recorded size after the refill.  A datagram's buffer costs its length and a few hundred bytes."""
    need = sum(len(msg) + 2048 for msg in queue)
    if need > _int(sender.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4)) // 2:
        sender.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, need)


def _set_or_fail(pair: image_pb2.SocketPairImage, sock: socket.socket, options: Iterable[image_pb2.SocketOption],
                 *, buffers: bool) -> None:
    failed = set_options(sock, options, buffers=buffers)
    if failed:
        raise RestoreError(f"cannot restore the socket pair socket:[{pair.ino_a}]: its socket option {failed} "
                           "could not be set again")
