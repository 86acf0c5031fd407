"""pidfds: descriptors of processes (pidfd_open, clone CLONE_PIDFD).  Dump and restore.

Dump: fdinfo names the process ("Pid:", -1 once it was reaped); it must be one of the job's (a
pidfd of an outsider would have to follow a process incr does not restore).  Restore, once every
process of the tree exists: an injected pidfd_open of the same PID (a zombie of the job is one
too: its exit is seen, as before), with PIDFD_NONBLOCK as it had.  A pidfd of a reaped process
is made in incr, of a child that has exited and been reaped, and handed to the job over a socket
pair the job makes (SCM_RIGHTS): it reports the exit at once and pidfd_send_signal fails with
ESRCH, as before.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Collection

from incr.proto import image_pb2

from . import proc
from . import ptrace as pt
from .errors import ProcessNotFound, RestoreError, Unsupported
from .remote import RemoteProcess
from .unixsock import socket_of

PIDFD_NONBLOCK = os.O_NONBLOCK
_MSGHDR = struct.Struct("<QI4xQQQQi4x")            # name, namelen, iov, iovlen, control, controllen, flags
_IOVEC = struct.Struct("<QQ")
_CMSG_SPACE_ONE_FD = 24                             # CMSG_SPACE(sizeof(int)) on x86-64
MSG_CMSG_CLOEXEC = 0x40000000


def dump(pid: int, fd: int, info: dict[str, str], job: Collection[int]) -> image_pb2.PidfdState:
    """The process behind pidfd `fd` of `pid` (`info`: its fdinfo); `job`: the tree's PIDs."""
    target = int(info.get("Pid", "0"))
    if target == -1:
        return image_pb2.PidfdState(reaped=True)
    if target not in job and not _zombie_of(target, job):
        raise Unsupported(pid, f"fd {fd} (pidfd)", f"it refers to PID {target}, outside the job" if target > 0
                          else "the process it refers to cannot be named")
    return image_pb2.PidfdState(pid=target)


def _zombie_of(pid: int, job: Collection[int]) -> bool:
    """Whether `pid` is a zombie child of a process of `job` (the tree restores those too)."""
    try:
        st = proc.stat(pid)
    except ProcessNotFound:
        return False
    return st.state in ("Z", "X") and st.ppid in job


def restore(target: RemoteProcess, state: image_pb2.PidfdState, flags: int) -> int:
    """A pidfd in `target` like the dumped one."""
    if not state.reaped:
        return target.call("pidfd_open", state.pid, flags & PIDFD_NONBLOCK)
    mine = _reaped_pidfd(flags & PIDFD_NONBLOCK)
    try:
        return _deliver(target, mine)
    finally:
        os.close(mine)


def _reaped_pidfd(flags: int) -> int:
    """A pidfd, in incr, of a process that has exited and been reaped."""
    child = os.fork()
    if child == 0:
        os._exit(0)
    try:
        return os.pidfd_open(child, flags)
    finally:
        os.waitpid(child, 0)


def _deliver(target: RemoteProcess, mine: int) -> int:
    """incr's descriptor `mine` installed in `target` (its number there): over a socket pair the target
    makes, one end of which incr takes for the moment."""
    at = target.put(bytes(8))
    target.call("socketpair", socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, 0, at)
    pair = bytearray(8)
    pt.vm_read_into(target.pid, [(at, 8)], pair)
    ours, theirs = struct.unpack("<ii", pair)
    try:
        with socket_of(target.pid, theirs) as sock:
            sock.sendmsg([b"p"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("<i", mine))])
        data = target.put(bytes(16))
        iov = target.put(_IOVEC.pack(data, 1))
        control = target.put(bytes(_CMSG_SPACE_ONE_FD))
        msg = target.put(_MSGHDR.pack(0, 0, iov, 1, control, _CMSG_SPACE_ONE_FD, 0))
        if target.call("recvmsg", ours, msg, MSG_CMSG_CLOEXEC) != 1:
            raise RestoreError(f"cannot restore a pidfd of a reaped process in PID {target.vpid}: nothing received")
        got = bytearray(_CMSG_SPACE_ONE_FD)
        pt.vm_read_into(target.pid, [(control, len(got))], got)
        length, level, kind, fd = struct.unpack_from("<Qiii", got)
        if (level, kind) != (socket.SOL_SOCKET, socket.SCM_RIGHTS) or length < 20:
            raise RestoreError(f"cannot restore a pidfd of a reaped process in PID {target.vpid}: no descriptor "
                               "received")
        return int(fd)
    finally:
        target.call("close", ours)
        target.call("close", theirs)
