"""TCP and UDP sockets of a job, IPv4 and IPv6, with TCP repair.  Dump and restore.

Dump, every process frozen, through each socket taken into incr (pidfd_getfd): its family,
type and state, its names (getsockname, getpeername), shutdown state and listen backlog
(sock_diag, as `ss` reads them), and every option a program can read back (OPTIONS).  An
established connection is read in TCP repair mode (the kernel's interface for exactly this,
CAP_NET_ADMIN): the sequence numbers of its send and receive queues (TCP_QUEUE_SEQ), their
bytes (MSG_PEEK in repair mode: nothing is consumed), how much of the send queue was not sent
yet (SIOCOUTQNSD), the options negotiated (MSS, window scale, SACK, timestamps: TCP_INFO,
TCP_MAXSEG), the timestamp clock (TCP_TIMESTAMP) and the window (TCP_REPAIR_WINDOW); then
repair mode is left without a packet sent.  A half-closed connection (FIN wait 1 and 2, close
wait, last ACK, closing) is read the same way; a FIN takes a sequence number but no byte of a queue, so
the sequences are recorded as if neither end's FIN had been sent.  All of it under the network lock (netlock.py), and
each socket noted in the job's journal while it is in repair mode (a socket left in it would
never send again).

Restore: each socket is created by the first process that holds it and taken into incr.  A
connection is rebuilt in repair mode: queue sequence numbers, bind and connect (no SYN: repair
mode makes it established at once, the port taken even from a connection of the killed job in
TIME_WAIT), the negotiated options, the receive queue and the sent part of the send queue
written back as received and as sent, the window.  Repair mode ends only when every socket of
the job exists (Maker.finish), since a packet to a connection's peer not yet made would be
answered by a reset; then the part never sent is sent, and an end that had shut down for sending
shuts down again: its FIN follows its bytes to its peer, a socket of the job restored too, which
reaches close wait again (the restore waits for it) or, if it had the FIN and acknowledged it,
acknowledges it again.  (Two ends closing, their FINs crossed, come back as two FINs one after the
other: the same ends of file, each end's FIN acknowledged.)  A listening socket is bound and
listens again with its backlog; a connection of the job that waited in its accept queue, nothing
sent on it yet, is made again by connecting from its old address once every listener listens
(the accepted end is the kernel's until accept(2): no image could hold it); a bound socket is
bound again.  The connections the killed job left closing at such a port (TIME_WAIT and kin, no
descriptor holding them) are ended first (SOCK_DESTROY): the kernel would refuse the bind and
the listen while they last, unless each had SO_REUSEADDR; SO_REUSEADDR is on for the bind and
set as recorded after.

Queued UDP datagrams are peeked from a moving peek offset at the dump (SO_PEEK_OFF) and sent
again at the restore, each from its own source address, through raw sockets that write the IP
and UDP headers.

Refused at the checkpoint, in one line naming the socket: other families and protocols (raw,
netlink, SCTP, ...); TCP states other than listening, established, half-closed and closed (a
connect in progress); a listener with connections from outside the
job waiting in its accept queue, or one of the job's with data sent on it or shut down; a
connection whose peer is not a socket of the job, unless --tcp-established (then it is read and
made again like the others, `outside`; with --kill its ports stay locked until the restore, and
the kill finds it in repair mode, so that it closes without a packet: Hold); an empty queued
datagram; urgent data; options a new socket does not take back.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import select
import socket
import struct
import termios
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from incr.faults import fault_point
from incr.proto import image_pb2

from . import netlock, unixsock
from . import ptrace as pt
from .errors import EngineError, RestoreError, Unsupported
from .holders import Holder
from .leftovers import Journal, Leftover
from .remote import RemoteProcess
from .unixsock import Option

log = logging.getLogger(__name__)

SOL_TCP = socket.IPPROTO_TCP
MAX_USER_MSS = 32767                # what TCP_MAXSEG takes (MAX_TCP_WINDOW)
TCP_REPAIR, TCP_REPAIR_QUEUE, TCP_QUEUE_SEQ, TCP_REPAIR_OPTIONS = 19, 20, 21, 22
TCP_WINDOW_CLAMP, TCP_TIMESTAMP, TCP_REPAIR_WINDOW = 10, 24, 29
TCP_NO_QUEUE, TCP_RECV_QUEUE, TCP_SEND_QUEUE = 0, 1, 2
REPAIR_ON, REPAIR_OFF, REPAIR_OFF_NO_WP = 1, 0, -1
TCPOPT_MSS, TCPOPT_WINDOW, TCPOPT_SACK_PERM, TCPOPT_TIMESTAMP = 2, 3, 4, 8
TCPI_OPT_TIMESTAMPS, TCPI_OPT_SACK, TCPI_OPT_WSCALE = 1, 2, 4
SIOCOUTQNSD, SIOCATMARK = 0x894B, 0x8905
NLM_F_ACK = 0x4
SO_PEEK_OFF = 42
MAX_DATAGRAM = 65536
IPV6_HDRINCL = 36
TCP_INFO_SIZE = 136               # through tcpi_bytes_received
ESTABLISHED, FIN_WAIT1, FIN_WAIT2, CLOSE, CLOSE_WAIT, LAST_ACK, LISTEN, CLOSING = 1, 4, 5, 7, 8, 9, 10, 11
CONNECTED = frozenset({ESTABLISHED, FIN_WAIT1, FIN_WAIT2, CLOSE_WAIT, LAST_ACK, CLOSING})   # read and made by repair
FIN_SENT = frozenset({FIN_WAIT1, FIN_WAIT2, LAST_ACK, CLOSING})   # this end shut down for sending: its FIN is queued
FIN_UNACKED = frozenset({FIN_WAIT1, LAST_ACK, CLOSING})           # ... and not acknowledged (it counts in the queue)
FIN_RECEIVED = frozenset({CLOSE_WAIT, LAST_ACK, CLOSING})         # the peer's FIN arrived: one past the bytes
STATES = {1: "established", 2: "SYN sent (a connect in progress)", 3: "SYN received", 4: "FIN wait 1 (shut down "
          "for sending)", 5: "FIN wait 2 (shut down for sending)", 6: "time wait", 7: "closed",
          8: "close wait (its peer shut down sending)", 9: "last ACK", 10: "listening", 11: "closing"}
RCV_SHUTDOWN, SEND_SHUTDOWN = 1, 2
FAMILIES: dict[int, str] = {int(socket.AF_INET): "IPv4", int(socket.AF_INET6): "IPv6"}
KINDS: dict[tuple[int, int], str] = {(int(socket.SOCK_STREAM), int(socket.IPPROTO_TCP)): "TCP",
                                     (int(socket.SOCK_DGRAM), int(socket.IPPROTO_UDP)): "UDP"}
_WINDOW_SIZE = 20                   # struct tcp_repair_window: five u32

# sock_diag for inet sockets (linux/inet_diag.h): the shutdown state and a listener's backlog.
INET_DIAG_SHUTDOWN = 8
_INET_REQ = struct.Struct("<BBBBI48x")          # family, protocol, ext, pad, states; the socket id left empty
# family, state, timer, retrans, (the socket id), expires, rqueue, wqueue, uid, inode
_INET_MSG = struct.Struct("<BBBB48xIIIII")


# What a program can set and read back, beyond the SOL_SOCKET ones of Unix sockets.  Left out:
# TCP_MAXSEG (an established connection's MSS is restored by repair; set on a listener it would
# clamp every connection it accepts to what getsockopt reads, 536 by default), TCP_WINDOW_CLAMP
# (a connection's is part of TcpConnection; a listener's is 0 unless set), TCP_QUICKACK (the
# moment's ACK mode), TCP_INFO and kin.
_TCP = (
    Option("TCP_NODELAY", 1, level=SOL_TCP), Option("TCP_CORK", 3, level=SOL_TCP),
    Option("TCP_KEEPIDLE", 4, level=SOL_TCP), Option("TCP_KEEPINTVL", 5, level=SOL_TCP),
    Option("TCP_KEEPCNT", 6, level=SOL_TCP), Option("TCP_SYNCNT", 7, level=SOL_TCP),
    Option("TCP_LINGER2", 8, level=SOL_TCP), Option("TCP_DEFER_ACCEPT", 9, level=SOL_TCP),
    Option("TCP_CONGESTION", 13, 16, level=SOL_TCP), Option("TCP_THIN_LINEAR_TIMEOUTS", 16, level=SOL_TCP),
    Option("TCP_USER_TIMEOUT", 18, level=SOL_TCP), Option("TCP_NOTSENT_LOWAT", 25, level=SOL_TCP),
)
_IP = (
    Option("IP_TOS", 1, level=socket.IPPROTO_IP), Option("IP_TTL", 2, level=socket.IPPROTO_IP),
    Option("IP_RECVTTL", 12, level=socket.IPPROTO_IP), Option("IP_RECVTOS", 13, level=socket.IPPROTO_IP),
    Option("IP_PKTINFO", 8, level=socket.IPPROTO_IP), Option("IP_MTU_DISCOVER", 10, level=socket.IPPROTO_IP),
    Option("IP_RECVERR", 11, level=socket.IPPROTO_IP), Option("IP_FREEBIND", 15, level=socket.IPPROTO_IP),
    Option("IP_TRANSPARENT", 19, level=socket.IPPROTO_IP),
    Option("IP_BIND_ADDRESS_NO_PORT", 24, level=socket.IPPROTO_IP),
)
_MULTICAST = (      # datagram sockets' (a stream socket refuses them)
    Option("IP_MULTICAST_TTL", 33, level=socket.IPPROTO_IP), Option("IP_MULTICAST_LOOP", 34, level=socket.IPPROTO_IP),
)
_IPV6 = (
    Option("IPV6_V6ONLY", 26, level=socket.IPPROTO_IPV6), Option("IPV6_UNICAST_HOPS", 16, level=socket.IPPROTO_IPV6),
    Option("IPV6_MTU_DISCOVER", 23, level=socket.IPPROTO_IPV6), Option("IPV6_RECVERR", 25, level=socket.IPPROTO_IPV6),
    Option("IPV6_RECVPKTINFO", 49, level=socket.IPPROTO_IPV6), Option("IPV6_TCLASS", 67, level=socket.IPPROTO_IPV6),
)
# SOL_SOCKET: Unix sockets' list, and what inet sockets have besides.  SO_PASSCRED, SO_PASSSEC,
# SO_PASSPIDFD, SO_PASSRIGHTS and SO_PEEK_OFF are Unix sockets' (refused or ignored here).
_UNIX_ONLY = {"SO_PASSCRED", "SO_PASSSEC", "SO_PASSPIDFD", "SO_PASSRIGHTS", "SO_PEEK_OFF", "SO_LOCK_FILTER"}
_SOCKET = (*(o for o in unixsock.OPTIONS if o.name not in _UNIX_ONLY),
           Option("SO_REUSEPORT", 15), Option("SO_ZEROCOPY", 60), Option("SO_TXREHASH", 74))
REUSEADDR = "SO_REUSEADDR"


def options_of(family: int, stype: int) -> tuple[Option, ...]:
    """The options a socket of `family` and `stype` is read and restored with."""
    ip = _IP + (_IPV6 if family == socket.AF_INET6 else ())
    return (*_SOCKET, *ip, *(_TCP if stype == socket.SOCK_STREAM else _MULTICAST))


BY_NAME = {o.name: o for o in (*_SOCKET, *_TCP, *_IP, *_MULTICAST, *_IPV6)}


@dataclass
class Names:
    """A socket's local and peer names, as getsockname/getpeername give them ("" / 0: none)."""

    local: tuple[str, int, int, int]
    peer: tuple[str, int] | None

    @classmethod
    def of(cls, sock: socket.socket) -> Names:
        local = sock.getsockname()
        try:
            peer = sock.getpeername()
        except OSError as exc:
            if exc.errno != errno.ENOTCONN:
                raise
            peer = None
        full = (local[0], local[1], local[2] if len(local) > 2 else 0, local[3] if len(local) > 3 else 0)
        return cls(full, (peer[0], peer[1]) if peer else None)


def _show(addr: str, port: int) -> str:
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def _int(raw: bytes) -> int:
    return int(struct.unpack_from("<i", raw)[0])


@contextmanager
def _taken(pid: int, fd: int) -> Iterator[socket.socket]:
    """Socket `fd` of process `pid` as a socket object of incr's (the same socket), closed after."""
    pidfd = os.pidfd_open(pid)
    try:
        mine = pt.pidfd_getfd(pidfd, fd)
    finally:
        os.close(pidfd)
    sock = socket.socket(fileno=mine)
    try:
        yield sock
    finally:
        sock.close()


def _ioctl_int(sock: socket.socket, request: int) -> int:
    return int(struct.unpack("i", fcntl.ioctl(sock.fileno(), request, b"\0" * 4))[0])


def _kind(sock: socket.socket) -> tuple[int, int, int]:
    return (sock.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN), sock.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE),
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL))


def _tcp_info(sock: socket.socket) -> bytes:
    return sock.getsockopt(SOL_TCP, socket.TCP_INFO, TCP_INFO_SIZE)


def describe(sock: socket.socket) -> str:
    """What `sock` is, for messages: "TCP socket 127.0.0.1:5000 -> 127.0.0.1:40000"."""
    _, stype, proto = _kind(sock)
    kind = KINDS.get((stype, proto), f"type {stype}, protocol {proto}")
    try:
        names = Names.of(sock)
    except OSError:
        return f"{kind} socket"
    where = _show(names.local[0], names.local[1])
    return f"{kind} socket {where}" + (f" -> {_show(*names.peer)}" if names.peer else "")


def check(pid: int, fd: int, what: str) -> None:
    """Refuses socket `fd` of `pid` (not a Unix socket) if the checkpoint cannot hold it."""
    with _taken(pid, fd) as sock:
        family, stype, proto = _kind(sock)
        if family not in FAMILIES:
            name = {int(socket.AF_NETLINK): "netlink", int(socket.AF_PACKET): "packet"}.get(family, f"family {family}")
            raise Unsupported(pid, what, f"{name} sockets are not supported yet")
        kind = KINDS.get((stype, proto))
        if kind is None:
            raise Unsupported(pid, what, f"{FAMILIES[family]} sockets of type {stype}, protocol {proto} (raw, SCTP, "
                              "...) are not supported yet; TCP and UDP are")
        label = f"{what} ({describe(sock)})"
        if kind == "TCP":
            _check_tcp(pid, label, sock)
        failed = _scratch_refusal(family, stype, unixsock.read_options(sock, options_of(family, stype)))
        if failed:
            raise Unsupported(pid, label, f"socket option {failed}: incr cannot set it on a new socket; not "
                              "supported")


def _waiting(info: bytes) -> int:
    """A listener's accept queue length (tcpi_unacked of a listener)."""
    return int(struct.unpack_from("<I", info, 24)[0])


def _bytes_sent(info: bytes) -> int:
    """Bytes of data the peer acknowledged (tcpi_bytes_acked counts the SYN too)."""
    return max(0, int(struct.unpack_from("<Q", info, 120)[0]) - 1)


def _check_tcp(pid: int, label: str, sock: socket.socket) -> None:
    info = _tcp_info(sock)
    state = info[0]
    if state not in CONNECTED and state not in (CLOSE, LISTEN):
        raise Unsupported(pid, label, f"a TCP socket in state {STATES.get(state, state)} is not supported yet "
                          "(established, half-closed, listening and closed ones are)")
    if state in CONNECTED and _ioctl_int(sock, SIOCATMARK):
        raise Unsupported(pid, label, "urgent (out-of-band) data is pending; not supported")


def _scratch_refusal(family: int, stype: int, options: list[image_pb2.SocketOption]) -> str:
    """The first of `options` a new socket of incr's does not take back as recorded ("" if none)."""
    with socket.socket(family, stype) as scratch:
        return (unixsock.set_options(scratch, options, buffers=True, by_name=BY_NAME)
                or unixsock.set_options(scratch, options, buffers=False, by_name=BY_NAME))


# -- the frozen dump ---------------------------------------------------------------------


@dataclass(frozen=True)
class DiagSocket:
    """A socket as inet_diag lists it."""

    family: int
    protocol: int
    state: int
    sockid: bytes               # struct inet_diag_sockid as the kernel gave it (it names the socket exactly)
    inode: int                  # 0: no descriptor holds it (a closed connection the kernel still finishes)
    rqueue: int
    shutdown: int

    @property
    def local_port(self) -> int:
        return int(struct.unpack_from(">H", self.sockid)[0])

    @property
    def local_addr(self) -> str:
        raw = self.sockid[4:20] if self.family == socket.AF_INET6 else self.sockid[4:8]
        return socket.inet_ntop(self.family, raw)

    @property
    def peer_port(self) -> int:
        return int(struct.unpack_from(">H", self.sockid, 2)[0])

    @property
    def peer_addr(self) -> str:
        raw = self.sockid[20:36] if self.family == socket.AF_INET6 else self.sockid[20:24]
        return socket.inet_ntop(self.family, raw)


def _netlink(family: int, protocol: int, kind: int, flags: int, states: int, sockid: bytes = b"",
             ext: int = 0) -> Iterator[bytes]:
    """The bodies of the answers to one inet_diag request."""
    nlmsg = unixsock._NLMSG
    req = _INET_REQ.pack(family, protocol, ext, 0, states)
    if sockid:
        req = req[:8] + sockid
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, unixsock.NETLINK_SOCK_DIAG) as nl:
        nl.send(nlmsg.pack(nlmsg.size + len(req), kind, flags, 1, 0) + req)
        while True:
            data = nl.recv(1 << 16)
            pos = 0
            while pos < len(data):
                length, mtype, _, _, _ = nlmsg.unpack_from(data, pos)
                if mtype == unixsock.NLMSG_DONE:
                    return
                if mtype == unixsock.NLMSG_ERROR:
                    code = -struct.unpack_from("<i", data, pos + nlmsg.size)[0]
                    if code:
                        raise OSError(code, os.strerror(code))
                    return                          # an acknowledgement
                yield data[pos + nlmsg.size:pos + length]
                pos += (length + 3) & ~3


def diag_sockets(protocol: int, states: int = 0xFFFFFFFF) -> list[DiagSocket]:
    """Every socket of `protocol` (IPv4 and IPv6, this network namespace) in `states` (a mask of
    1 << state), as inet_diag lists them."""
    out = []
    for family in FAMILIES:
        try:
            for body in _netlink(family, protocol, unixsock.SOCK_DIAG_BY_FAMILY,
                                 unixsock.NLM_F_REQUEST | unixsock.NLM_F_DUMP, states,
                                 ext=1 << (INET_DIAG_SHUTDOWN - 1)):
                fam, state, _, _, _, rqueue, _, _, ino = _INET_MSG.unpack_from(body)
                shutdown = 0
                at = _INET_MSG.size
                while at + 4 <= len(body):
                    alen, atype = struct.unpack_from("<HH", body, at)
                    if atype == INET_DIAG_SHUTDOWN and alen > 4:
                        shutdown = body[at + 4]
                    at += (alen + 3) & ~3
                out.append(DiagSocket(fam, protocol, state, bytes(body[4:52]), ino, rqueue, shutdown))
        except OSError as exc:
            raise EngineError(f"the kernel would not list its sockets (inet_diag: {exc.strerror}); load its "
                              "inet_diag module (modprobe inet_diag) and try again") from None
    return out


def _diag(protocol: int) -> dict[int, tuple[int, int, int]]:
    """inode -> (state, shutdown, rqueue) of every socket of `protocol` a descriptor holds."""
    return {d.inode: (d.state, d.shutdown, d.rqueue) for d in diag_sockets(protocol) if d.inode}


# States of a connection closed by its program that the kernel still finishes (no descriptor holds
# it): a killed job's connections, for a while.
ORPHAN_STATES = (1 << 4) | (1 << 5) | (1 << 6) | (1 << 9) | (1 << 11)   # FIN_WAIT1/2, TIME_WAIT, LAST_ACK, CLOSING
SOCK_DESTROY = 21


def _same_place(d: DiagSocket, img: image_pb2.InetSocketImage) -> bool:
    wild = ("0.0.0.0", "::")
    return d.local_port == img.local_port and (
        _plain(d.local_addr) == _plain(img.local_addr) or d.local_addr in wild or img.local_addr in wild)


def _same_connection(d: DiagSocket, img: image_pb2.InetSocketImage) -> bool:
    return (d.local_port, d.peer_port, _plain(d.local_addr), _plain(d.peer_addr)) == (
        img.local_port, img.peer_port, _plain(img.local_addr), _plain(img.peer_addr))


def clear_orphans(img: image_pb2.InetSocketImage, *, connection: bool = False) -> int:
    """Ends the connections a killed job left closing at the address `img` binds (no descriptor
    holds them: TIME_WAIT and kin), which keep a listener from binding and listening there again
    unless each had SO_REUSEADDR; with `connection`, only the one on `img`'s own 4-tuple, whose
    retransmissions would reach the connection made again there.  Returns how many."""
    ended = 0
    same = _same_connection if connection else _same_place
    for d in diag_sockets(socket.IPPROTO_TCP, ORPHAN_STATES):
        if d.inode == 0 and same(d, img):
            with contextlib.suppress(OSError):          # (gone meanwhile)
                for _ in _netlink(d.family, d.protocol, SOCK_DESTROY, unixsock.NLM_F_REQUEST | NLM_F_ACK,
                                  1 << d.state, d.sockid):
                    pass
                ended += 1
    return ended


@dataclass
class _Seen:
    holder: Holder
    image: image_pb2.InetSocketImage
    label: str
    waiting: int = 0            # a listener: connections in its accept queue
    sent: int = 0               # an established socket: bytes its peer acknowledged, and bytes queued to send


def capture(holders: dict[int, Holder], journal_of: Callable[[int], Journal], root: int, *,
            outside_ok: bool = False, ends_job: bool = False) -> tuple[list[image_pb2.InetSocketImage], Hold | None]:
    """Images of the job's inet sockets (inode -> the first process and descriptor holding it), the
    job frozen; established connections read in repair mode under the network lock.  `outside_ok`:
    connections to peers outside the job are read too (checkpoint --tcp-established), else refused;
    with `ends_job` their ports stay locked from before they are read until the restore (the Hold
    returned, which the frozen tree settles as it lets the job go)."""
    if not holders:
        return [], None
    diags: dict[int, dict[int, tuple[int, int, int]]] = {}
    seen: list[_Seen] = []
    for ino, h in sorted(holders.items(), key=lambda kv: (kv[1].pid, kv[1].fd)):
        with _taken(h.pid, h.fd) as sock:
            label = f"fd {h.fd} ({describe(sock)})"
            proto = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL)
            if proto not in diags:
                diags[proto] = _diag(proto)
            img = _describe_socket(h, label, sock, ino, diags[proto], journal_of(h.pid))
            s = _Seen(h, img, label)
            if img.type == socket.SOCK_STREAM and (img.state == LISTEN or img.state in CONNECTED):
                info = _tcp_info(sock)
                s.waiting = _waiting(info) if img.state == LISTEN else 0
                s.sent = _bytes_sent(info) + _ioctl_int(sock, termios.TIOCOUTQ) if img.state in CONNECTED else 0
            seen.append(s)
    _find_pending(seen)
    outside = _check_peers([s for s in seen if not s.image.pending], outside_ok)
    ports = {s.image.local_port for s in seen if s.image.local_port}
    hold = None
    with netlock.locked(ports, journal_of(root), root):
        if outside and ends_job:
            hold = Hold(root, journal_of(root), [(s.holder.pid, s.holder.fd, journal_of(s.holder.pid), s.image.ino)
                                                 for s in outside])
            hold.take({s.image.local_port for s in outside})
        try:
            for s in seen:
                if s.image.type == socket.SOCK_STREAM and s.image.state in CONNECTED and not s.image.pending:
                    with _taken(s.holder.pid, s.holder.fd) as sock:
                        _read_connection(s.holder, sock, s.image, journal_of(s.holder.pid))
        except BaseException:
            if hold is not None:
                hold.after_release(kill=False)
            raise
    return [s.image for s in seen], hold


@dataclass
class Hold:
    """The lock on the ports of a job's connections to outside it, from before they are read to
    their restore (netlock.py), for a checkpoint that kills the job.  Just before the kill each such
    socket goes into repair mode (noted in its process's journal), so that the kill closes it
    without a packet and leaves nothing behind on its 4-tuple; the lock's note is cleared once the
    job is gone, the lock kept.  Let go instead (a failed checkpoint): the lock is taken out."""

    root: int
    journal: Journal
    sockets: list[tuple[int, int, Journal, int]]      # pid, fd, that process's journal, the socket's inode
    _repairs: list[tuple[Journal, Leftover]] = field(default_factory=list)      # (Leftover.at: the fd)

    @property
    def table(self) -> str:
        return netlock.hold_table(self.root)

    @property
    def _note(self) -> Leftover:
        return Leftover(self.root, "netlock", 0, what=self.table)

    def take(self, ports: set[int]) -> None:
        self.journal.note(self._note)
        failed = netlock.take(self.table, ports)
        if failed:
            netlock.drop(self.table)
            self.journal.clear(self._note)
            raise EngineError(f"cannot lock the ports of the connections of PID {self.root} leading out of the job "
                              f"until they are restored: {failed}")

    def before_release(self, *, kill: bool) -> None:
        if not kill:
            return
        for pid, fd, journal, ino in self.sockets:
            note = Leftover(pid, "tcp-repair", fd, what=f"socket:[{ino}]")
            journal.note(note)
            self._repairs.append((journal, note))
            try:
                with _taken(pid, fd) as sock:
                    sock.setsockopt(SOL_TCP, TCP_REPAIR, REPAIR_ON)
            except (OSError, EngineError) as exc:       # the kill goes on: the checkpoint is committed
                log.warning("PID %d: fd %d (socket:[%d]) could not be put in repair mode before the kill (%s): "
                            "its peer may see it close", pid, fd, ino, exc)

    def after_release(self, *, kill: bool) -> None:
        if not kill:
            for _, note in self._repairs:
                with contextlib.suppress(OSError, EngineError), _taken(note.pid, note.at) as sock:
                    sock.setsockopt(SOL_TCP, TCP_REPAIR, REPAIR_OFF_NO_WP)
            if netlock.drop(self.table):
                self.journal.clear(self._note)
        else:
            self.journal.clear(self._note)
        for journal, note in self._repairs:
            journal.clear(note)
        self._repairs.clear()


def _describe_socket(holder: Holder, label: str, sock: socket.socket, ino: int,
                     diag: dict[int, tuple[int, int, int]], journal: Journal) -> image_pb2.InetSocketImage:
    pid = holder.pid
    family, stype, _ = _kind(sock)
    names = Names.of(sock)
    owner = os.fstat(sock.fileno())
    img = image_pb2.InetSocketImage(ino=ino, family=family, type=stype, local_addr=names.local[0],
                                    local_port=names.local[1], bound=names.local[1] != 0,
                                    flowinfo=names.local[2], scope_id=names.local[3],
                                    uid=owner.st_uid, gid=owner.st_gid)
    if names.peer:
        img.peer_addr, img.peer_port = names.peer
    _, shutdown, _ = diag.get(ino, (0, 0, 0))
    if stype == socket.SOCK_STREAM:
        img.state = _tcp_info(sock)[0]
        _check_tcp(pid, label, sock)
        if img.state == LISTEN:
            img.backlog = _listen_backlog(sock)
    else:
        img.state = ESTABLISHED if names.peer else CLOSE
        img.datagrams.extend(_queued_datagrams(holder, label, sock, journal))
    img.shutdown = shutdown
    img.options.extend(unixsock.read_options(sock, options_of(family, stype)))
    return img


def _queued_datagrams(holder: Holder, label: str, sock: socket.socket,
                      journal: Journal) -> list[image_pb2.Datagram]:
    """The datagrams queued in `sock` (descriptor holder.fd of holder.pid), oldest first, each with
    its source, peeked one after the other from a moving peek offset (SO_PEEK_OFF, noted in the
    journal while moved, put back after): the queue is left as it was."""
    pid = holder.pid
    before = sock.getsockopt(socket.SOL_SOCKET, SO_PEEK_OFF)
    out: list[image_pb2.Datagram] = []
    note = Leftover(pid, "peek-off", holder.fd, size=before, what=f"socket:[{os.fstat(sock.fileno()).st_ino}]")
    journal.note(note)
    sock.setsockopt(socket.SOL_SOCKET, SO_PEEK_OFF, 0)
    try:
        while True:
            if out:
                fault_point("udp-peek")
            try:
                data, _, flags, addr = sock.recvmsg(MAX_DATAGRAM, 0, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            if flags & socket.MSG_TRUNC:
                raise Unsupported(pid, label, f"a queued datagram is larger than {MAX_DATAGRAM} bytes; not supported")
            if not data:
                raise Unsupported(pid, label, "an empty datagram is queued (a peek cannot step past it); not "
                                  "supported yet")
            out.append(image_pb2.Datagram(data=data, source_addr=addr[0], source_port=addr[1]))
    finally:
        sock.setsockopt(socket.SOL_SOCKET, SO_PEEK_OFF, before)
        journal.clear(note)
    return out


def _listen_backlog(sock: socket.socket) -> int:
    """listen(2)'s backlog: TCP_INFO's tcpi_sacked of a listener (sk_max_ack_backlog)."""
    return int(struct.unpack_from("<I", _tcp_info(sock), 28)[0])


def _find_pending(seen: list[_Seen]) -> None:
    """Marks the job's connections that wait in the accept queue of a listener of the job (the
    accepted end, which no descriptor holds yet, is the kernel's: inet_diag lists it, inode 0),
    and refuses a listener whose queue holds others, or one that was sent data."""
    if not any(s.waiting for s in seen):
        return
    queued = {(_plain(d.local_addr), d.local_port, _plain(d.peer_addr), d.peer_port)
              for d in diag_sockets(socket.IPPROTO_TCP, 1 << ESTABLISHED | 1 << CLOSE_WAIT) if d.inode == 0}
    listeners = [s for s in seen if s.image.type == socket.SOCK_STREAM and s.image.state == LISTEN]
    found = {id(s): 0 for s in listeners}
    for s in seen:
        i = s.image
        if i.type != socket.SOCK_STREAM or i.state not in CONNECTED:
            continue
        if (_plain(i.peer_addr), i.peer_port, _plain(i.local_addr), i.local_port) not in queued:
            continue
        listener = next((ls for ls in listeners if ls.image.local_port == i.peer_port
                         and _plain(ls.image.local_addr) in (_plain(i.peer_addr), "0.0.0.0", "::")), None)
        if listener is None:
            continue
        if s.sent or i.state != ESTABLISHED:
            done = "its end shut down" if i.state != ESTABLISHED else "data sent on it"
            raise Unsupported(s.holder.pid, s.label, f"its connection waits in the accept queue of {listener.label} "
                              f"with {done}, which is not supported yet (checkpoint once the job has accepted it)")
        i.pending = True
        found[id(listener)] += 1
    for ls in listeners:
        if ls.waiting != found[id(ls)]:
            raise Unsupported(ls.holder.pid, ls.label, f"{ls.waiting - found[id(ls)]} connection(s) from outside the "
                              "job wait in its accept queue, which is not supported yet (checkpoint once the job "
                              "has accepted them)")


def _plain(addr: str) -> str:
    """An IPv4-mapped IPv6 address (a dual-stack socket's name for an IPv4 peer) as IPv4."""
    return addr.removeprefix("::ffff:") if addr.startswith("::ffff:") and "." in addr else addr


def _check_peers(seen: list[_Seen], outside_ok: bool) -> list[_Seen]:
    """Every connection's peer is a socket of the job (both come back together); with
    `outside_ok`, those whose peer is not are marked `outside` and listed."""
    ends = {(_plain(s.image.local_addr), s.image.local_port, _plain(s.image.peer_addr), s.image.peer_port)
            for s in seen if s.image.type == socket.SOCK_STREAM and s.image.state in CONNECTED}
    out: list[_Seen] = []
    for s in seen:
        i = s.image
        if i.type == socket.SOCK_STREAM and i.state in CONNECTED \
                and (_plain(i.peer_addr), i.peer_port, _plain(i.local_addr), i.local_port) not in ends:
            if outside_ok:
                i.outside = True
                out.append(s)
                continue
            raise Unsupported(s.holder.pid, s.label, "its peer is not a socket of the job: a connection leading out "
                              "of the job is checkpointed only with --tcp-established (you say its peer will still "
                              "be there when the job is restored)")
    return out


def _read_connection(holder: Holder, sock: socket.socket, img: image_pb2.InetSocketImage, journal: Journal) -> None:
    """`img.tcp` from the established `sock`, in repair mode for the time it takes (noted)."""
    note = Leftover(holder.pid, "tcp-repair", holder.fd, what=f"socket:[{img.ino}]")
    journal.note(note)
    sock.setsockopt(SOL_TCP, TCP_REPAIR, REPAIR_ON)
    try:
        fault_point("tcp-repair")
        tcp = img.tcp
        info = _tcp_info(sock)
        options, wscale = info[5], info[6]
        tcp.wscale = bool(options & TCPI_OPT_WSCALE)
        tcp.sack = bool(options & TCPI_OPT_SACK)
        tcp.timestamps = bool(options & TCPI_OPT_TIMESTAMPS)
        if tcp.wscale:
            tcp.snd_wscale, tcp.rcv_wscale = wscale & 0xF, wscale >> 4
        tcp.mss = sock.getsockopt(SOL_TCP, socket.TCP_MAXSEG)      # (in repair mode: the clamp, mss_clamp)
        tcp.window_clamp = sock.getsockopt(SOL_TCP, TCP_WINDOW_CLAMP)
        tcp.timestamp = sock.getsockopt(SOL_TCP, TCP_TIMESTAMP) & 0xFFFFFFFF
        tcp.window = sock.getsockopt(SOL_TCP, TCP_REPAIR_WINDOW, _WINDOW_SIZE)
        # A FIN takes a sequence number but no byte of a queue: the sequences are kept without the
        # FINs, which the restore has each end send again (Maker.finish).
        fin_in, fin_out, fin_unacked = (img.state in states for states in (FIN_RECEIVED, FIN_SENT, FIN_UNACKED))
        if fin_in:
            tcp.window = _window_before_fin(tcp.window)
        sock.setsockopt(SOL_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE)
        rcv_nxt = sock.getsockopt(SOL_TCP, TCP_QUEUE_SEQ) & 0xFFFFFFFF
        tcp.recv_queue = _peek_all(sock, _ioctl_int(sock, termios.FIONREAD))
        tcp.recv_seq = (rcv_nxt - fin_in - len(tcp.recv_queue)) & 0xFFFFFFFF
        sock.setsockopt(SOL_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE)
        write_seq = sock.getsockopt(SOL_TCP, TCP_QUEUE_SEQ) & 0xFFFFFFFF
        unsent = _ioctl_int(sock, SIOCOUTQNSD)
        tcp.unsent = unsent - 1 if fin_unacked and unsent else unsent
        tcp.send_queue = _peek_all(sock, _ioctl_int(sock, termios.TIOCOUTQ) - fin_unacked)
        tcp.send_seq = (write_seq - fin_out - len(tcp.send_queue)) & 0xFFFFFFFF
        sock.setsockopt(SOL_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE)
    finally:
        sock.setsockopt(SOL_TCP, TCP_REPAIR, REPAIR_OFF_NO_WP)
        journal.clear(note)


def _window_before_fin(window: bytes) -> bytes:
    """struct tcp_repair_window as it was before the peer's FIN: the kernel takes back no window
    update beyond the next sequence number a restored socket expects (the FIN's); the window's
    right edge stays where it was."""
    snd_wl1, snd_wnd, max_window, rcv_wnd, rcv_wup = struct.unpack("<5I", window)
    return struct.pack("<5I", snd_wl1, snd_wnd, max_window, rcv_wnd + 1, (rcv_wup - 1) & 0xFFFFFFFF)


def _peek_all(sock: socket.socket, size: int) -> bytes:
    """The `size` bytes of the queue repair mode selected, peeked (left in place)."""
    if size <= 0:
        return b""
    data = sock.recv(size, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    if len(data) != size:
        raise EngineError(f"TCP repair: {len(data)} of the {size} bytes queued could be read")
    return data


def repair_unavailable() -> str:
    """Why TCP repair cannot be used here ("" when it can): it needs CAP_NET_ADMIN."""
    try:
        with socket.socket() as probe:
            probe.setsockopt(SOL_TCP, TCP_REPAIR, REPAIR_ON)
            probe.setsockopt(SOL_TCP, TCP_REPAIR, REPAIR_OFF_NO_WP)
    except OSError as exc:
        return f"TCP_REPAIR refused ({exc.strerror}; it needs CAP_NET_ADMIN)"
    return ""


def needs_version_7(image: image_pb2.TreeImage) -> bool:
    return bool(image.inet_sockets)


def needs_version_8(image: image_pb2.TreeImage) -> bool:
    """Half-closed connections, which a version-7 reader would make plain bound sockets, and connections
    leading outside the job, which it would not lock."""
    return any((i.type == socket.SOCK_STREAM and i.state in CONNECTED - {ESTABLISHED}) or i.outside
               for i in image.inet_sockets)


# -- restore -----------------------------------------------------------------------------


def _address(img: image_pb2.InetSocketImage) -> tuple[str, int] | tuple[str, int, int, int]:
    if img.family == socket.AF_INET6:
        return (img.local_addr, img.local_port, img.flowinfo, img.scope_id)
    return (img.local_addr, img.local_port)


def _peer(img: image_pb2.InetSocketImage) -> tuple[str, int]:
    return (img.peer_addr, img.peer_port)


class Maker:
    """Creates the job's inet sockets during a restore (Installer._obtain), each in the first
    process that holds it; connections stay in repair mode until finish()."""

    def __init__(self, images: Iterable[image_pb2.InetSocketImage]) -> None:
        self.images = {i.ino: i for i in images}
        self._repaired: list[tuple[socket.socket, image_pb2.InetSocketImage]] = []
        self._pending: list[tuple[socket.socket, image_pb2.InetSocketImage]] = []     # connected in finish()

    def obtain(self, target: RemoteProcess, ino: int) -> int:
        """Socket `ino` made in `target`: its descriptor there."""
        img = self.images.get(ino)
        if img is None:
            raise RestoreError(f"cannot restore socket:[{ino}]: the checkpoint does not describe it")
        fd = target.call("socket", img.family, img.type, 0)
        pidfd = os.pidfd_open(target.pid)
        try:
            sock = socket.socket(fileno=pt.pidfd_getfd(pidfd, fd))
        finally:
            os.close(pidfd)
        try:
            unixsock.give_owner(sock, image_pb2.Owner(uid=img.uid, gid=img.gid))   # (made by the stub, root)
            self._build(sock, img)
        except OSError as exc:
            sock.close()
            raise RestoreError(f"cannot restore the {_what(img)} of PID {target.vpid}: {exc.strerror}") from None
        except BaseException:
            sock.close()
            raise
        if img.type == socket.SOCK_STREAM and img.state in CONNECTED:
            (self._pending if img.pending else self._repaired).append((sock, img))
        else:
            sock.close()
        return fd

    def _build(self, sock: socket.socket, img: image_pb2.InetSocketImage) -> None:
        others = [o for o in img.options if o.name != REUSEADDR]
        failed = unixsock.set_options(sock, others, buffers=True, by_name=BY_NAME) or \
            unixsock.set_options(sock, others, buffers=False, by_name=BY_NAME)
        if failed:
            raise RestoreError(f"cannot restore the {_what(img)}: socket option {failed}")
        if img.type == socket.SOCK_STREAM and img.state in CONNECTED:
            if not img.pending:
                self._connection(sock, img)
            return
        if img.bound:
            if img.type == socket.SOCK_STREAM:
                clear_orphans(img)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(_address(img))
        if img.type == socket.SOCK_STREAM and img.state == LISTEN:
            sock.listen(img.backlog)
        if img.type == socket.SOCK_DGRAM and img.peer_port:
            sock.connect(_peer(img))
        if img.datagrams:
            _requeue(sock, img)
        self._after(sock, img)

    @staticmethod
    def _connection(sock: socket.socket, img: image_pb2.InetSocketImage) -> None:
        tcp = img.tcp
        # What the killed job (or an earlier attempt, under the lock) left closing on its 4-tuple.
        clear_orphans(img, connection=True)
        sock.setsockopt(SOL_TCP, TCP_REPAIR, REPAIR_ON)
        sock.setsockopt(SOL_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE)
        sock.setsockopt(SOL_TCP, TCP_QUEUE_SEQ, struct.pack("<I", tcp.recv_seq))
        sock.setsockopt(SOL_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE)
        sock.setsockopt(SOL_TCP, TCP_QUEUE_SEQ, struct.pack("<I", tcp.send_seq))
        sock.setsockopt(SOL_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE)
        sock.bind(_address(img))
        # The MSS a repaired connect computes its segment size from (mss_cache, what TCP_MAXSEG reads
        # once repair mode ends, until an ACK widens the window) is the user's MSS if set, else 536:
        # set it for the connect, as far as TCP_MAXSEG takes it (a loopback MSS is larger).
        sock.setsockopt(SOL_TCP, socket.TCP_MAXSEG, min(tcp.mss, MAX_USER_MSS))
        sock.connect(_peer(img))
        sock.setsockopt(SOL_TCP, socket.TCP_MAXSEG, 0)
        opts = [(TCPOPT_MSS, tcp.mss)]
        if tcp.wscale:
            opts.append((TCPOPT_WINDOW, tcp.snd_wscale | tcp.rcv_wscale << 16))
        if tcp.sack:
            opts.append((TCPOPT_SACK_PERM, 0))
        if tcp.timestamps:
            opts.append((TCPOPT_TIMESTAMP, 0))
        sock.setsockopt(SOL_TCP, TCP_REPAIR_OPTIONS, b"".join(struct.pack("<II", c, v) for c, v in opts))
        if tcp.timestamps:
            sock.setsockopt(SOL_TCP, TCP_TIMESTAMP, struct.pack("<I", tcp.timestamp))
        sent = len(tcp.send_queue) - tcp.unsent
        for queue, data in ((TCP_RECV_QUEUE, tcp.recv_queue), (TCP_SEND_QUEUE, tcp.send_queue[:sent])):
            if data:
                sock.setsockopt(SOL_TCP, TCP_REPAIR_QUEUE, queue)
                _send_all(sock, data)
        sock.setsockopt(SOL_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE)
        if tcp.window:
            sock.setsockopt(SOL_TCP, TCP_REPAIR_WINDOW, tcp.window)
        if tcp.window_clamp:
            sock.setsockopt(SOL_TCP, TCP_WINDOW_CLAMP, tcp.window_clamp)

    @staticmethod
    def _after(sock: socket.socket, img: image_pb2.InetSocketImage) -> None:
        """What must come last: SO_REUSEADDR as recorded (a bind, and the end of repair mode, set
        it), and a shutdown."""
        for o in img.options:
            if o.name == REUSEADDR:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, _int(o.value))
        if img.shutdown & RCV_SHUTDOWN:
            sock.shutdown(socket.SHUT_RD)
        if img.shutdown & SEND_SHUTDOWN and img.type == socket.SOCK_DGRAM:
            sock.shutdown(socket.SHUT_WR)

    def finish(self) -> None:
        """Every socket of the job exists: connections leave repair mode (with a window probe, so
        each peer learns the window at once), what was never sent is sent, and an end that had shut
        down for sending does so again: its FIN follows its bytes to its peer (restored in the
        job), which had it already or has it now."""
        try:
            for sock, img in self._repaired:
                try:
                    sock.setsockopt(SOL_TCP, TCP_REPAIR, REPAIR_OFF)
                    if img.tcp.unsent:
                        _send_all(sock, img.tcp.send_queue[len(img.tcp.send_queue) - img.tcp.unsent:])
                    self._after(sock, img)
                    if img.state in FIN_SENT:       # (last: the connection may end at once, on the loopback)
                        sock.shutdown(socket.SHUT_WR)
                except OSError as exc:
                    raise RestoreError(f"cannot restore the {_what(img)}: {exc.strerror}") from None
            for sock, img in self._repaired:
                if img.state in FIN_RECEIVED:
                    _await_fin(sock, img)
            # Each listener listens: a connection that waited in one's accept queue is made again,
            # in the order the clients' sockets were made.
            for sock, img in sorted(self._pending, key=lambda p: p[1].ino):
                try:
                    _connect_again(sock, img)
                    self._after(sock, img)
                except OSError as exc:
                    raise RestoreError(f"cannot restore the {_what(img)}, which waited to be accepted: "
                                       f"{exc.strerror}") from None
        finally:
            self.abandon()

    def abandon(self) -> None:
        for sock, _ in (*self._repaired, *self._pending):
            sock.close()
        self._repaired.clear()
        self._pending.clear()


def _what(img: image_pb2.InetSocketImage) -> str:
    kind = "TCP" if img.type == socket.SOCK_STREAM else "UDP"
    where = _show(img.local_addr, img.local_port)
    return f"{kind} socket {where}" + (f" -> {_show(img.peer_addr, img.peer_port)}" if img.peer_port else "")


def _await_fin(sock: socket.socket, img: image_pb2.InetSocketImage, timeout: float = 5.0) -> None:
    """Until the FIN its peer sent again has reached `sock` (on the loopback, at once): the job reads
    its end of file as before, never a wait."""
    deadline = time.monotonic() + timeout
    while _tcp_info(sock)[0] in (ESTABLISHED, FIN_WAIT1, FIN_WAIT2):
        if time.monotonic() > deadline:
            raise RestoreError(f"cannot restore the {_what(img)}: the FIN its peer sent again has not arrived "
                               f"in {timeout:.0f} s")
        time.sleep(0.001)


def _connect_again(sock: socket.socket, img: image_pb2.InetSocketImage) -> None:
    """A connection that waited in a listener's accept queue, made again from its own address: a
    handshake on the loopback, so the listener's queue holds it again."""
    clear_orphans(img)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(_address(img))
    err = sock.connect_ex(_peer(img))
    if err == errno.EINPROGRESS:                # the job's description is non-blocking
        select.select([], [sock], [], 10.0)
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err:
        raise OSError(err, os.strerror(err))


def _requeue(sock: socket.socket, img: image_pb2.InetSocketImage) -> None:
    """The datagrams `img` held, queued in `sock` again, each from its own source address and port:
    sent from raw sockets that write the IP and UDP headers themselves (a socket of incr's bound
    there would clash with the sender's own, a socket of the job or not, which may be bound)."""
    for d in img.datagrams:
        src, dst = _plain(d.source_addr), _plain(img.local_addr)
        v4 = "." in src
        if dst in ("0.0.0.0", "::") or ("." in dst) != v4:
            dst = "127.0.0.1" if v4 else "::1"
        udp = struct.pack("!HHHH", d.source_port, img.local_port, 8 + len(d.data), 0) + d.data
        if v4:
            with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) as raw:
                # IP_HDRINCL: the kernel fills in the total length, the ID and the header checksum; a
                # UDP checksum of 0 is "none" over IPv4.
                header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 0, 0, 0x4000, 64, socket.IPPROTO_UDP, 0,
                                     socket.inet_aton(src), socket.inet_aton(dst))
                raw.sendto(header + udp, (dst, 0))
        else:
            s6, d6 = socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst)
            pseudo = s6 + d6 + struct.pack("!IxxxB", len(udp), socket.IPPROTO_UDP)
            udp = udp[:6] + struct.pack("!H", _checksum(pseudo + udp) or 0xFFFF) + udp[8:]
            with socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW) as raw:
                raw.setsockopt(socket.IPPROTO_IPV6, IPV6_HDRINCL, 1)
                header = struct.pack("!IHBB16s16s", 6 << 28, len(udp), socket.IPPROTO_UDP, 64, s6, d6)
                raw.sendto(header + udp, (dst, 0))
    if len(_queued_now(sock)) != len(img.datagrams):
        raise RestoreError(f"cannot restore the {_what(img)}: its {len(img.datagrams)} queued datagrams did not "
                           "all arrive again")


def _queued_now(sock: socket.socket) -> list[bytes]:
    """What `sock` (a new socket of the restore's) holds queued, peeked."""
    sock.setsockopt(socket.SOL_SOCKET, SO_PEEK_OFF, 0)
    out = []
    try:
        while True:
            try:
                out.append(sock.recv(MAX_DATAGRAM, socket.MSG_PEEK | socket.MSG_DONTWAIT))
            except BlockingIOError:
                return out
    finally:
        sock.setsockopt(socket.SOL_SOCKET, SO_PEEK_OFF, -1)


def _checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return int(~total & 0xFFFF)


def _send_all(sock: socket.socket, data: bytes) -> None:
    """All of `data` into `sock`, whatever O_NONBLOCK the job gave its description."""
    view = memoryview(data)
    while view:
        try:
            n = sock.send(view, socket.MSG_DONTWAIT)
        except BlockingIOError:
            select.select([], [sock], [], 5.0)
            continue
        view = view[n:]


def _protocol(img: image_pb2.InetSocketImage) -> int:
    return socket.IPPROTO_TCP if img.type == socket.SOCK_STREAM else socket.IPPROTO_UDP


def lock_outside(tree: image_pb2.TreeImage) -> str:
    """The lock on the ports of the job's connections leading outside it, taken (again: the
    checkpoint's, when it killed the job, is replaced at once) before any socket is made, so that no
    packet of their peers is answered until the job runs (restore.restore_tree takes it out then; a
    restore that fails leaves it for the next); its table, "" when there are no such connections."""
    ports = {i.local_port for i in tree.inet_sockets if i.outside}
    if not ports:
        return ""
    table = netlock.hold_table(tree.root_pid)
    failed = netlock.take(table, ports)
    if failed:
        raise RestoreError(f"cannot lock the ports of the job's connections leading out of it while they are "
                           f"restored: {failed}")
    return table


def preflight(tree: image_pb2.TreeImage) -> None:
    """Refuses, before anything is made, a restore whose listening or bound ports a socket some
    program holds takes now (connections the killed job left closing do not count: clear_orphans)."""
    wanted = [i for i in tree.inet_sockets if i.bound and not (i.type == socket.SOCK_STREAM and i.state in CONNECTED)]
    held = {p: [d for d in diag_sockets(p) if d.inode] for p in {_protocol(i) for i in wanted}}
    for img in wanted:
        if any(_same_place(d, img) for d in held[_protocol(img)]):
            raise RestoreError(f"cannot restore the {_what(img)}: the address is in use now (by another program, "
                               "or the job still running?)")
