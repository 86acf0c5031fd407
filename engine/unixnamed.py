"""Unix sockets that are more than a pair: bound to names (paths and abstract ones), listening with
connections waiting in their backlog, connected through a name (connect(2) and accept(2)), never
connected, or datagram sockets fed by sendto(2).  Dump and restore.  Plain socket pairs, whose
ends have no name, are unixsock.py's; this module uses its option, queue and creator machinery.

Dump (every process frozen), through each socket taken into incr with pidfd_getfd: its name and
state, peer, listen(2) backlog and the clients waiting in it (sock_diag's UNIX_DIAG_ICONS, in
order), its options (unixsock.OPTIONS), shutdown state and SO_PEERCRED, whether it owns the file
at its path (UNIX_DIAG_VFS against stat(2)) with the file's mode and owner, and what waits to be
read from it: a stream's bytes (peeked), a seqpacket's messages (read and sent back through the
peer, as for pairs), a datagram socket's messages with the address each came from (peeked first
to learn the senders, then read and sent back, each from its sender: a socket of the job, or an
unbound socket of incr's when it came from an unbound one).

What SO_PEERCRED reports was decided by the kernel at listen(2) and connect(2): a listener and the
clients connected to it name the process that called listen(), an accepted socket the one that
called connect(), with their effective ids then.  So the restore calls them in those processes
(or in a brief helper with an exited one's PID, unixsock.Acting).  An accepted socket gets its
name from its listener: the restore binds a listener of its own at that name for a moment,
connects the client to it, accepts, and removes it; the job's own listener (when it still
exists) is bound after, and its pending clients connect to it again, in their order.  A socket
whose file was removed is bound, used (its clients connect, its datagrams are put back) and its
file removed again; a socket file at one of the job's names that no socket of the job owned is
made again last, as a file no socket listens on.

Refused at the checkpoint: a relative name (bound against a working directory incr cannot know),
a connection from outside the job waiting in a backlog, a client waiting in a backlog outside the
job or having sent data before being accepted (the data sits in a socket no descriptor reaches),
datagrams from a named socket outside the job, or queued in a socket whose file was removed.
Refused at the restore, before anything is made: a name whose file is now a live socket (the job
runs still?) or not a socket, or whose directory is gone.  A socket file at one of the job's
names that no live socket owns is the job's own leftover: it is removed and made again.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import socket
import stat
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from incr.proto import image_pb2

from . import inflight, proc
from . import unixsock as us
from .errors import RestoreError, Unsupported
from .holders import Holder
from .pipes import stolen
from .remote import RemoteProcess

_SOCKADDR = 110                     # sizeof(struct sockaddr_un)
F_DUPFD_CLOEXEC, F_GETFL, F_SETFL = 1030, 3, 4
O_NONBLOCK = os.O_NONBLOCK
_libc = ctypes.CDLL(None, use_errno=True)


def is_path(name: bytes) -> bool:
    return bool(name) and name[:1] != b"\0"


def path_of(name: bytes) -> str:
    """The file a path name names (without the kernel's NUL)."""
    return os.fsdecode(name.split(b"\0", 1)[0])


def show(name: bytes) -> str:
    return path_of(name) if is_path(name) else "@" + name[1:].decode(errors="backslashreplace")


def concerns(info: us.UnixInfo, unix: Mapping[int, us.UnixInfo], pending: set[int]) -> bool:
    """Whether a socket of the job is this module's (not a plain pair's end): it or its peer has a
    name, it listens, was never connected, waits in a backlog, or is a datagram socket connected to
    one not connected back."""
    if info.name or info.state != us.TCP_ESTABLISHED or info.ino in pending:
        return True
    peer = unix.get(info.peer)
    return peer is not None and (bool(peer.name) or peer.peer != info.ino)


def pending_clients(unix: Mapping[int, us.UnixInfo]) -> dict[int, int]:
    """Every client whose connection waits in a listener's backlog -> that listener (system-wide)."""
    return {client: ino for ino, info in unix.items() for client in info.icons}


def _raw_name(fd: int, peer: bool) -> bytes:
    """getsockname(2)/getpeername(2) as the kernel says it (Python's drop a path's NUL)."""
    buf = ctypes.create_string_buffer(_SOCKADDR)
    size = ctypes.c_uint32(_SOCKADDR)
    call = _libc.getpeername if peer else _libc.getsockname
    if call(fd, buf, ctypes.byref(size)) < 0:
        err = ctypes.get_errno()
        if err == errno.ENOTCONN:
            return b""
        raise OSError(err, os.strerror(err))
    return buf.raw[2:size.value]


def peer_name(pid: int, fd: int) -> bytes:
    """What getpeername(2) says of descriptor `fd` of process `pid` (b"": nothing)."""
    with us.socket_of(pid, fd) as sock:
        return _raw_name(sock.fileno(), peer=True)


def _addr(name: bytes) -> str | bytes:
    """A name as Python's socket calls take it."""
    return path_of(name) if is_path(name) else name


def _sender(address: object) -> bytes:
    """recvmsg(2)'s source address as the kernel keeps names."""
    if isinstance(address, str) and address:
        return os.fsencode(address) + b"\0"
    if isinstance(address, bytes):
        return address
    return b""


# -- dump ---------------------------------------------------------------------------------------


@dataclass
class Survey:
    """The job's sockets of this module at dump: inode -> (pid, fd) first holding it."""

    ends: dict[int, Holder]
    unix: Mapping[int, us.UnixInfo]
    carrier: inflight.Carrier | None = None       # what queued messages carry (inflight.py)
    pending: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.pending = pending_clients(self.unix)
        # The job's datagram sockets by name: a queued datagram's sender, to send it again from.
        self.by_name = {self.unix[ino].name: ino for ino in self.ends
                        if self.unix[ino].name and self.unix[ino].type == socket.SOCK_DGRAM}

    def what(self, ino: int) -> str:
        return f"fd {self.ends[ino].fd} (socket:[{ino}])"

    def refuse(self, ino: int, why: str) -> Unsupported:
        return Unsupported(self.ends[ino].pid, self.what(ino), why)


def capture(survey: Survey) -> tuple[list[image_pb2.UnixSocketImage], list[image_pb2.SocketPath]]:
    """Every socket of the survey, and the socket files at their names that none of them owns; the
    job's queues are left as they were."""
    images = [_capture_one(survey, ino) for ino in sorted(survey.ends)]
    return images, _leftover_files(survey, images)


def _capture_one(survey: Survey, ino: int) -> image_pb2.UnixSocketImage:
    info, holder = survey.unix[ino], survey.ends[ino]
    if is_path(info.name) and not info.name.startswith(b"/"):
        raise survey.refuse(ino, f"it is bound to the relative name {show(info.name)!r}, against a working "
                            "directory incr cannot know: not supported")
    image = image_pb2.UnixSocketImage(ino=ino, type=info.type, name=info.name, state=info.state,
                                      shutdown=info.shutdown)
    with us.socket_of(holder.pid, holder.fd) as sock:
        if us.filter_attached(sock):
            raise survey.refuse(ino, "a socket filter (SO_ATTACH_FILTER or SO_ATTACH_BPF) is attached to it: "
                                "not supported")
        image.options.extend(us.read_options(sock))
        image.owner.CopyFrom(us.owner_of(sock))
        if info.type != socket.SOCK_DGRAM and (info.state == us.TCP_LISTEN or info.state == us.TCP_ESTABLISHED):
            image.peer_cred.CopyFrom(us.peer_cred(sock))
        if info.state == us.TCP_LISTEN:
            _capture_listener(survey, ino, image)
        elif ino in survey.pending:
            _capture_pending(survey, ino, sock, image)
        elif info.state == us.TCP_ESTABLISHED and not info.peer and info.type != socket.SOCK_DGRAM:
            # (a datagram socket says ESTABLISHED once another connected to it: not a widow)
            _capture_widowed(survey, ino, sock, image)
        elif info.type == socket.SOCK_DGRAM:
            if info.peer and not survey.unix[info.peer].name:
                raise survey.refuse(ino, "it is a datagram socket connected to an unbound one (a socket pair one end "
                                    "of which was bound later): not supported")
            image.peer = info.peer
            carried: list[image_pb2.Ancillary] = []
            image.queue.extend(_capture_datagrams(survey, ino, sock, carried))
            image.ancillary.extend(carried)
        elif info.state == us.TCP_ESTABLISHED:
            image.peer = info.peer
            image.accepted = _accepted(survey, ino)
            carried = []
            image.queue.extend(_capture_stream(survey, ino, sock, carried))
            image.ancillary.extend(carried)
        if is_path(info.name):
            _note_file(info, image)
    us.check_options(holder.pid, survey.what(ino), info.type, list(image.options))
    return image


def check_carried(image: image_pb2.TreeImage) -> None:
    """Refuses a message queued in a socket of this module that carries another: the restore sends
    such messages while it makes these sockets, before any of them can be carried."""
    kinds = {f.id: f.kind for f in (*image.in_flight, *(f for p in image.processes for f in p.files))}
    for s in image.unix_sockets:
        if any(kinds.get(fid) == image_pb2.OpenFile.UNIX for item in s.ancillary for fid in item.files):
            pid, fd = us.holder_of(image, s.ino)
            raise Unsupported(pid, f"fd {fd} (socket:[{s.ino}])", "a message queued in it carries a socket bound "
                              "to a name, listening, or connected through one: not supported")


def check_creators(image: image_pb2.TreeImage) -> None:
    """Refuses a socket whose listen(2) or connect(2) caller (SO_PEERCRED) a restore could not make
    call it again.  A client waiting in a backlog gets its listener's from the restored listener."""
    for s in image.unix_sockets:
        if s.HasField("peer_cred") and not s.listener and (why := us.creator_refusal(image, s.peer_cred.pid)):
            pid, fd = us.holder_of(image, s.ino)
            raise Unsupported(pid, f"fd {fd} (socket:[{s.ino}])", f"SO_PEERCRED of the socket names PID "
                              f"{s.peer_cred.pid}, {why}")


def _capture_listener(survey: Survey, ino: int, image: image_pb2.UnixSocketImage) -> None:
    info = survey.unix[ino]
    image.backlog = info.backlog
    for client in info.icons:
        if not client:
            raise survey.refuse(ino, "a connection whose client was closed waits in its backlog (what it sent, if "
                                "anything, cannot be read before accept): not supported")
        if client not in survey.ends:
            raise survey.refuse(ino, f"a connection from outside the job (socket:[{client}]) waits in its backlog; "
                                "not supported")
    image.pending.extend(info.icons)


def _capture_pending(survey: Survey, ino: int, sock: socket.socket, image: image_pb2.UnixSocketImage) -> None:
    listener = survey.pending[ino]
    if listener not in survey.ends:
        raise survey.refuse(ino, "its connection waits to be accepted by a listener outside the job "
                            f"(socket:[{listener}]); not supported")
    if us.sent_queued(sock):
        raise survey.refuse(ino, "it sent data on a connection not yet accepted (the data waits in a socket no "
                            "descriptor reaches): not supported")
    image.listener = listener


def _capture_widowed(survey: Survey, ino: int, sock: socket.socket, image: image_pb2.UnixSocketImage) -> None:
    """Connected, its peer closed since: what the peer had sent, and the peer's name."""
    info = survey.unix[ino]
    image.widowed = True
    image.peer_name = _raw_name(sock.fileno(), peer=True)
    if info.type == socket.SOCK_STREAM and us.oob_queued(sock):
        raise survey.refuse(ino, "an out-of-band byte (MSG_OOB) is queued in it: not supported")
    msgs, carried = us.peek_queue(sock, info.type, info.shutdown)
    if carried:
        raise survey.refuse(ino, f"a message queued in it carries {carried}")
    if info.type == socket.SOCK_STREAM and msgs:
        msgs = [b"".join(msgs)]
    image.queue.extend(image_pb2.UnixMessage(data=m) for m in msgs)


def _accepted(survey: Survey, ino: int) -> bool:
    """Which end of a connection accept(2) made: the one with a name its peer lacks; of two named,
    the one sharing a listener's file (or, failing that, the lower inode: both come out the same)."""
    info, peer = survey.unix[ino], survey.unix[survey.unix[ino].peer]
    if not info.name or not peer.name:
        return bool(info.name)
    listeners = {(i.name, i.vfs) for i in survey.unix.values() if i.state == us.TCP_LISTEN}
    mine, theirs = (info.name, info.vfs) in listeners, (peer.name, peer.vfs) in listeners
    return mine if mine != theirs else ino < peer.ino


def _capture_stream(survey: Survey, ino: int, sock: socket.socket, carried: list[image_pb2.Ancillary]
                    ) -> list[image_pb2.UnixMessage]:
    info = survey.unix[ino]
    peer = info.peer
    end = us.End(survey.ends[ino].pid, survey.ends[ino].fd, ino, info.shutdown)
    other = us.End(survey.ends[peer].pid, survey.ends[peer].fd, peer, survey.unix[peer].shutdown)
    with us.socket_of(other.pid, other.fd) as peer_sock:
        msgs = us.capture_queue(end, sock, other, peer_sock, info.type, survey.carrier, carried)
    return [image_pb2.UnixMessage(data=m) for m in msgs]


def _capture_datagrams(survey: Survey, ino: int, sock: socket.socket, carried: list[image_pb2.Ancillary]
                       ) -> list[image_pb2.UnixMessage]:
    """A datagram socket's messages with their senders and what they carry: peeked first (so that
    nothing is read that could not be sent again as it came), then read and sent back, each from
    its sender, with what it carried."""
    info = survey.unix[ino]
    senders = [_sender(addr) for addr in _peek_senders(sock)]
    if not senders:
        return []
    if not _reachable(info):
        raise survey.refuse(ino, "datagrams are queued in it while its file was removed (incr could not send "
                            "them back): not supported")
    for name in senders:
        if name and name not in survey.by_name:
            raise survey.refuse(ino, f"a datagram queued in it came from {show(name)}, a socket outside the job "
                                "(or closed since): not supported")
    msgs: list[tuple[image_pb2.UnixMessage, inflight.Ancdata]] = []
    saved = us.peek_offset(sock)
    try:
        try:
            while True:
                try:
                    data, ancdata, _, addr = sock.recvmsg(1 << 20, us.CONTROL_SPACE, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    break
                msgs.append((image_pb2.UnixMessage(data=data, sender=_sender(addr)), ancdata))
        finally:
            _put_back(survey, info, msgs)
            sock.setsockopt(socket.SOL_SOCKET, us.SO_PEEK_OFF, saved)
        # Described once every datagram is back: describing may refuse (check_in_flight refused, before
        # the drain, what could not be sent back).
        for index, (msg, ancdata) in enumerate(msgs):
            why = survey.carrier.note(index, ancdata, carried) if survey.carrier is not None else \
                us.what_carried(ancdata, 0)
            if why:
                raise survey.refuse(ino, f"a message queued in it carries {why}")
            if msg.sender and msg.sender not in survey.by_name:
                raise survey.refuse(ino, f"a datagram queued in it came from {show(msg.sender)}, a socket outside "
                                    "the job (or closed since): not supported")
    finally:
        for _, ancdata in msgs:
            inflight.close_all(inflight.installed(ancdata))
    return [msg for msg, _ in msgs]


def _peek_senders(sock: socket.socket) -> list[object]:
    """The source address of each queued datagram, peeked from successive offsets (an empty one
    already peeked is skipped: the drain after sees it, and refuses it if it cannot go back)."""
    saved = us.peek_offset(sock)
    out: list[object] = []
    at = 0
    empty_here = 0
    try:
        while empty_here < 2:                # a peek offset skips an empty datagram once it was peeked
            sock.setsockopt(socket.SOL_SOCKET, us.SO_PEEK_OFF, at)
            try:
                n, _, _, addr = sock.recvmsg_into([bytearray(1)], 0, socket.MSG_PEEK | socket.MSG_DONTWAIT
                                                  | socket.MSG_TRUNC)
            except BlockingIOError:
                break
            out.append(addr)
            empty_here = empty_here + 1 if n == 0 else 0
            at += n
    finally:
        sock.setsockopt(socket.SOL_SOCKET, us.SO_PEEK_OFF, saved)
    return out


def _reachable(info: us.UnixInfo) -> bool:
    """Whether a datagram sent to the socket's name reaches it (an abstract name, or its own file)."""
    return bool(info.name) and (not is_path(info.name) or _file_id(info.name) == info.vfs)


def _put_back(survey: Survey, info: us.UnixInfo, msgs: Iterable[tuple[image_pb2.UnixMessage, inflight.Ancdata]]
              ) -> None:
    """Each datagram read from the socket of `info` sent to it again, from its sender, with what it
    carried."""
    with contextlib.ExitStack() as stack:
        senders: dict[bytes, socket.socket] = {}
        for msg, ancdata in msgs:
            sender = senders.get(msg.sender)
            if sender is None:
                if msg.sender in survey.by_name:
                    holder = survey.ends[survey.by_name[msg.sender]]
                    sender = stack.enter_context(us.socket_of(holder.pid, holder.fd))
                else:
                    sender = stack.enter_context(socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM))
                senders[msg.sender] = sender
            _send_datagram(sender, msg.data, info, inflight.carried_back(ancdata))


def _send_datagram(sender: socket.socket, data: bytes, target: us.UnixInfo, control: inflight.Ancdata) -> None:
    try:
        if _raw_name(sender.fileno(), peer=True) == target.name:
            sender.sendmsg([data], control, socket.MSG_DONTWAIT)    # connected to it (it may take nothing else)
        else:
            sender.sendmsg([data], control, socket.MSG_DONTWAIT, _addr(target.name))
    except BlockingIOError:
        raise RestoreError(f"cannot put a datagram back into socket:[{target.ino}]: its queue is full") from None


def _file_id(name: bytes) -> tuple[int, int] | None:
    try:
        st = os.lstat(path_of(name))
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _note_file(info: us.UnixInfo, image: image_pb2.UnixSocketImage) -> None:
    try:
        st = os.lstat(path_of(info.name))
    except FileNotFoundError:
        return
    if info.vfs == (st.st_dev, st.st_ino) and not image.accepted:
        image.owns_file = True
        image.file_mode, image.file_uid, image.file_gid = stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid


def _leftover_files(survey: Survey, images: list[image_pb2.UnixSocketImage]) -> list[image_pb2.SocketPath]:
    """Socket files at the job's path names that no socket of the job owns, nor any live socket."""
    owned = {i.name for i in images if i.owns_file}
    live = {i.vfs for i in survey.unix.values() if i.vfs}
    out = []
    for name in sorted({n for i in images for n in (i.name, i.peer_name) if is_path(n)} - owned):
        try:
            st = os.lstat(path_of(name))
        except FileNotFoundError:
            continue
        if stat.S_ISSOCK(st.st_mode) and (st.st_dev, st.st_ino) not in live:
            out.append(image_pb2.SocketPath(name=name, mode=stat.S_IMODE(st.st_mode), uid=st.st_uid, gid=st.st_gid))
    return out


def needs_version_5(image: image_pb2.TreeImage) -> bool:
    return bool(image.unix_sockets)


# -- restore ------------------------------------------------------------------------------------


def preflight(tree: image_pb2.TreeImage, *, new_pidns: bool = False) -> None:
    """Refuses, making nothing, a name the restore cannot bind again: its directory gone, or its file
    now a live socket or not a socket; and a socket whose exited creator's PID is taken."""
    if not tree.unix_sockets:
        return
    live = {i.vfs for i in us.unix_sockets().values() if i.vfs}
    for name in sorted(_paths(tree)):
        path = path_of(name)
        if not os.path.isdir(os.path.dirname(path) or "/"):
            raise RestoreError(f"cannot restore: the job's socket {path} was in a directory that is gone now; "
                               "make the directory again, then restore")
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if not stat.S_ISSOCK(st.st_mode):
            raise RestoreError(f"cannot restore: the job's socket {path} is now a file that is not a socket; "
                               "move it away, then restore")
        if (st.st_dev, st.st_ino) in live:
            raise RestoreError(f"cannot restore: a running socket is bound to {path}, a name of the job's (is the "
                               "job, or another copy of it, still running?)")
    if new_pidns:
        return
    job = {p.pid for p in tree.processes}
    abstract = {s.name for s in tree.unix_sockets if s.name and not is_path(s.name) and not s.accepted}
    taken = {i.name for i in us.unix_sockets().values() if i.name in abstract and i.state != us.TCP_ESTABLISHED}
    if taken:
        raise RestoreError(f"cannot restore: the abstract socket name {show(sorted(taken)[0])} of the job is "
                           "in use by a running socket (is the job still running?)")
    for s in tree.unix_sockets:
        pid = s.peer_cred.pid
        if s.HasField("peer_cred") and pid and pid not in job and proc.exists(pid):
            raise RestoreError(f"cannot restore: the job's socket socket:[{s.ino}] names PID {pid}, which had exited, "
                               f"in SO_PEERCRED; a helper with that PID must make it again, but PID {pid} is in use by "
                               f"{proc.describe(pid)}: end that process, or restore with --new-pidns")


def _paths(tree: image_pb2.TreeImage) -> set[bytes]:
    return {n for s in tree.unix_sockets for n in (s.name, s.peer_name) if is_path(n)} | {
        p.name for p in tree.socket_paths}


def first_holders(tree: image_pb2.TreeImage) -> dict[int, int]:
    """Socket inode -> the PID of the first process (parents first) holding it."""
    out: dict[int, int] = {}
    for p in tree.processes:
        for f in p.files:
            if f.kind == image_pb2.OpenFile.UNIX:
                out.setdefault(f.socket, p.pid)
    return out


class Maker:
    """Makes every socket of TreeImage.unix_sockets in the restored stubs, before any descriptor
    table is built: each ends up in the first process holding it, at a number from `keep_at` (that
    process's, files.keep_at) until Installer takes it (holders()) and finish() lets it go."""

    def __init__(self, tree: image_pb2.TreeImage, acting: us.Acting, keep_at: Mapping[int, int],
                 provider: inflight.Provider | None = None) -> None:
        """`provider`: what queued messages carry (inflight.py)."""
        self.tree = tree
        self.acting = acting
        self.keep_at = keep_at
        self.provider = provider
        self.images = {s.ino: s for s in tree.unix_sockets}
        self.home = first_holders(tree)
        self.made: dict[int, Holder] = {}          # inode -> where it is kept now (PID as the job sees it)
        self.kept: list[tuple[RemoteProcess, int]] = []

    def holders(self) -> dict[int, Holder]:
        return dict(self.made)

    def make_all(self) -> None:
        _clear_leftovers(self.tree)
        for s in self.tree.unix_sockets:           # 1: every socket but accepted ones, unbound
            if not s.accepted and not (s.widowed and s.name and not s.peer_name):
                self._new(s)
        for s in self.tree.unix_sockets:           # 2: connections through a listener of a moment
            if s.accepted:
                self._through_own_listener(s.name, self.images[s.peer], s)
            elif s.widowed and (s.peer_name or s.name):
                self._widowed(s)
        for s in self._binding_order():             # 3: names; what uses a removed file, before its removal
            self._bind(s)
            self._use(s)
            if is_path(s.name) and not s.owns_file:
                os.unlink(path_of(s.name))
        for s in self.tree.unix_sockets:           # 4: datagrams wait once every sender is bound
            if s.type == socket.SOCK_DGRAM and s.queue and s.name and (s.owns_file or not is_path(s.name)):
                self._refill_datagrams(s)
        for leftover in self.tree.socket_paths:
            _make_socket_file(leftover.name, leftover.mode, leftover.uid, leftover.gid)
        for s in self.tree.unix_sockets:           # 5: streams' bytes, options, shutdowns
            self._finish(s)

    def finish(self) -> None:
        """Every descriptor table is built: the kept sockets go."""
        for target, fd in self.kept:
            target.call("close", fd)
        self.kept.clear()

    # -- the steps --

    def _stub(self, pid: int) -> RemoteProcess:
        return self.acting.stubs[pid]

    def _keep(self, ino: int, where: RemoteProcess, fd: int) -> None:
        """The socket now at `fd` of `where` kept in its first holder."""
        home = self._stub(self.home[ino])
        if home is where:
            kept = where.call("fcntl", fd, F_DUPFD_CLOEXEC, self.keep_at[self.home[ino]])
        else:
            tmp = us.take(home, where.vpid, fd)
            kept = home.call("fcntl", tmp, F_DUPFD_CLOEXEC, self.keep_at[self.home[ino]])
            home.call("close", tmp)
        where.call("close", fd)
        old = self.made.get(ino)
        if old is not None:
            self._stub(old.pid).call("close", old.fd)
            self.kept.remove((self._stub(old.pid), old.fd))
        self.made[ino] = Holder(home.vpid, kept)
        self.kept.append((home, kept))

    def _new(self, s: image_pb2.UnixSocketImage) -> None:
        home = self._stub(self.home[s.ino])
        self._keep(s.ino, home, home.call("socket", socket.AF_UNIX, s.type, 0))

    @contextlib.contextmanager
    def _in(self, ino: int, actor: RemoteProcess) -> Iterator[int]:
        """Socket `ino` as a descriptor of `actor`, for one call there."""
        held = self.made[ino]
        fd = us.take(actor, held.pid, held.fd)
        try:
            yield fd
        finally:
            actor.call("close", fd)

    def _sockaddr(self, actor: RemoteProcess, name: bytes) -> tuple[int, int]:
        raw = struct.pack("<H", socket.AF_UNIX) + name
        return actor.put(raw), len(raw)

    def _as(self, ino: int, cred: image_pb2.PeerCred | None, call: Callable[[RemoteProcess, int], object]) -> None:
        """call(process, fd): socket `ino` used in the process SO_PEERCRED `cred` names, with its ids
        (None: in its first holder, as it is)."""
        if cred is None:
            home = self._stub(self.home[ino])
            with self._in(ino, home) as fd:
                call(home, fd)
            return
        with self.acting.process_of(cred, f"the socket socket:[{ino}]") as actor, self._in(ino, actor) as fd, \
                self.acting.switched(actor, cred):      # (taken before: the switch drops capabilities)
            call(actor, fd)

    def _connect(self, actor: RemoteProcess, fd: int, name: bytes) -> None:
        at, size = self._sockaddr(actor, name)
        actor.call("connect", fd, at, size)

    @contextlib.contextmanager
    def _moment_listener(self, name: bytes, stype: int, cred: image_pb2.PeerCred | None
                         ) -> Iterator[tuple[RemoteProcess, int]]:
        """A listener bound to `name` while the block runs, listen(2) called by the process `cred`
        names (None: the root's stub); (that process, its descriptor there).  Its file goes after."""
        with contextlib.ExitStack() as stack:
            if cred is None:
                actor: RemoteProcess = self.acting.root
            else:
                actor = stack.enter_context(self.acting.process_of(cred, f"a listener at {show(name)}"))
            lfd = actor.call("socket", socket.AF_UNIX, stype | socket.SOCK_NONBLOCK, 0)
            try:
                at, size = self._sockaddr(actor, name)
                try:
                    actor.call("bind", lfd, at, size)
                except Exception as exc:
                    raise RestoreError(f"cannot restore a connection through {show(name)}: bind failed ({exc})") \
                        from None
                try:
                    switch = contextlib.nullcontext() if cred is None else self.acting.switched(actor, cred)
                    with switch:
                        actor.call("listen", lfd, 1)
                    yield actor, lfd
                finally:
                    if is_path(name):
                        os.unlink(path_of(name))
            finally:
                actor.call("close", lfd)

    def _through_own_listener(self, name: bytes, client: image_pb2.UnixSocketImage,
                              accepted: image_pb2.UnixSocketImage | None) -> int:
        """Connects `client` to a listener of a moment at `name`, listen(2) called as its SO_PEERCRED
        says; the end accepted, kept as `accepted` (connect(2) called as its SO_PEERCRED says), or,
        when None, returned as a descriptor of incr's own (to feed, then close)."""
        with self._moment_listener(name, client.type, client.peer_cred) as (listen_caller, lfd):
            self._as(client.ino, accepted.peer_cred if accepted is not None else None,
                     lambda actor, fd: self._connect(actor, fd, name))
            afd = listen_caller.call("accept4", lfd, 0, 0, 0)
            if accepted is not None:
                self._keep(accepted.ino, listen_caller, afd)
                return -1
            try:
                with stolen(listen_caller.pid, afd) as mine:
                    return os.dup(mine)
            finally:
                listen_caller.call("close", afd)

    def _widowed(self, s: image_pb2.UnixSocketImage) -> None:
        """A connection whose peer closed: made with a peer that feeds it, then goes."""
        if s.peer_name:                              # it was the client: connect it again
            fed = self._through_own_listener(s.peer_name, s, None)
        else:                                        # it was accepted: its connect(2) caller connects
            with self._moment_listener(s.name, s.type, None) as (listen_caller, lfd), \
                    self.acting.process_of(s.peer_cred, f"the socket socket:[{s.ino}]") as connector:
                cfd = connector.call("socket", socket.AF_UNIX, s.type, 0)
                try:
                    with self.acting.switched(connector, s.peer_cred):
                        self._connect(connector, cfd, s.name)
                    with stolen(connector.pid, cfd) as mine:
                        fed = os.dup(mine)
                finally:
                    connector.call("close", cfd)
                self._keep(s.ino, listen_caller, listen_caller.call("accept4", lfd, 0, 0, 0))
        with socket.socket(fileno=fed) as feeder:
            us.make_room(feeder, (m.data for m in s.queue))
            us.send_all(feeder, s.type, (m.data for m in s.queue))

    def _binding_order(self) -> list[image_pb2.UnixSocketImage]:
        """Sockets to bind (accepted ones have their listener's name): for each path, those whose
        file was removed first, its owner last."""
        named = [s for s in self.tree.unix_sockets if s.name and not s.accepted
                 and not (s.widowed and not s.peer_name)]
        return sorted(named, key=lambda s: s.owns_file)

    def _bind(self, s: image_pb2.UnixSocketImage) -> None:
        home = self._stub(self.home[s.ino])
        with self._in(s.ino, home) as fd:
            at, size = self._sockaddr(home, s.name)
            try:
                home.call("bind", fd, at, size)
            except Exception as exc:
                raise RestoreError(f"cannot restore the socket {show(s.name)} of the job: bind failed "
                                   f"({exc})") from None
        if s.owns_file:
            path = path_of(s.name)
            os.chown(path, s.file_uid, s.file_gid, follow_symlinks=False)
            os.chmod(path, s.file_mode)

    def _use(self, s: image_pb2.UnixSocketImage) -> None:
        """What connects to a socket just bound: a listener's backlog, datagram sockets connected to it."""
        if s.state == us.TCP_LISTEN:
            self._as(s.ino, s.peer_cred, lambda actor, fd: actor.call("listen", fd, s.backlog))
            for client in s.pending:                 # in order; never blocking on a full backlog
                self._as(client, None, lambda actor, fd: self._connect_nonblocking(actor, fd, s.name))
        for other in self.tree.unix_sockets:
            if other.type == socket.SOCK_DGRAM and other.state == us.TCP_ESTABLISHED and other.peer == s.ino:
                self._as(other.ino, None, lambda actor, fd: self._connect(actor, fd, s.name))
        if s.type == socket.SOCK_DGRAM and s.queue and is_path(s.name) and not s.owns_file:
            self._refill_datagrams(s)

    def _connect_nonblocking(self, actor: RemoteProcess, fd: int, name: bytes) -> None:
        flags = actor.call("fcntl", fd, F_GETFL, 0)
        actor.call("fcntl", fd, F_SETFL, flags | O_NONBLOCK)
        try:
            self._connect(actor, fd, name)
        finally:
            actor.call("fcntl", fd, F_SETFL, flags)

    def _refill_datagrams(self, s: image_pb2.UnixSocketImage) -> None:
        by_name = {o.name: o.ino for o in self.tree.unix_sockets if o.name and not o.accepted}
        target = us.UnixInfo(ino=s.ino, type=s.type, peer=0, name=s.name, shutdown=0)
        with contextlib.ExitStack() as stack:
            senders: dict[bytes, socket.socket] = {}
            carried = {item.message: item for item in s.ancillary}
            for index, msg in enumerate(s.queue):
                sender = senders.get(msg.sender)
                if sender is None:
                    if msg.sender in by_name and by_name[msg.sender] != s.ino:
                        sender = stack.enter_context(self._mine(by_name[msg.sender]))
                    elif msg.sender:
                        raise RestoreError(f"cannot restore socket:[{s.ino}]: a datagram queued in it came from "
                                           f"{show(msg.sender)}, which the job no longer has")
                    else:
                        sender = stack.enter_context(socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM))
                    senders[msg.sender] = sender
                us.make_room(sender, [msg.data])
                with self._control(carried.get(index)) as control:
                    _send_datagram(sender, msg.data, target, control)

    @contextlib.contextmanager
    def _control(self, item: image_pb2.Ancillary | None) -> Iterator[inflight.Ancdata]:
        if item is None:
            yield []
        elif self.provider is None:
            raise RestoreError("cannot restore a queued message's descriptors or credentials: nothing provides "
                               "them")
        else:
            with self.provider.ancillary(item) as control:
                yield control

    @contextlib.contextmanager
    def _mine(self, ino: int) -> Iterator[socket.socket]:
        held = self.made[ino]
        with us.socket_of(self._stub(held.pid).pid, held.fd) as sock:
            yield sock

    def _finish(self, s: image_pb2.UnixSocketImage) -> None:
        """A connection's bytes (sent by its peer), then every socket's options and shutdown."""
        with self._mine(s.ino) as sock:
            if s.type != socket.SOCK_DGRAM and s.peer and s.queue:
                with self._mine(s.peer) as peer:
                    us.make_room(peer, (m.data for m in s.queue))
                    inflight.send_queue(peer, s.type, [m.data for m in s.queue], s.ancillary, self.provider)
            for buffers in (True, False):
                failed = us.set_options(sock, s.options, buffers=buffers)
                if failed:
                    raise RestoreError(f"cannot restore the socket socket:[{s.ino}]: its socket option {failed} "
                                       "could not be set again")
            if s.shutdown:
                sock.shutdown(s.shutdown - 1)
            if s.HasField("owner"):
                us.give_owner(sock, s.owner)


def _clear_leftovers(tree: image_pb2.TreeImage) -> None:
    """The socket files at the job's names that no live socket owns (preflight checked): its own."""
    names = sorted(_paths(tree))
    if not names:
        return          # nothing to ask sock_diag, which a kernel without unix_diag cannot answer
    live = {i.vfs for i in us.unix_sockets().values() if i.vfs}
    for name in names:
        path = path_of(name)
        with contextlib.suppress(FileNotFoundError):
            st = os.lstat(path)
            if stat.S_ISSOCK(st.st_mode) and (st.st_dev, st.st_ino) not in live:
                os.unlink(path)


def _make_socket_file(name: bytes, mode: int, uid: int, gid: int) -> None:
    """A socket file no socket listens on, as one that outlived its socket."""
    path = path_of(name)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(path)
    os.chown(path, uid, gid, follow_symlinks=False)
    os.chmod(path, mode)
