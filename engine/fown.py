"""The fcntl state of an open file description: its status flags (F_SETFL), its
owner (F_SETOWN_EX) and the signal O_ASYNC sends (F_SETSIG).  Dump and restore.

All three live in the open file description (struct file), shared by every
descriptor of it in every process, so each is set once per description.

Dump: the status flags come from fdinfo (files.py); owner and signal are
read from incr itself, through a copy of the description taken with
pidfd_getfd: it shares them, nothing is injected.

Restore:
* status flags right after the description was created and installed in its
  first holder, by an injected fcntl(F_SETFL) there, at its lowest number:
  turning O_ASYNC on registers the calling descriptor's number, which the
  kernel reports as si_fd with every F_SETSIG signal.  Later holders take the
  description with pidfd_getfd and share its flags.  What F_SETFL cannot set
  (access mode, O_SYNC, O_DSYNC, O_PATH...) must have come from the open; the
  result is compared with the dump, and a difference fails the restore.
* owner and signal once every thread of the tree exists (an owner must exist
  to be named), from incr through a stolen copy, with the owner's ID in
  incr's view of PIDs (another one than the job's under --new-pidns).  The
  kernel then records incr's credentials (root) as the setter's: that only
  matters to its permission check (sigio_perm), which root always passes,
  and the owner is always a process of the job.
* stdio from the launcher (INHERIT_STDIO) is `incr restore`'s own: its flags
  are left alone (O_NONBLOCK set on a terminal shared with the caller's shell
  would break the shell); a difference from the job's is a warning, and an
  owner or O_ASYNC there is refused at the checkpoint.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import struct
from collections import defaultdict
from collections.abc import Iterator, Mapping

from incr.proto import image_pb2

from . import proc
from .errors import ProcessNotFound, RestoreError, Unsupported
from .pipes import stolen
from .remote import RemoteProcess

log = logging.getLogger(__name__)

OpenFile = image_pb2.OpenFile
F_SETFL, F_SETSIG, F_GETSIG, F_SETOWN_EX, F_GETOWN_EX = 4, 10, 11, 15, 16
F_OWNER_TID, F_OWNER_PID, F_OWNER_PGRP = 0, 1, 2
OWNER_KINDS = {F_OWNER_TID: "thread", F_OWNER_PID: "process", F_OWNER_PGRP: "process group"}
_F_OWNER_EX = struct.Struct("<ii")
O_APPEND, O_NONBLOCK, O_ASYNC, O_DIRECT, O_NOATIME = 0o2000, 0o4000, 0o20000, 0o40000, 0o1000000
O_CLOEXEC, O_PATH = 0o2000000, 0o10000000
SETFL_MASK = O_APPEND | O_NONBLOCK | O_ASYNC | O_DIRECT | O_NOATIME     # what F_SETFL changes
# Flags open(2) takes but a description does not keep; open(2) does not register O_ASYNC (its
# descriptor is never signalled): F_SETFL sets it afterwards.
NOT_REOPENED = os.O_CREAT | os.O_TRUNC | os.O_EXCL | os.O_NOCTTY | O_ASYNC


# ---------------------------------------------------------------- dump

def dump(pid: int, fd: int, desc: image_pb2.OpenFile) -> None:
    """Owner and signal of the description `desc` behind descriptor `fd` of `pid`, into `desc`."""
    if desc.flags & O_PATH:
        return                      # fcntl refuses both on it: it cannot have them
    try:
        with stolen(pid, fd) as mine:
            kind, owner = _F_OWNER_EX.unpack(fcntl.fcntl(mine, F_GETOWN_EX, bytes(_F_OWNER_EX.size)))
            sig = fcntl.fcntl(mine, F_GETSIG)
    except OSError as exc:
        if exc.errno == errno.EBADF:         # closed meanwhile (a running tree, checked before its freeze)
            raise FileNotFoundError(errno.ENOENT, f"/proc/{pid}/fd/{fd}") from None
        raise
    if owner:
        desc.owner.CopyFrom(image_pb2.FileOwner(type=kind, pid=owner))
    desc.signal = sig
    if desc.kind == OpenFile.INHERIT_STDIO and (owner or sig or desc.flags & O_ASYNC):
        raise Unsupported(pid, f"fd {fd} ({desc.what})", "signal-driven I/O (O_ASYNC, F_SETOWN, F_SETSIG) on "
                          "stdio from the launcher: the restored job gets `incr restore`'s own stdio, whose owner "
                          "incr does not take over")


def check_tree(image: image_pb2.TreeImage) -> None:
    """Refuses owners a restore could not name again, and O_ASYNC signals whose si_fd is ambiguous."""
    alive = [p for p in image.processes if not p.zombie]
    tids = {t.tid for p in alive for t in p.threads}
    pids = {p.pid for p in alive}
    leaders = {p.pid for p in alive if p.pgid == p.pid}
    numbers: dict[int, set[int]] = defaultdict(set)         # description id -> its descriptor numbers
    for p in alive:
        for d in p.fds:
            numbers[d.file].add(d.fd)
    for p in alive:
        by_id = {f.id: f for f in p.files}
        for d in p.fds:
            f = by_id[d.file]
            what = f"fd {d.fd} ({f.path})"
            if f.HasField("owner"):
                _check_owner(p.pid, what, f.owner, tids, pids, leaders, image)
            if f.signal and f.flags & O_ASYNC and len(numbers[f.id]) > 1:
                held = ", ".join(str(n) for n in sorted(numbers[f.id]))
                raise Unsupported(p.pid, what, f"O_ASYNC with F_SETSIG on a description held as descriptors {held}: "
                                  "which number its signals report (si_fd) cannot be read back")


def _check_owner(pid: int, what: str, owner: image_pb2.FileOwner, tids: set[int], pids: set[int],
                 leaders: set[int], image: image_pb2.TreeImage) -> None:
    kind = OWNER_KINDS.get(owner.type, f"owner type {owner.type}")
    known = {F_OWNER_TID: tids, F_OWNER_PID: pids, F_OWNER_PGRP: leaders}.get(owner.type, set())
    if owner.pid not in known:
        raise Unsupported(pid, what, f"its owner (F_SETOWN) is {kind} {owner.pid}, which is not a live "
                          f"{kind} of the job; owners outside the job are not supported")
    if owner.type == F_OWNER_PGRP:
        outside = _group_members(owner.pid) - {p.pid for p in image.processes}
        if outside:
            raise Unsupported(pid, what, f"its owner (F_SETOWN) is process group {owner.pid}, which also holds "
                              f"{', '.join(proc.describe(p) for p in sorted(outside)[:3])}, outside the job")


def _group_members(pgid: int) -> set[int]:
    """Every process in process group `pgid` (a scan of /proc)."""
    members = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(ProcessNotFound):
                if proc.stat(int(entry)).pgid == pgid:
                    members.add(int(entry))
    return members


def needs_version_3(image: image_pb2.TreeImage) -> bool:
    return any(f.HasField("owner") or f.signal for p in image.processes for f in p.files)


# ---------------------------------------------------------------- restore

def _flags_now(pid: int, fd: int) -> int:
    return int(proc.fdinfo(pid, fd)["flags"], 8) & ~O_CLOEXEC


def set_status_flags(target: RemoteProcess, fd: int, f: image_pb2.OpenFile, extra: int = 0) -> None:
    """The dumped status flags on a description just installed as `fd` of `target` (its first holder),
    with `extra` (O_APPEND where the restore continues a file others write at its end: outside.py)."""
    wanted = f.flags | extra
    now = _flags_now(target.pid, fd)
    if (now ^ wanted) & SETFL_MASK:
        err = target.syscall("fcntl", fd, F_SETFL, wanted & SETFL_MASK)
        if err < 0:
            raise RestoreError(f"cannot restore fd {fd} ({f.path}) of PID {target.vpid}: F_SETFL "
                               f"{wanted & SETFL_MASK:#o} failed: {os.strerror(-err)}")
        now = _flags_now(target.pid, fd)
    if now != wanted:
        raise RestoreError(f"cannot restore fd {fd} ({f.path}) of PID {target.vpid}: its flags came back as "
                           f"{now:#o}, not {wanted:#o}")


def warn_stdio(target: RemoteProcess, fd: int, f: image_pb2.OpenFile) -> None:
    """Say so when the job's stdio had status flags that `incr restore`'s own (which it gets) lacks."""
    now = _flags_now(target.pid, fd)
    if (now ^ f.flags) & SETFL_MASK:
        log.warning("PID %d: fd %d (%s) had status flags %#o, the restored job's (incr restore's own %s) has %#o; "
                    "incr does not change them on a descriptor it shares with its caller", target.vpid, fd, f.what,
                    f.flags & SETFL_MASK, os.readlink(f"/proc/{target.pid}/fd/{fd}"), now & SETFL_MASK)


def has_owner(f: image_pb2.OpenFile) -> bool:
    return f.HasField("owner") or f.signal != 0


def set_owner(pid: int, fd: int, f: image_pb2.OpenFile, hosts: Mapping[int, int]) -> None:
    """Signal and owner of the description `fd` of `pid` (PIDs as incr sees them), from incr.
    `hosts`: every PID and TID of the restored job as the job sees it -> as incr sees it."""
    with _stolen_for(pid, fd, f) as mine:
        if f.signal:
            fcntl.fcntl(mine, F_SETSIG, f.signal)
        if f.HasField("owner"):
            host = hosts.get(f.owner.pid)
            if host is None:
                raise RestoreError(f"cannot restore the owner of fd {fd} ({f.path}): "
                                   f"{OWNER_KINDS.get(f.owner.type, 'owner')} {f.owner.pid} was not restored")
            fcntl.fcntl(mine, F_SETOWN_EX, _F_OWNER_EX.pack(f.owner.type, host))


@contextlib.contextmanager
def _stolen_for(pid: int, fd: int, f: image_pb2.OpenFile) -> Iterator[int]:
    try:
        with stolen(pid, fd) as mine:
            yield mine
    except OSError as exc:
        raise RestoreError(f"cannot restore the owner or signal of fd {fd} ({f.path}): {exc.strerror}") from None
