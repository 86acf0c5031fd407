"""File locks and leases: flock(2), POSIX record locks (fcntl F_SETLK), open file
description locks (F_OFD_SETLK) and leases (F_SETLEASE).  Dump and restore.
Directory notifications (dnotify, fcntl F_NOTIFY) are refused.

Who owns what (fs/locks.c):
* a flock, an OFD lock and a lease belong to the open file description: every
  process sharing it after fork holds it, and it goes with the description's
  last close;
* a POSIX lock belongs to the process's descriptor table (threads, and
  processes sharing it with CLONE_FILES, share their locks) and goes with *any*
  close of any descriptor of that file in that table.  F_GETLK tells others the
  PID that took it.

Dump (frozen tree): /proc/PID/fdinfo/FD shows as "lock:" lines the locks taken
through that very description that belong either to it (flock, OFD, lease) or
to PID's descriptor table (POSIX), each with the PID that took it (-1 for OFD
locks), its range and type.  Only descriptors of a file /proc/locks names are
read.  Each lock is recorded once, in the process that takes it again: the
description's holder that took it in the first place if it still holds it, else
the first holder (parents first); a POSIX lock in the process that took it,
which shares the table.  Refused, in one line: a lease being broken (another
process opened the file: the break is under way and its timer runs), a POSIX
lock taken by a process of a shared table that has exited (F_GETLK would name a
PID no restore can give back), a lock or lease on stdio from the launcher (the
restored job gets `incr restore`'s own), and any directory with an owner or a
signal set: F_NOTIFY always sets the owner (to the caller), and the kernel
shows dnotify nowhere else (not in fdinfo, not in /proc/locks), so an armed one
can be neither told apart nor read back.  (A lease's break signal reports
as si_fd the number F_SETLEASE was called with, which nothing shows: it is
taken again through the holder's lowest number, and a lease with F_SETSIG on a
description held under several numbers is refused by fown.check_tree, for the
O_ASYNC every lease sets.)

Restore, by injected syscalls, after every descriptor table is built and
before any process runs (still root: a lease needs the file's owner or
CAP_LEASE): flock(LOCK_NB), fcntl(F_SETLK / F_OFD_SETLK) with absolute ranges,
fcntl(F_SETLEASE), through the recorded descriptor.  A flock taken by a process
of the job that no longer holds the description is taken by that process
through a borrowed copy (pidfd_getfd, closed after), one taken by a process
that has exited by a brief helper with its PID (Stub.fork_sibling) when that PID
is free, so that /proc/locks names the same PID.  POSIX locks come last: closing
a borrowed copy drops its process's POSIX locks on that file.  Setting a lease
makes the caller the description's owner when it had none: the dumped owner is
put back (fown.py, later) or cleared here; and it sets O_ASYNC in the
description's flags, which F_SETFL cannot (fown.py sets the others): the dump
leaves it out of a leased description's flags.  A lock someone outside the job
holds now refuses the restore: before anything is created when /proc/locks
shows it (preflight), else when the injected call finds it.

A process asleep in F_SETLKW, F_OFD_SETLKW or a blocking flock() was in an
interruptible wait (-ERESTARTSYS at the freeze): restored, it makes the call
again and waits for the holder, restored before it runs.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import struct
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from incr.proto import image_pb2

from . import fown, proc
from .errors import PidTaken, RestoreError, Unsupported
from .holders import Holder, transfer
from .remote import RemoteProcess, Stub

log = logging.getLogger(__name__)

FileLock = image_pb2.FileLock
OpenFile = image_pb2.OpenFile
LOCK_SH, LOCK_EX, LOCK_NB = 1, 2, 4
F_RDLCK, F_WRLCK = 0, 1
F_SETLK, F_SETOWN, F_OFD_SETLK, F_SETLEASE = 6, 8, 37, 1024
SEEK_SET = 0
_FLOCK = struct.Struct("<hh4xqqi4x")           # struct flock: l_type, l_whence, l_start, l_len, l_pid
KINDS = {"FLOCK": FileLock.FLOCK, "POSIX": FileLock.POSIX, "OFDLCK": FileLock.OFD, "LEASE": FileLock.LEASE}
NAMES = {FileLock.FLOCK: "flock", FileLock.POSIX: "POSIX lock", FileLock.OFD: "OFD lock", FileLock.LEASE: "lease"}
# Descriptions the restore opens again by path: the same file, where locks of others may wait.
_REOPENED = (OpenFile.REGULAR, OpenFile.DIRECTORY, OpenFile.FIFO)


@dataclass(frozen=True)
class Seen:
    """One line of /proc/locks or one "lock:" line of fdinfo."""

    kind: str          # FLOCK, POSIX, OFDLCK, LEASE (DELEG...: not supported)
    state: str         # ADVISORY for locks; ACTIVE, BREAKING or BREAKER for leases
    type: str          # READ, WRITE (UNLCK: a lease being broken to nothing)
    pid: int           # who took it (-1: an OFD lock; 0: a PID outside incr's namespace)
    dev: tuple[int, int]
    ino: int
    start: int
    end: int           # last byte, -1: to the end of the file

    @property
    def length(self) -> int:
        return 0 if self.end < 0 else self.end - self.start + 1

    def overlaps(self, start: int, length: int) -> bool:
        end = start + length - 1 if length else -1
        return (self.end < 0 or start <= self.end) and (end < 0 or self.start <= end)

    def describe(self) -> str:
        if self.kind == "FLOCK":
            return f"{'exclusive' if self.type == 'WRITE' else 'shared'} flock"
        kind = KINDS.get(self.kind)
        name = NAMES[kind] if kind is not None else f"{self.kind} lock"
        span = "" if self.kind == "LEASE" else f" on bytes {self.start}-{'EOF' if self.end < 0 else self.end}"
        return f"{self.type.lower()} {name}{span}"


def parse(text: str) -> Seen | None:
    """A line of /proc/locks, or the part of an fdinfo "lock:" line after the tag; None for a
    waiter ("->": a process asleep waiting for a lock).  ValueError when it is neither."""
    words = text.split()
    if len(words) > 1 and words[1] == "->":
        return None
    if len(words) < 8:
        raise ValueError(text)
    _, kind, state, ltype, pid, where, start, end = words[:8]
    major, minor, ino = where.split(":")
    return Seen(kind=kind, state=state, type=ltype, pid=int(pid), dev=(int(major, 16), int(minor, 16)),
                ino=int(ino), start=int(start), end=-1 if end == "EOF" else int(end))


def system_locks() -> list[Seen]:
    """Every lock and lease of the system (this PID namespace's view; lines of unknown form left out)."""
    out = []
    with open("/proc/locks") as f:
        for line in f:
            with contextlib.suppress(ValueError):
                seen = parse(line)
                if seen is not None:
                    out.append(seen)
    return out


def _fd_locks(pid: int, fd: int, what: str) -> list[Seen]:
    out = []
    for line in proc.fdinfo_lines(pid, fd):
        if line.startswith("lock:"):
            try:
                seen = parse(line.split(":", 1)[1])
            except ValueError:
                raise Unsupported(pid, what, f"a lock incr cannot read ({line.strip()!r})") from None
            if seen is not None:
                out.append(seen)
    return out


# ---------------------------------------------------------------- dump

class _Tree:
    """Who holds which description, and who shares which table, in a frozen tree."""

    def __init__(self, processes: list[image_pb2.ProcessImage]) -> None:
        self.alive = [p for p in processes if not p.zombie]
        self.by_pid = {p.pid: p for p in self.alive}
        self.zombies = {p.pid for p in processes if p.zombie}
        self.holders: dict[int, list[tuple[int, int]]] = defaultdict(list)   # description -> (pid, lowest fd)
        for p in self.alive:
            lowest: dict[int, int] = {}
            for d in sorted(p.fds, key=lambda d: d.fd):
                lowest.setdefault(d.file, d.fd)
            for fid, fd in lowest.items():
                self.holders[fid].append((p.pid, fd))

    def table(self, pid: int) -> int:
        """The process whose descriptor table `pid` uses (CLONE_FILES: its parent's, up the tree)."""
        p = self.by_pid[pid]
        while p.files_of and p.files_of in self.by_pid:
            p = self.by_pid[p.files_of]
        return p.pid


def dump(image: image_pb2.TreeImage, locked: set[tuple[int, int]]) -> None:
    """Records in each process of `image` (a frozen tree, descriptors dumped) the locks and leases
    it takes again on restore; raises Unsupported for what cannot be.  `locked`: the (pid, fd)
    whose fdinfo had "lock:" lines when the descriptors were dumped (files.FileTable): /proc/locks
    is not read while frozen (10 ms a read here, after a pause)."""
    tree = _Tree(list(image.processes))
    _refuse_dnotify(tree)
    if not locked:
        return
    seen: set[tuple[object, ...]] = set()
    for p in tree.alive:
        by_id = {f.id: f for f in p.files}
        for d in sorted(p.fds, key=lambda d: d.fd):
            if (p.pid, d.fd) not in locked:
                continue
            f = by_id[d.file]
            what = f"fd {d.fd} ({f.path})"
            for lock in _fd_locks(p.pid, d.fd, what):
                kind = _kind(p.pid, what, lock, f)
                owner = tree.table(p.pid) if kind == FileLock.POSIX else -1
                key = (owner, d.file, kind, lock.type, lock.start, lock.end)
                if key in seen:
                    continue                  # the same lock, seen through another holder or number
                seen.add(key)
                if kind == FileLock.POSIX:
                    _note_posix(tree, p, d.fd, what, lock)
                else:
                    _note_shared(tree, f, what, kind, lock)


def _kind(pid: int, what: str, lock: Seen, f: image_pb2.OpenFile) -> image_pb2.FileLock.Kind:
    kind = KINDS.get(lock.kind)
    if kind is None:
        raise Unsupported(pid, what, f"a {lock.kind} lock ({lock.describe()}) is not supported")
    if f.kind == OpenFile.INHERIT_STDIO:
        raise Unsupported(pid, what, f"a {NAMES[kind]} on stdio from the launcher: the restored job gets "
                          "`incr restore`'s own stdio, which incr does not lock for it")
    if kind == FileLock.LEASE and lock.state != "ACTIVE":
        raise Unsupported(pid, what, f"a lease being broken (state {lock.state}, to {lock.type}: a process opened "
                          "the file and the lease break is under way); restoring it is not supported")
    if lock.type not in ("READ", "WRITE"):
        raise Unsupported(pid, what, f"a {NAMES[kind]} of type {lock.type} is not supported")
    return kind


def _note_posix(tree: _Tree, p: image_pb2.ProcessImage, fd: int, what: str, lock: Seen) -> None:
    """A POSIX lock of p's descriptor table, taken again by the process that took it."""
    taker = tree.by_pid.get(lock.pid)
    if taker is None or tree.table(lock.pid) != tree.table(p.pid):
        gone = "has exited" if not proc.exists(lock.pid) or lock.pid in tree.zombies else "is outside the job"
        raise Unsupported(p.pid, what, f"its {lock.describe()} was taken by PID {lock.pid}, which {gone} "
                          "(the descriptor table is shared): F_GETLK would name a PID a restore cannot give back")
    taker.locks.append(FileLock(kind=FileLock.POSIX, fd=fd, write=lock.type == "WRITE", start=lock.start,
                                length=lock.length))


def _note_shared(tree: _Tree, f: image_pb2.OpenFile, what: str, kind: image_pb2.FileLock.Kind,
                 lock: Seen) -> None:
    """A lock or lease of description `f`, taken again by one of its holders."""
    holders = tree.holders[f.id]
    pid, fd = next(((h, n) for h, n in holders if h == lock.pid), holders[0])
    # A flock's taker: a process of the job without the description now, or one that has exited.
    borrowed = kind == FileLock.FLOCK and lock.pid > 0 and lock.pid != pid and lock.pid not in tree.zombies \
        and (lock.pid in tree.by_pid or not proc.exists(lock.pid))
    taker = lock.pid if borrowed else 0
    tree.by_pid[pid].locks.append(FileLock(kind=kind, fd=fd, write=lock.type == "WRITE", start=lock.start,
                                           length=lock.length, taker=taker))
    if kind == FileLock.LEASE:
        # A lease puts O_ASYNC in its description's flags (its break signal goes through the
        # description's fasync list), which F_SETFL cannot set on a plain file: it comes back with the lease.
        for other in tree.alive:
            for copy in other.files:
                if copy.id == f.id:
                    copy.flags &= ~fown.O_ASYNC


def _refuse_dnotify(tree: _Tree) -> None:
    for p in tree.alive:
        lowest = {d.file: d.fd for d in sorted(p.fds, key=lambda d: -d.fd)}
        for f in p.files:
            if f.kind == OpenFile.DIRECTORY and (f.HasField("owner") or f.signal):
                raise Unsupported(p.pid, f"fd {lowest.get(f.id, -1)} ({f.path})", "a directory with an owner "
                                  "(F_SETOWN) or a signal (F_SETSIG) may carry dnotify (fcntl F_NOTIFY sets the "
                                  "owner), which the kernel shows nowhere incr could read it back: not supported")


def needs_version_3(image: image_pb2.TreeImage) -> bool:
    return any(p.locks for p in image.processes)


# ---------------------------------------------------------------- restore

def preflight(tree: image_pb2.TreeImage) -> None:
    """Refuses, creating nothing, a restore whose locks someone else holds now (as /proc/locks shows)."""
    wanted = [(p, lock) for p in tree.processes for lock in p.locks if lock.kind != FileLock.LEASE]
    if not wanted:
        return
    now = system_locks()
    for p, lock in wanted:
        f = _description(p, lock.fd)
        if f is None or f.kind not in _REOPENED:
            continue                                  # a pipe, socket... made anew: no one else has it
        try:
            st = os.stat(f.path)
        except OSError:
            continue                                  # files.preflight says why
        for other in now:
            if (other.ino, other.dev) == (st.st_ino, (os.major(st.st_dev), os.minor(st.st_dev))) \
                    and _conflicts(lock, other):
                raise RestoreError(f"cannot restore PID {p.pid}: its {_describe(lock)} on fd {lock.fd} ({f.path}) "
                                   f"is taken: {_holder(other)} holds a {other.describe()}; end it or let it "
                                   "unlock, then restore again")


def _conflicts(lock: image_pb2.FileLock, other: Seen) -> bool:
    if other.kind == "FLOCK":
        return lock.kind == FileLock.FLOCK and (lock.write or other.type == "WRITE")
    if other.kind in ("POSIX", "OFDLCK"):
        return lock.kind in (FileLock.POSIX, FileLock.OFD) and (lock.write or other.type == "WRITE") \
            and other.overlaps(lock.start, lock.length)
    return False


def _holder(seen: Seen) -> str:
    if seen.pid > 0 and proc.exists(seen.pid):
        return proc.describe(seen.pid)
    return "another process" if seen.pid <= 0 else f"PID {seen.pid}"


def _describe(lock: image_pb2.FileLock) -> str:
    kind = "write" if lock.write else "read"
    if lock.kind in (FileLock.POSIX, FileLock.OFD):
        end = "EOF" if not lock.length else str(lock.start + lock.length - 1)
        return f"{kind} {NAMES[lock.kind]} on bytes {lock.start}-{end}"
    return f"{'exclusive' if lock.write else 'shared'} flock" if lock.kind == FileLock.FLOCK else f"{kind} lease"


def _description(p: image_pb2.ProcessImage, fd: int) -> image_pb2.OpenFile | None:
    file_id = next((d.file for d in p.fds if d.fd == fd), None)
    return next((f for f in p.files if f.id == file_id), None)


def restore(processes: Iterable[image_pb2.ProcessImage], stubs: Mapping[int, Stub], root: Stub) -> None:
    """Every lock and lease of the tree, taken again; after every descriptor table is built and
    before any process runs, while the stubs are still root.  `root`: the root's stub (its helpers
    with a PID of their own are cloned from it)."""
    procs = [p for p in processes if p.locks]
    for p in procs:                           # POSIX locks last: a borrowed copy's close would drop them
        for lock in p.locks:
            if lock.kind != FileLock.POSIX:
                _take(stubs[p.pid], p, lock, stubs, root)
    for p in procs:
        for lock in p.locks:
            if lock.kind == FileLock.POSIX:
                _take(stubs[p.pid], p, lock, stubs, root)


def _take(stub: Stub, p: image_pb2.ProcessImage, lock: image_pb2.FileLock, stubs: Mapping[int, Stub],
          root: Stub) -> None:
    f = _description(p, lock.fd)
    path = f.path if f is not None else "?"
    if lock.kind == FileLock.FLOCK:
        op = (LOCK_EX if lock.write else LOCK_SH) | LOCK_NB
        with _taker(stub, lock, stubs, root) as (target, fd):
            ret = target.syscall("flock", fd, op)
    elif lock.kind == FileLock.LEASE:
        ret = stub.syscall("fcntl", lock.fd, F_SETLEASE, F_WRLCK if lock.write else F_RDLCK)
        if ret == 0 and f is not None and not f.HasField("owner"):
            stub.call("fcntl", lock.fd, F_SETOWN, 0)          # F_SETLEASE made the stub its owner
    else:
        cmd = F_SETLK if lock.kind == FileLock.POSIX else F_OFD_SETLK
        arg = _FLOCK.pack(F_WRLCK if lock.write else F_RDLCK, SEEK_SET, lock.start, lock.length, 0)
        ret = stub.syscall("fcntl", lock.fd, cmd, stub.put(arg))
    if ret == -errno.EAGAIN and lock.kind == FileLock.LEASE:
        raise RestoreError(f"cannot restore PID {p.pid}: its {_describe(lock)} on fd {lock.fd} ({path}): the file is "
                           f"open {'' if lock.write else 'for writing '}in another process now; end it, then "
                           "restore again")
    if ret == -errno.EAGAIN:
        holders = [s for s in system_locks() if s.pid != p.pid and _same_file(stub.pid, lock.fd, s)]
        who = f"{_holder(holders[0])} holds a {holders[0].describe()}" if holders else "someone else holds it"
        raise RestoreError(f"cannot restore PID {p.pid}: its {_describe(lock)} on fd {lock.fd} ({path}) is taken: "
                           f"{who}; end it or let it unlock, then restore again")
    if ret < 0:
        raise RestoreError(f"cannot restore PID {p.pid}: its {_describe(lock)} on fd {lock.fd} ({path}): "
                           f"{os.strerror(-ret)}")


def _same_file(pid: int, fd: int, seen: Seen) -> bool:
    try:
        st = os.stat(f"/proc/{pid}/fd/{fd}")
    except OSError:
        return False
    return (st.st_ino, (os.major(st.st_dev), os.minor(st.st_dev))) == (seen.ino, seen.dev)


@contextlib.contextmanager
def _taker(stub: Stub, lock: image_pb2.FileLock, stubs: Mapping[int, Stub],
           root: Stub) -> Iterator[tuple[RemoteProcess, int]]:
    """(process, descriptor) through which a flock is taken: the holder's own, or a copy borrowed by
    the process that took it at first (a process of the job, or a helper with its exited PID)."""
    if not lock.taker:
        yield stub, lock.fd
        return
    other = stubs.get(lock.taker)
    helper = None
    if other is None:
        try:
            helper = other = root.fork_sibling(lock.taker)
        except PidTaken:
            log.warning("PID %d: the flock on fd %d was taken by PID %d, which had exited and is another "
                        "process's now: /proc/locks names %d instead", stub.vpid, lock.fd, lock.taker, stub.vpid)
            yield stub, lock.fd
            return
    try:
        fd = transfer(other, Holder(stub.vpid, lock.fd))
        try:
            yield other, fd
        finally:
            other.call("close", fd)
    finally:
        if helper is not None:
            helper.kill()
