"""Descriptors and credentials in flight: what a message queued in a Unix socket pair of the job
carries besides its bytes (SCM_RIGHTS, SCM_CREDENTIALS), and one queued in a named socket's
(unixnamed.py: a datagram socket's, a connection's).  Dump and restore.

Dump (every process frozen).  A queued message's descriptors arrive in incr with it: peeked
from a stream (MSG_PEEK installs copies of them), or read with a datagram or seqpacket message,
which is then sent back with them (unixsock's drain and put back).  Each is one of the job's own
descriptions when kcmp finds a descriptor of the job sharing it; otherwise it exists only in
flight and is described as the job's are (files.FileTable.carried) through incr's copy, kept open
until the dump ends (a pipe end's bytes are read through it).  Credentials are seen only when the
receiving end has SO_PASSCRED on: the PID, uid and gid the receiver will read.  A message put back
carries them again, as explicit SCM_CREDENTIALS (root may name any live process).

Restore.  Each carried description is made when a message first needs it, in the root's stub at
a kept number (files.Installer.provide), unless a process of the job holds it already; one that
holds it later takes it from there, so it stays one description.  Each message is sent again
with SCM_RIGHTS from those and, when it had them, SCM_CREDENTIALS naming the restored sender.

Refused at the checkpoint: credentials naming a process outside the job, or none (a message
queued before SO_PASSCRED was turned on reads PID 0, which no send can name), and a socket that
exists only in flight.  Not seen: the credentials of messages whose receiver has SO_PASSCRED off.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from incr.proto import image_pb2

from .errors import RestoreError
from .holders import Holder
from .pipes import stolen

SCM_RIGHTS, SCM_CREDENTIALS, SCM_PIDFD = 1, 2, 4
CARRIED = frozenset({SCM_RIGHTS, SCM_CREDENTIALS})      # what a pair's queue may carry
_UCRED = struct.Struct("<iII")

Ancdata = list[tuple[int, int, bytes]]


def installed(ancdata: Ancdata, kinds: tuple[int, ...] = (SCM_RIGHTS, SCM_PIDFD)) -> list[int]:
    """The descriptors a received message installed in incr (SCM_RIGHTS, SCM_PIDFD), in order."""
    fds: list[int] = []
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind in kinds:
            fds.extend(struct.unpack(f"<{len(data) // 4}i", data[:len(data) // 4 * 4]))
    return fds


def rights(ancdata: Ancdata) -> list[int]:
    """The descriptors SCM_RIGHTS installed in incr, in order."""
    return installed(ancdata, (SCM_RIGHTS,))


def credentials(ancdata: Ancdata) -> tuple[int, int, int] | None:
    """(pid, uid, gid) of SCM_CREDENTIALS, as the receiver reads them."""
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == SCM_CREDENTIALS and len(data) >= _UCRED.size:
            pid, uid, gid = _UCRED.unpack_from(data)
            return pid, uid, gid
    return None


def cred_refusal(ancdata: Ancdata, job: Mapping[int, int]) -> str:
    """Why the credentials a message carries cannot be sent again ("" when they can).  `job`: each
    live process of the job as incr sees it -> as the job sees it."""
    cred = credentials(ancdata)
    if cred is None or cred[0] in job:
        return ""
    if cred[0] == 0:
        return ("no sender's credentials, though SO_PASSCRED is on (queued before it was turned on): a send "
                "cannot name PID 0; not supported")
    if not os.path.exists(f"/proc/{cred[0]}"):
        return (f"the credentials of PID {cred[0]}, which has exited (no restore can name it again): not "
                "supported")
    return f"the credentials of PID {cred[0]}, a process outside the job: not supported"


@dataclass
class Carrier:
    """The dump's record of what queued messages carry.  `describe(fd)`: the OpenFile.id of the
    description incr's descriptor `fd` refers to, or why it cannot be restored
    (files.FileTable.carried); `job`: as for cred_refusal."""

    describe: Callable[[int], int | str]
    job: Mapping[int, int]

    def note(self, index: int, ancdata: Ancdata, into: list[image_pb2.Ancillary]) -> str:
        """Records what message `index` carries in `into`; why it cannot be restored ("" when it can).
        The descriptors stay incr's to close."""
        why = cred_refusal(ancdata, self.job)
        if why:
            return why
        fds, cred = rights(ancdata), credentials(ancdata)
        if not fds and cred is None:
            return ""
        item = image_pb2.Ancillary(message=index)
        for fd in fds:
            described = self.describe(fd)
            if isinstance(described, str):
                return described
            item.files.append(described)
        if cred is not None:
            item.cred.CopyFrom(image_pb2.SenderCred(pid=self.job[cred[0]], uid=cred[1], gid=cred[2]))
        into[:] = [old for old in into if old.message != index]     # (a peek made again: a longer buffer)
        into.append(item)
        return ""


def carried_back(ancdata: Ancdata) -> Ancdata:
    """The control messages that send a message read while draining a queue back with what it
    carried (its descriptors, its credentials)."""
    back: Ancdata = []
    fds = rights(ancdata)
    if fds:
        back.append((socket.SOL_SOCKET, SCM_RIGHTS, struct.pack(f"<{len(fds)}i", *fds)))
    cred = credentials(ancdata)
    if cred is not None:
        back.append((socket.SOL_SOCKET, SCM_CREDENTIALS, _UCRED.pack(*cred)))
    return back


def _all(image: image_pb2.TreeImage) -> Iterator[image_pb2.Ancillary]:
    for pair in image.socketpairs:
        yield from (*pair.ancillary_a, *pair.ancillary_b)
    for sock in image.unix_sockets:
        yield from sock.ancillary


def needs_version_6(image: image_pb2.TreeImage) -> bool:
    return bool(image.in_flight) or any(True for _ in _all(image))


def carried_ids(image: image_pb2.TreeImage) -> set[int]:
    """Every description a queued message carries."""
    return {fid for item in _all(image) for fid in item.files}


# -- restore ------------------------------------------------------------------------------------


@dataclass
class Provider:
    """What queued messages carry, for the sends that put them back: `make(id)` makes the
    description `id` where the job's processes can take it (files.Installer.provide), once; `hosts`,
    each restored process by PID as the job sees it -> as incr sees it."""

    make: Callable[[int], Holder]
    hosts: Mapping[int, int] = field(default_factory=dict)
    made: dict[int, Holder] = field(default_factory=dict)

    @contextlib.contextmanager
    def ancillary(self, item: image_pb2.Ancillary) -> Iterator[Ancdata]:
        """The control messages that send `item` again (incr's copies of the descriptors meanwhile)."""
        with contextlib.ExitStack() as stack:
            fds = [stack.enter_context(stolen(*self._where(fid))) for fid in item.files]
            out: Ancdata = []
            if fds:
                out.append((socket.SOL_SOCKET, SCM_RIGHTS, struct.pack(f"<{len(fds)}i", *fds)))
            if item.HasField("cred"):
                out.append((socket.SOL_SOCKET, SCM_CREDENTIALS,
                            _UCRED.pack(self._host(item.cred.pid), item.cred.uid, item.cred.gid)))
            yield out

    def _where(self, fid: int) -> tuple[int, int]:
        holder = self.made.get(fid)
        if holder is None:
            holder = self.made[fid] = self.make(fid)
        return self._host(holder.pid), holder.fd

    def _host(self, pid: int) -> int:
        host = self.hosts.get(pid)
        if host is None:
            raise RestoreError(f"cannot restore a queued message: it names PID {pid}, which no restored process "
                               "has")
        return host


def send_queue(sock: socket.socket, stype: int, queue: Iterable[bytes], ancillary: Iterable[image_pb2.Ancillary],
               provider: Provider | None) -> None:
    """A queue refilled through `sock` (the peer of the end that reads it), each message with what it
    carried."""
    extra = {item.message: item for item in ancillary}
    if extra and provider is None:
        raise RestoreError("cannot restore a queued message's descriptors or credentials: nothing provides them")
    for index, msg in enumerate(queue):
        item = extra.get(index)
        if item is not None and provider is not None:
            with provider.ancillary(item) as control:
                sent = sock.sendmsg([msg], control)
            if stype == socket.SOCK_STREAM and sent < len(msg):
                sock.sendall(msg[sent:])
        elif stype == socket.SOCK_STREAM:
            sock.sendall(msg)
        else:
            sock.send(msg)


def close_all(fds: Iterable[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
