"""Open files: the descriptor table and the open file descriptions behind it.

Supported: regular files and directories (reopened by path at the dumped
offset, flags and close-on-exec), /dev/null|zero|full|random|urandom, named
FIFOs (fifos.py), and descriptors that share one open file description
(kcmp) stay shared.  A
terminal or pipe on fd 0-2 that leads outside the job, or a regular file on
fd 0-2 whose description a process outside the job shares (the batch script's
log), is the launcher's stdio: the restored process gets `incr restore`'s own
instead.

Writable regular files that grew after the checkpoint (the job kept writing
its output) are truncated back to their size at checkpoint time on restore, so
that the job's later writes land where they did the first time -- unless
others write them too: outside.py says who and what then.
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import stat
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator

from incr.proto import image_pb2

from . import (
    epoll,
    eventfd,
    external,
    fanotify,
    fifos,
    fown,
    ghost,
    inet,
    inflight,
    inotify,
    mqueue,
    netlink,
    outside,
    pidfd,
    pipes,
    proc,
    procfs,
    pty,
    shm,
    signalfd,
    timerfd,
    unixnamed,
    unixsock,
)
from . import ptrace as pt
from .errors import ProcessNotFound, RestoreError, Unsupported
from .holders import Holder, transfer
from .pipes import stolen
from .remote import RemoteProcess

log = logging.getLogger(__name__)

OpenFile = image_pb2.OpenFile
STDIO = (0, 1, 2)
ANON_KINDS = {"anon_inode:[eventfd]": OpenFile.EVENTFD, "anon_inode:[signalfd]": OpenFile.SIGNALFD,
              "anon_inode:[timerfd]": OpenFile.TIMERFD, "anon_inode:[eventpoll]": OpenFile.EPOLL,
              "anon_inode:inotify": OpenFile.INOTIFY, "anon_inode:[pidfd]": OpenFile.PIDFD,
              "anon_inode:[fanotify]": OpenFile.FANOTIFY}
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
TTY_MAJORS = {4, 5, 136, 137, 138, 139, 140, 141, 142, 143}
O_CLOEXEC = 0o2000000
O_ACCMODE = 0o3
# open(2) does not register O_ASYNC (its descriptor is never signalled): F_SETFL sets it afterwards.
_NOT_REOPENED = fown.NOT_REOPENED
AT_FDCWD = -100
F_SETFD, FD_CLOEXEC, F_DUPFD_CLOEXEC = 2, 1, 1030


def file_id(st: os.stat_result) -> image_pb2.FileId:
    return image_pb2.FileId(dev=st.st_dev, ino=st.st_ino, size=st.st_size, mtime_ns=st.st_mtime_ns,
                            mode=st.st_mode, ctime_ns=st.st_ctime_ns)


def same_file(st: os.stat_result, path: str) -> bool:
    try:
        other = os.stat(path)
    except OSError:
        return False
    return (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino)


def check_unchanged(path: str, fid: image_pb2.FileId, what: str) -> None:
    """Refuse to restore onto a file that is gone, replaced or modified since the checkpoint.

    Size and mtime alone miss an edit of the same length whose mtime was set back (touch -d,
    utime): the inode change time cannot be set back by any program, and a file replaced by a
    rename or deleted and made again is another inode.  The device number is not compared: it is
    handed out at mount time (tmpfs, overlay, NFS, the order disks are found in) and may differ
    after a reboot or remount for the very same file, while inode number and ctime to the
    nanosecond coinciding for another file is not a case to plan for."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise RestoreError(f"cannot restore: {what} {path} is not accessible ({exc.strerror})") from None
    change = _change(st, fid)
    if change:
        raise RestoreError(f"cannot restore: {what} {path} changed since the checkpoint ({change}); "
                           "put the original back first")


def _change(st: os.stat_result, fid: image_pb2.FileId) -> str:
    """How the file `st` differs from the one recorded as `fid` ("" when it does not).  Images without
    a ctime (0: written before it was recorded) are compared on the rest."""
    if st.st_ino != fid.ino:
        return f"it is another file now, inode {st.st_ino}, was {fid.ino}: replaced or made again"
    if st.st_size != fid.size:
        return f"size {st.st_size} bytes, was {fid.size}"
    if st.st_mtime_ns != fid.mtime_ns:
        return f"modification time {_when(st.st_mtime_ns)}, was {_when(fid.mtime_ns)}"
    if fid.ctime_ns and st.st_ctime_ns != fid.ctime_ns:
        return f"inode change time {_when(st.st_ctime_ns)}, was {_when(fid.ctime_ns)}"
    return ""


def _when(ns: int) -> str:
    """A file time as local ISO-8601 to the nanosecond (two edits in one second must read apart)."""
    seconds, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(seconds)) + f".{frac:09d}"


def writable(flags: int) -> bool:
    return flags & O_ACCMODE in (os.O_WRONLY, os.O_RDWR)


# ---------------------------------------------------------------- dump

class FileTable:
    """The open file descriptions of a tree of frozen processes.

    Each description gets one id, shared by every descriptor of every process
    that refers to it (kcmp KCMP_FILE: after fork, a parent and its child share
    descriptions).  A pipe is supported when the tree holds both of its ends.
    """

    def __init__(self, processes: dict[int, set[int]], *, frozen: bool = False,
                 ghost_limit: int | None = None, external_ok: bool = False) -> None:
        """`processes`: pid -> descriptors to leave out (incr's own, e.g. a parked tracker); `frozen`:
        the tree cannot change meanwhile (the dump, not the checks before the freeze); `ghost_limit`:
        the largest deleted file whose contents the checkpoint may store (ghost.py; None: unchecked);
        `external_ok`: pipes and sockets leading out of the job are recorded as external (external.py),
        not refused."""
        self.skip = processes
        self.ghost_limit = ghost_limit
        self.external_ok = external_ok
        self.frozen = frozen
        self.proc_dev = procfs.proc_dev()
        self._held_outside: set[int] | None = None                 # pipe inodes also open outside the tree
        self._warned: set[int] = set()                             # of those, the ones said to be the job's
        self.files: list[image_pb2.OpenFile] = []
        self.holders: dict[int, Holder] = {}          # description id -> first holder
        self._by_inode: dict[tuple[int, int], list[tuple[Holder, image_pb2.OpenFile]]] = defaultdict(list)
        self.pipe_ends: dict[int, set[int]] = defaultdict(set)     # pipe inode -> access modes held in the tree
        self.sockets_held: set[int] = set()                        # socket inodes held in the tree
        self.socket_ends: dict[int, tuple[int, int]] = {}          # socket inode -> (pid, fd) first holding it
        self.widowed: set[int] = set()                             # pipe inodes whose other end no one holds
        self.fifos_alone: set[fifos.Key] = set()                   # FIFOs no process outside the tree holds
        self.locked: set[tuple[int, int]] = set()                  # (pid, fd) whose fdinfo lists locks or leases
        self.outside = outside.Survey(processes)                   # regular files held outside the tree
        self.pty_masters: dict[int, tuple[int, int]] = {}          # pty index -> (pid, fd) first holding its master
        self.pty_slaves: set[int] = set()                          # pty indexes whose slave the tree holds
        for pid, skip in processes.items():
            # A running tree (checks before the freeze) may lose a process or a descriptor meanwhile.
            with contextlib.suppress(ProcessNotFound, FileNotFoundError, ProcessLookupError):
                for fd in proc.fds(pid):
                    if fd not in skip:
                        self._note_end(pid, fd)
        self.unix = unixsock.unix_sockets() if self.sockets_held else {}
        self._pending: dict[int, int] | None = None                # clients waiting in a backlog -> listener
        self.job = _job_pids(processes)                            # PID as incr sees it -> as the job does
        self.in_flight: list[int] = []                             # ids of descriptions only in flight
        self._carried_fds: list[int] = []                          # incr's copies of those, kept for the dump
        unixsock.check_in_flight(self.socket_ends, self.unix, frozen=frozen, job=self.job,
                                 carried=self._note_carried if frozen else None)

    def _note_carried(self, fd: int) -> None:
        """A pipe end in flight counts as held: the pipe is the job's when the job holds its other end."""
        link = os.readlink(f"/proc/self/fd/{fd}")
        if link.startswith("pipe:"):
            self.pipe_ends[os.fstat(fd).st_ino].add(int(proc.fdinfo(os.getpid(), fd)["flags"], 8) & O_ACCMODE)

    def carried(self, fd: int) -> int | str:
        """The id of the description incr's descriptor `fd` refers to, carried by a queued message
        (inflight.py): a description of the job's, else one that exists only in flight, described
        here through a copy incr keeps until close_carried(); or why it cannot be restored."""
        st = os.fstat(fd)
        me = os.getpid()
        for h, f in self._by_inode[(st.st_dev, st.st_ino)]:
            if pt.kcmp_files(h.pid, h.fd, me, fd) == 0:
                return f.id
        link = os.readlink(f"/proc/self/fd/{fd}")       # (a socket: check_in_flight refused it)
        kept = os.dup(fd)
        self._carried_fds.append(kept)
        info = proc.fdinfo(me, kept)
        try:
            desc = self._describe(me, kept, link, st, int(info["flags"], 8), int(info.get("pos", "0")))
        except Unsupported as exc:
            return f"descriptors (SCM_RIGHTS), one of {link}, which no process of the job holds: {exc.why}"
        if desc.kind not in IN_FLIGHT_KINDS:
            return (f"descriptors (SCM_RIGHTS), one of {link}, which no process of the job holds: of its kind, "
                    "only descriptions a process of the job holds too are supported in flight")
        desc.id = len(self.files)
        self.files.append(desc)
        self.holders[desc.id] = Holder(me, kept)
        self._by_inode[(st.st_dev, st.st_ino)].append((Holder(me, kept), desc))
        self.in_flight.append(desc.id)
        return desc.id

    def close_carried(self) -> None:
        inflight.close_all(self._carried_fds)
        self._carried_fds.clear()

    def _note_end(self, pid: int, fd: int) -> None:
        with contextlib.suppress(ProcessNotFound, FileNotFoundError, ProcessLookupError):
            link = proc.readlink(pid, f"fd/{fd}")
            if link in ("/dev/ptmx", "/dev/pts/ptmx") and pty.is_master(os.stat(f"/proc/{pid}/fd/{fd}")):
                self.pty_masters.setdefault(pty.master_index(pid, fd), (pid, fd))
                return
            if not link.startswith(("pipe:", "socket:")):
                return
            ino = os.stat(f"/proc/{pid}/fd/{fd}").st_ino
            if link.startswith("pipe:"):
                self.pipe_ends[ino].add(int(proc.fdinfo(pid, fd)["flags"], 8) & O_ACCMODE)
            else:
                self.sockets_held.add(ino)
                self.socket_ends.setdefault(ino, (pid, fd))

    def add(self, pid: int) -> tuple[list[image_pb2.OpenFile], list[image_pb2.Fd]]:
        """The descriptions process `pid` uses (each once) and its descriptor table."""
        used: dict[int, image_pb2.OpenFile] = {}
        fds: list[image_pb2.Fd] = []
        for fd in (n for n in proc.fds(pid) if n not in self.skip.get(pid, set())):
            link = proc.readlink(pid, f"fd/{fd}")
            st = os.stat(f"/proc/{pid}/fd/{fd}")
            info = proc.fdinfo(pid, fd)
            if "lock" in info:
                self.locked.add((pid, fd))
            flags = int(info["flags"], 8)
            desc = self._describe(pid, fd, link, st, flags, int(info.get("pos", "0")))
            key = (st.st_dev, st.st_ino)
            shared = next((f for h, f in self._by_inode[key] if pt.kcmp_files(h.pid, h.fd, pid, fd) == 0), None)
            if shared is None:
                desc.id = len(self.files)
                self.files.append(desc)
                self.holders[desc.id] = Holder(pid, fd)
                self._by_inode[key].append((Holder(pid, fd), desc))
                fown.dump(pid, fd, desc)
                shared = desc
            used[shared.id] = shared
            fds.append(image_pb2.Fd(fd=fd, file=shared.id, cloexec=bool(flags & O_CLOEXEC)))
        return list(used.values()), fds

    def _socket(self, pid: int, fd: int, what: str, ino: int, base: image_pb2.OpenFile) -> image_pb2.OpenFile:
        info = self.unix.get(ino)
        if info is None and netlink.is_netlink(pid, fd):
            base.kind = OpenFile.NETLINK
            base.socket = ino
            return base
        if info is None:
            inet.check(pid, fd, what)
            base.kind = OpenFile.INET
            base.socket = ino
            return base
        base.socket = ino
        if not info.peer or info.peer in self.sockets_held:
            if self._pending is None:
                self._pending = unixnamed.pending_clients(self.unix)
            if unixnamed.concerns(info, self.unix, set(self._pending)) or (
                    info.widowed and unixnamed.peer_name(pid, fd)):
                base.kind = OpenFile.UNIX                   # bound, listening, connected through a name...
                return base
            base.kind = OpenFile.SOCKETPAIR                 # (a widowed one: its peer was closed)
            return base
        if not self.frozen and not _holders(f"socket:[{info.peer}]", exclude=set(self.skip)):
            base.kind = OpenFile.SOCKETPAIR     # its peer may be in flight: the frozen dump looks there
            return base
        base.ClearField("socket")
        if fd in STDIO and info.peer:
            base.kind = OpenFile.INHERIT_STDIO
            base.what = base.path
            return base
        if self.external_ok:
            return external.record(pid, fd, base.path, base, warn=self.frozen)
        raise Unsupported(pid, what, "its peer is outside the job (checkpoint --external records it as external); "
                          "not supported")

    def _terminal(self, pid: int, fd: int, what: str, link: str, st: os.stat_result
                  ) -> tuple[image_pb2.OpenFile.Kind, int] | None:
        """(kind, index) of a pty of the job's (pty.py): its master, its slave, or /dev/tty on it; None
        for any other character device."""
        if pty.is_master(st):
            return OpenFile.PTY_MASTER, pty.master_index(pid, fd)
        index = pty.slave_index(link, st.st_rdev)
        if index is not None and index in self.pty_masters:
            self.pty_slaves.add(index)
            return OpenFile.PTY_SLAVE, index
        if pty.is_dev_tty(st):
            tty = proc.stat(pid)[7] & 0xFFFFFFFF
            for index in self.pty_masters:
                if pty.device(index) == tty:
                    return OpenFile.TTY, index
            if fd in STDIO:
                return None                     # the launcher's terminal: stdio, as ever
            raise Unsupported(pid, what, "/dev/tty, whose controlling terminal is not a pseudo-terminal the job "
                              "made: not supported (the launcher's terminal on fd 0-2 is its stdio)")
        return None

    def _own_pipe(self, pid: int, fd: int, link: str, ino: int) -> bool:
        """Whether a pipe both of whose ends the tree holds is the job's own: no one outside holds it,
        or nothing is queued in it (a synchronisation pipe that leaked into the job, say: it comes back
        as the job's, said once).  One holding bytes an outsider may read or have written (make -j's
        jobserver and its tokens) is not."""
        if not self._also_outside(ino):
            return True
        with stolen(pid, fd) as mine:
            if pipes.queued(mine):
                return False
        if self.frozen and ino not in self._warned:
            self._warned.add(ino)
            log.warning("warning: PID %d fd %d (%s) is also held by %s, outside the job; nothing is queued in "
                        "it: restored as the job's own pipe", pid, fd, link,
                        ", ".join(_holders(link, exclude=set(self.skip))) or "a process incr cannot see")
        return True

    def _also_outside(self, ino: int) -> bool:
        """Whether a process outside the tree holds pipe `ino` too (make -j hands its jobserver pipe,
        both ends, to its recipes): one scan of /proc for all the tree's pipes."""
        if self._held_outside is None:
            wanted = {f"pipe:[{n}]" for n in self.pipe_ends}
            self._held_outside = {int(link[6:-1]) for _, link in _links_outside(set(self.skip)) if link in wanted}
        return ino in self._held_outside

    def _fifo(self, pid: int, what: str, link: str, st: os.stat_result,
              base: image_pb2.OpenFile) -> image_pb2.OpenFile:
        gone = ghost.removed_node(link, st)
        if gone is None and (link.endswith(" (deleted)") or not same_file(st, link)):
            raise Unsupported(pid, what, "the named FIFO was replaced while open, or its name moved; restore "
                                         "reopens it by its path")
        key = (st.st_dev, st.st_ino)
        if key not in self.fifos_alone:
            outsiders = _holders(link, exclude=set(self.skip))
            if outsiders:
                raise Unsupported(pid, what, f"the named FIFO is also open in {', '.join(outsiders)}, outside "
                                             "the job; FIFOs shared with processes outside the job are not "
                                             "supported")
            self.fifos_alone.add(key)
        base.kind = OpenFile.FIFO
        base.pipe = st.st_ino
        base.file.CopyFrom(file_id(st))
        if gone is not None:
            base.path = gone.name
            base.removed.CopyFrom(gone)
        return base

    def _describe(self, pid: int, fd: int, link: str, st: os.stat_result, flags: int,
                  pos: int) -> image_pb2.OpenFile:
        what = f"fd {fd} ({link})"
        mode = st.st_mode
        base = OpenFile(path=link, flags=flags & ~O_CLOEXEC, pos=pos)
        anon = ANON_KINDS.get(link)
        if anon is not None:
            base.kind = anon
            info = proc.fdinfo(pid, fd)
            if anon == OpenFile.EVENTFD:
                base.eventfd.CopyFrom(eventfd.dump(info))
            elif anon == OpenFile.SIGNALFD:
                base.signalfd.CopyFrom(signalfd.dump(info))
            elif anon == OpenFile.TIMERFD:
                base.timerfd.CopyFrom(timerfd.dump(info))
            elif anon == OpenFile.EPOLL:
                base.epoll.CopyFrom(epoll.dump(pid, fd, proc.fdinfo_lines(pid, fd)))
            elif anon == OpenFile.PIDFD:
                base.pidfd.CopyFrom(pidfd.dump(pid, fd, info, set(self.skip)))
            elif anon == OpenFile.FANOTIFY:
                base.fanotify.CopyFrom(fanotify.dump(pid, fd, proc.fdinfo_lines(pid, fd)))
            else:
                base.inotify.CopyFrom(inotify.dump(pid, fd, proc.fdinfo_lines(pid, fd)))
            return base
        if stat.S_ISSOCK(mode):
            return self._socket(pid, fd, what, st.st_ino, base)
        if link.startswith("anon_inode:"):
            kind = link.split(":", 1)[1].strip("[]") if ":" in link else "socket"
            noun = "sockets" if link.startswith("socket:") else f"{kind} descriptors"
            raise Unsupported(pid, what, f"{noun} are not supported yet")
        if stat.S_ISFIFO(mode):
            if not link.startswith("pipe:"):
                return self._fifo(pid, what, link, st, base)
            if {os.O_RDONLY, os.O_WRONLY} <= self.pipe_ends[st.st_ino] and self._own_pipe(pid, fd, link, st.st_ino):
                base.kind = OpenFile.PIPE
                base.pipe = st.st_ino
                return base
            if fd in STDIO:
                base.kind = OpenFile.INHERIT_STDIO
                base.what = link
                return base
            end = flags & O_ACCMODE
            if self.pipe_ends[st.st_ino] == {end} and (st.st_ino in self.widowed
                                                       or pipes.other_end_closed(pid, fd, end)):
                self.widowed.add(st.st_ino)         # the other end is closed everywhere: inside the job
                base.kind = OpenFile.PIPE
                base.pipe = st.st_ino
                return base
            peers = _holders(link, exclude=set(self.skip))
            if not peers and not self.frozen:
                base.kind = OpenFile.PIPE       # its other end may be in flight: the frozen dump looks there
                base.pipe = st.st_ino
                return base
            if self.external_ok:
                return external.record(pid, fd, link, base, warn=self.frozen)
            end_of = "it is also" if {os.O_RDONLY, os.O_WRONLY} <= self.pipe_ends[st.st_ino] else "its other end is"
            where = f"{end_of} held by {', '.join(peers)}, outside the job" if peers else \
                "its other end is open outside the job (held by a process incr cannot see, or in flight " \
                "in a Unix socket message)"
            raise Unsupported(pid, what, f"{where}; pipes leading out of the job are not supported (checkpoint "
                                         "--external records them as external)")
        if stat.S_ISCHR(mode) and (terminal := self._terminal(pid, fd, what, link, st)) is not None:
            base.kind, base.pty = terminal
            return base
        if stat.S_ISCHR(mode):
            if link in DEVICES:
                base.kind = OpenFile.CHAR_DEVICE
                return base
            if os.major(st.st_rdev) in TTY_MAJORS and fd in STDIO:
                base.kind = OpenFile.INHERIT_STDIO
                base.what = link
                return base
            raise Unsupported(pid, what, "this character device is not supported yet")
        if stat.S_ISREG(mode) and mqueue.is_queue(pid, fd):
            raise mqueue.refuse(pid, fd, link)
        if stat.S_ISREG(mode) and (obj := shm.classify(pid, link, st, what)) is not None \
                and (obj.kind != image_pb2.ShmImage.DEVSHM or obj.unlinked):
            ghost.check_limit(pid, what, obj, self.ghost_limit)
            base.kind = OpenFile.SHMEM
            base.shm = obj.key
            return base
        if st.st_dev == self.proc_dev and (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
            return procfs.describe(pid, what, link, base, set(self.skip))
        if stat.S_ISLNK(mode):
            return procfs.symlink(pid, what, link, base)
        if stat.S_ISDIR(mode) and (gone := ghost.removed_node(link, st)) is not None:
            base.kind = OpenFile.DIRECTORY
            base.path = gone.name
            base.removed.CopyFrom(gone)
            return base
        if stat.S_ISDIR(mode) or stat.S_ISREG(mode):
            if link.endswith(" (deleted)") or not same_file(st, link):
                raise Unsupported(pid, what, "the file was deleted or replaced while open; "
                                             "unlinked files are not supported yet")
            base.kind = OpenFile.DIRECTORY if stat.S_ISDIR(mode) else OpenFile.REGULAR
            base.file.CopyFrom(file_id(st))
            if base.kind == OpenFile.REGULAR:
                self.outside.note(pid, fd, st, base)
                if base.shared_outside and fd in STDIO:      # the launcher's log (outside.py)
                    base.kind = OpenFile.INHERIT_STDIO
                    base.what = link
            return base
        raise Unsupported(pid, what, "this kind of file is not supported yet")


# What a description that exists only in flight may be: described through incr's copy on its own
# (a memfd's or ghost's contents, an epoll set's watches by number, /proc paths, external ends
# are read or named through a process of the job).
IN_FLIGHT_KINDS = frozenset({OpenFile.REGULAR, OpenFile.DIRECTORY, OpenFile.CHAR_DEVICE, OpenFile.PIPE,
                             OpenFile.FIFO, OpenFile.EVENTFD, OpenFile.SIGNALFD, OpenFile.TIMERFD,
                             OpenFile.INOTIFY, OpenFile.PIDFD})


def _job_pids(processes: Iterable[int]) -> dict[int, int]:
    """Each process of the job (alive now) as incr sees it -> as the job sees it."""
    out = {}
    for pid in processes:
        with contextlib.suppress(ProcessNotFound, FileNotFoundError, ProcessLookupError):
            out[pid] = proc.ns_ids(pid)[0]
    return out


def dump(pid: int, skip: set[int]) -> tuple[list[image_pb2.OpenFile], list[image_pb2.Fd]]:
    """The descriptor table of one process on its own (pipes to other processes are refused)."""
    return FileTable({pid: skip}).add(pid)


def _links_outside(exclude: set[int]) -> Iterator[tuple[int, str]]:
    """(PID, /proc link) of every descriptor of every process but `exclude` and incr; slow: a scan of
    /proc."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in exclude or int(entry) == os.getpid():
            continue
        try:
            fds = os.listdir(f"/proc/{entry}/fd")
        except OSError:
            continue
        for fd in fds:
            with contextlib.suppress(OSError):
                yield int(entry), os.readlink(f"/proc/{entry}/fd/{fd}")


def _holders(link: str, exclude: set[int]) -> list[str]:
    """Processes outside `exclude` with an fd on the same pipe or FIFO (at most 3)."""
    found: list[int] = []
    for pid, held in _links_outside(exclude):
        if held == link and pid not in found:
            found.append(pid)
    return [proc.describe(pid) for pid in found[:3]]


# ---------------------------------------------------------------- restore

def written_by_job(processes: Iterable[image_pb2.ProcessImage]) -> set[tuple[int, int]]:
    """The regular files (device and inode at the checkpoint) that a descriptor of the job writes: those
    may change after a checkpoint the job ran on from, or be truncated back by a restore (outside.py)."""
    return {(f.file.dev, f.file.ino) for p in processes for f in p.files
            if f.kind == OpenFile.REGULAR and writable(f.flags)}


def preflight(files: list[image_pb2.OpenFile], written: Collection[tuple[int, int]]) -> None:
    """Refuse before anything is created when a file the job had open is missing or no longer one; when
    a file the job writes (`written`: written_by_job()) shrank; or when one it only reads changed at
    all (check_unchanged: inode, size, times)."""
    sizes: dict[str, int] = {}
    for f in files:
        if f.kind == OpenFile.FIFO and not f.HasField("removed"):
            fifos.preflight(f)
        procfs.preflight(f)
        if f.HasField("removed"):
            ghost.preflight_node(f.removed)
        if f.kind not in (OpenFile.REGULAR, OpenFile.DIRECTORY) or f.HasField("removed"):
            continue
        try:
            st = os.stat(f.path)
        except OSError as exc:
            raise RestoreError(f"cannot restore: {f.path}, open in the job, is not accessible "
                               f"({exc.strerror}); put it back first") from None
        if stat.S_IFMT(st.st_mode) != stat.S_IFMT(f.file.mode):
            raise RestoreError(f"cannot restore: {f.path} is no longer a "
                               f"{'directory' if f.kind == OpenFile.DIRECTORY else 'regular file'}")
        if f.kind != OpenFile.REGULAR:
            continue                # (a directory's times move with every file made in it)
        if (f.file.dev, f.file.ino) in written:
            sizes[f.path] = f.file.size
        else:
            check_unchanged(f.path, f.file, "input file")
    for path, size in sizes.items():
        now = os.stat(path).st_size
        if now < size:
            raise RestoreError(f"cannot restore: {path} is shorter than at the checkpoint ({now} < {size} "
                               "bytes); data the job had written is gone")


class Installer:
    """Rebuilds descriptor tables, process after process of a tree (parents first).

    A description is opened (or a pipe created) in the first process that
    holds it, and its status flags set there (fown.py); the others take it
    from there with an injected pidfd_open + pidfd_getfd, so it stays one
    description (shared offset, shared flags).  Pipe ends no process has
    taken yet are kept open in their creator at high numbers until finish().
    Owners and signals (F_SETOWN_EX, F_SETSIG) wait for restore_owners().
    """

    def __init__(self, pipes: list[image_pb2.PipeImage],
                 socketpairs: list[image_pb2.SocketPairImage] | None = None,
                 shared: shm.ShmInstaller | None = None, named_fifos: list[image_pb2.PipeImage] | None = None,
                 resume: outside.Resumption | None = None, pair_maker: unixsock.PairMaker | None = None,
                 external_paths: dict[int, str] | None = None, ptys: list[image_pb2.PtyImage] | None = None,
                 inet_sockets: list[image_pb2.InetSocketImage] | None = None,
                 netlink_sockets: list[image_pb2.NetlinkSocketImage] | None = None) -> None:
        """`resume`: which written files others write too (outside.py), decided before any is reopened;
        `pair_maker`: creates socket pairs in their creators' name (SO_PEERCRED); `external_paths`: what
        each external description becomes (external.resolve)."""
        self.external_paths = external_paths or {}
        self.inet = inet.Maker(inet_sockets or [])
        self.netlink = netlink.Maker(netlink_sockets or [])
        self.ptys = {p.index: p for p in ptys or []}
        self.pty_masters: dict[int, Holder] = {}             # pty index -> where its master is kept
        socketpairs = socketpairs or []
        self.pair_maker = pair_maker
        self.resume = resume or outside.Resumption()
        self.shared = shared
        self.fifos = fifos.Keepers(named_fifos or [])
        self.pipes = {p.ino: p for p in pipes}
        self.installed: dict[int, Holder] = {}               # description id -> a process holding it
        self.pipe_ends: dict[tuple[int, int], Holder] = {}   # (pipe inode, O_RDONLY|O_WRONLY) -> holder
        self.pairs = {ino: p for p in socketpairs for ino in (p.ino_a, p.ino_b) if ino}
        self.socket_ends: dict[int, Holder] = {}             # socket inode -> holder
        self.named: dict[int, Holder] = {}                   # socket inode -> where unixnamed.Maker keeps it
        self.keepers: list[tuple[RemoteProcess, int]] = []
        self.owned: list[tuple[int, int, image_pb2.OpenFile]] = []   # (PID as incr sees it, fd, description)
        self.extra_flags: dict[int, int] = {}     # description id -> flags the restore adds (O_APPEND: outside.py)
        self.provided: set[int] = set()           # ids provide() made that no process of the job took yet

    def provide(self, target: RemoteProcess, f: image_pb2.OpenFile, keep_from: int) -> Holder:
        """Description `f`, which a queued message carries (inflight.py): where a process of the job
        holds it, or else made in `target` and kept there at a number from `keep_from` until finish()
        (the processes of the job holding it take it from there)."""
        holder = self.installed.get(f.id)
        if holder is not None:
            return holder
        tmp = self._obtain(target, f, keep_from)
        kept = target.call("fcntl", tmp, F_DUPFD_CLOEXEC, keep_from)
        target.call("close", tmp)
        fown.set_status_flags(target, kept, f, self.extra_flags.get(f.id, 0))
        self.keepers.append((target, kept))
        self.installed[f.id] = Holder(target.vpid, kept)
        self.provided.add(f.id)
        return self.installed[f.id]

    def restore(self, target: RemoteProcess, files: list[image_pb2.OpenFile], fds: list[image_pb2.Fd],
                keep_from: int = 0) -> None:
        """The descriptor table of one process (its stub holds only restore's own fds 0-2).  `keep_from`:
        where descriptions kept for later processes wait (keep_at(); 0: computed here)."""
        by_id = {f.id: f for f in files}
        by_file: dict[int, list[image_pb2.Fd]] = defaultdict(list)
        for fd in fds:
            by_file[fd.file].append(fd)
        inherited = {fd.fd for fd in fds if by_id[fd.file].kind == OpenFile.INHERIT_STDIO}
        for n in STDIO:
            if n not in inherited:
                target.syscall("close", n)          # EBADF is fine: restore's own fd n may be closed
        keep_from = keep_from or keep_at(target.pid, (fd.fd for fd in fds), kept_room(files, []))
        # epoll last: it watches descriptors by number, so they must all be in place (an epoll
        # another watches first).
        depth = epoll.nesting(files, fds)
        for f in sorted(files, key=lambda f: (f.kind == OpenFile.EPOLL, depth.get(f.id, 0))):
            users = sorted(by_file[f.id], key=lambda d: d.fd)
            if f.kind == OpenFile.INHERIT_STDIO:
                self._inherit(target, f, users)
                fown.warn_stdio(target, users[0].fd, f)
                continue
            fresh = f.id not in self.installed or f.id in self.provided    # (its owner is set on the job's)
            self.provided.discard(f.id)
            tmp = self._obtain(target, f, keep_from)
            for d in users:
                if d.fd == tmp:
                    target.call("fcntl", tmp, F_SETFD, FD_CLOEXEC if d.cloexec else 0)
                else:
                    target.call("dup3", tmp, d.fd, O_CLOEXEC if d.cloexec else 0)
            if tmp not in {d.fd for d in users}:
                target.call("close", tmp)
            if fresh and f.kind != OpenFile.EXTERNAL:        # (external.open_in set its own)
                fown.set_status_flags(target, users[0].fd, f, self.extra_flags.pop(f.id, 0))
                if fown.has_owner(f):
                    self.owned.append((target.pid, users[0].fd, f))
            self.installed[f.id] = Holder(target.vpid, users[0].fd)

    def _inherit(self, target: RemoteProcess, f: image_pb2.OpenFile, users: list[image_pb2.Fd]) -> None:
        """restore's own stdio stays at 0-2; a number beyond that the description had gets a copy of it."""
        own = [d for d in users if d.fd in STDIO]
        for d in own:
            target.syscall("fcntl", d.fd, F_SETFD, FD_CLOEXEC if d.cloexec else 0)
        others = [d for d in users if d.fd not in STDIO]
        if others:
            holder = self.installed.get(f.id)
            src = own[0].fd if own else transfer(target, holder) if holder else -1
            if src < 0:
                raise RestoreError(f"cannot restore fd {others[0].fd} ({f.what}): no process has it at 0-2")
            for d in others:
                target.call("dup3", src, d.fd, O_CLOEXEC if d.cloexec else 0)
            if not own:
                target.call("close", src)
        if own:
            self.installed.setdefault(f.id, Holder(target.vpid, own[0].fd))

    def _obtain(self, target: RemoteProcess, f: image_pb2.OpenFile, keep_at: int) -> int:
        """A descriptor of `f` in `target`, at whatever number."""
        holder = self.installed.get(f.id)
        if holder is None and f.kind == OpenFile.SHMEM and self.shared is not None \
                and (made := self.shared.descriptions.get(f.id)) is not None:
            tmp = transfer(target, made)           # a ghost's O_TMPFILE description, made with the file
            if f.pos:
                target.call("lseek", tmp, f.pos, os.SEEK_SET)
            return tmp
        if holder is None and f.kind == OpenFile.PIPE:
            end = f.flags & O_ACCMODE
            holder = self.pipe_ends.get((f.pipe, end))
            image = self.pipes.get(f.pipe, image_pb2.PipeImage(ino=f.pipe))
            if holder is None and image.widowed:
                return pipes.create_widowed(target, image, end)
            if holder is None:
                rfd, wfd = pipes.create(target, image)
                mine, other = (rfd, wfd) if end == os.O_RDONLY else (wfd, rfd)
                kept = target.call("fcntl", other, F_DUPFD_CLOEXEC, keep_at)
                target.call("close", other)
                self.keepers.append((target, kept))
                self.pipe_ends[(f.pipe, os.O_RDONLY if end != os.O_RDONLY else os.O_WRONLY)] = Holder(
                    target.vpid, kept)
                return mine
        if holder is None and f.kind == OpenFile.INET:
            return self.inet.obtain(target, f.socket)
        if holder is None and f.kind == OpenFile.NETLINK:
            return self.netlink.obtain(target, f.socket)
        if holder is None and f.kind == OpenFile.UNIX:
            holder = self.named.get(f.socket)
            if holder is None:
                raise RestoreError(f"cannot restore socket:[{f.socket}]: the checkpoint does not describe it")
        if holder is None and f.kind == OpenFile.SOCKETPAIR:
            holder = self.socket_ends.get(f.socket)
            if holder is None:
                pair = self.pairs[f.socket]
                fa, fb = self.pair_maker.create(target, pair) if self.pair_maker else unixsock.create(target, pair)
                if pair.widowed:
                    target.call("close", fb)         # refilled: what the closed end had sent, then its end
                    return fa
                mine, other, other_ino = (fa, fb, pair.ino_b) if f.socket == pair.ino_a else (fb, fa, pair.ino_a)
                kept = target.call("fcntl", other, F_DUPFD_CLOEXEC, keep_at)
                target.call("close", other)
                self.keepers.append((target, kept))
                self.socket_ends[other_ino] = Holder(target.vpid, kept)
                return mine
        if holder is not None:
            return transfer(target, holder)
        if f.kind == OpenFile.EXTERNAL:
            if f.id not in self.external_paths:
                raise RestoreError(f"cannot restore {f.what} (led outside the job): no --external for it")
            return external.open_in(target, f, self.external_paths[f.id])
        if f.kind == OpenFile.SHMEM:
            if self.shared is None:
                raise RestoreError(f"cannot restore the memfd {f.path}: no object")
            # Every description of a memfd is one of its own (offset, flags, access mode) on the one
            # object, reopened through /proc as the job did: never the object's creating description.
            # One of /dev/shm (unlinked by the job) is opened by its path meanwhile, with its flags.
            if (path := self.shared.path_of(f.shm)) is not None:
                tmp = target.call("openat", AT_FDCWD, target.put(os.fsencode(path) + b"\0"),
                                  f.flags & ~_NOT_REOPENED, 0)
            else:
                obj = self.shared.fd_in(target, f.shm, keep_at)
                tmp = target.call("openat", AT_FDCWD, target.put(f"/proc/self/fd/{obj}".encode() + b"\0"),
                                  f.flags & ~_NOT_REOPENED, 0)
                target.call("close", obj)
            if f.pos:
                target.call("lseek", tmp, f.pos, os.SEEK_SET)
            return tmp
        if f.kind in CREATORS:
            return CREATORS[f.kind](target, f)
        if f.kind == OpenFile.PTY_SLAVE and not f.flags & pty.O_LARGEFILE and f.pty in self.pty_masters:
            # Opened through its master (TIOCGPTPEER: openpty(3)), never by a path: open(2) adds O_LARGEFILE.
            master = transfer(target, self.pty_masters[f.pty])
            try:
                return pty.open_peer(target, master, f.flags & ~_NOT_REOPENED)
            finally:
                target.call("close", master)
        if f.kind == OpenFile.PTY_MASTER:
            if f.pty not in self.ptys:
                raise RestoreError(f"cannot restore the master of /dev/pts/{f.pty}: the checkpoint does not "
                                   "describe it")
            return pty.open_master(target, self.ptys[f.pty], f.flags & ~_NOT_REOPENED)
        path = f.path
        if f.HasField("removed"):
            if self.shared is None:
                raise RestoreError(f"cannot restore the removed {f.path}: nowhere to make it again")
            path = self.shared.names.node(f.removed)
        if f.kind == OpenFile.FIFO:
            self.fifos.ensure(f, path)      # reopened by path below: incr's end keeps the open from blocking
        place = outside.Placement()
        if f.kind == OpenFile.REGULAR and writable(f.flags):
            place = self.resume.prepare(f)          # truncated back if the job alone writes it
            self.extra_flags[f.id] = place.extra_flags
        terminal = os.O_NOCTTY if f.kind in (OpenFile.PTY_SLAVE, OpenFile.TTY) else 0    # (set apart: pty.py)
        tmp = target.call("openat", AT_FDCWD, target.put(os.fsencode(path) + b"\0"),
                          (f.flags & ~_NOT_REOPENED) | place.extra_flags | terminal, 0)
        if place.at_end:
            target.call("lseek", tmp, 0, os.SEEK_END)
        elif f.kind in (OpenFile.REGULAR, OpenFile.DIRECTORY) and f.pos:
            target.call("lseek", tmp, f.pos, os.SEEK_SET)
        return tmp

    def restore_owners(self, hosts: dict[int, int]) -> None:
        """Owners and signals of the descriptions restored, once every process and thread of the tree
        exists.  `hosts`: each PID and TID of the job as the job sees it -> as incr sees it."""
        for pid, fd, f in self.owned:
            fown.set_owner(pid, fd, f, hosts)
        self.owned.clear()

    def finish(self) -> None:
        """Close the pipe ends kept for later processes, and incr's ends of the FIFOs; every socket
        exists now: TCP connections leave repair mode (inet.Maker.finish)."""
        for target, fd in self.keepers:
            target.call("close", fd)
        self.keepers.clear()
        self.fifos.close()
        self.inet.finish()

    def abandon(self) -> None:
        """The restore failed (its processes are killed): incr's own descriptors go."""
        self.fifos.close()
        self.inet.abandon()


CREATORS: dict[int, Callable[[RemoteProcess, image_pb2.OpenFile], int]] = {
    OpenFile.EVENTFD: lambda t, f: eventfd.restore(t, f.eventfd, f.flags),
    OpenFile.SIGNALFD: lambda t, f: signalfd.restore(t, f.signalfd, f.flags),
    OpenFile.TIMERFD: lambda t, f: timerfd.restore(t, f.timerfd, f.flags),
    OpenFile.EPOLL: lambda t, f: epoll.restore(t, f.epoll, f.flags),
    OpenFile.INOTIFY: lambda t, f: inotify.restore(t, f.inotify, f.flags),
    OpenFile.FANOTIFY: lambda t, f: fanotify.restore(t, f.fanotify, f.flags),
    OpenFile.PIDFD: lambda t, f: pidfd.restore(t, f.pidfd, f.flags),
    OpenFile.PROCFS: procfs.reopen,
    OpenFile.SYMLINK: procfs.reopen,
}


KEEP_SLACK = 8       # numbers the restore's own passing descriptors may take in the gap meanwhile


def kept_room(files: list[image_pb2.OpenFile], vmas: list[image_pb2.Vma]) -> int:
    """How many descriptions a process may keep for later ones at most: the other end of each pipe
    and socket pair it creates, each memfd it creates."""
    kinds = (OpenFile.PIPE, OpenFile.SOCKETPAIR, OpenFile.SHMEM, OpenFile.UNIX)
    return sum(f.kind in kinds for f in files) + sum(v.kind == image_pb2.Vma.SHMEM for v in vmas)


def keep_at(pid: int, numbers: Iterable[int], room: int) -> int:
    """Where process `pid` keeps up to `room` descriptions for later processes while its table is being
    built: the first of room (+ slack) consecutive numbers its table does not use, below its
    RLIMIT_NOFILE (F_DUPFD takes the lowest free number at or above it, so a kept end never lands on a
    number a descriptor is later dup3'd to).  Past the table's highest number when there is room there
    (a table reaching up to the limit keeps them in a hole)."""
    limit = resource.prlimit(pid, resource.RLIMIT_NOFILE)[0]
    used = sorted(set(numbers) | set(STDIO))
    need = room + KEEP_SLACK
    if used[-1] + 1 + need <= limit:
        return used[-1] + 1
    start = 0
    for n in [*used, limit]:
        if n - start >= need:
            return start
        start = max(start, n + 1)
    raise RestoreError(f"cannot restore PID {pid}'s descriptors: no {need} numbers free below its limit of "
                       f"{limit} open files to pass descriptions on")


def restore(target: RemoteProcess, files: list[image_pb2.OpenFile], fds: list[image_pb2.Fd]) -> None:
    """The descriptor table of a process restored on its own."""
    installer = Installer([], resume=outside.Resumption.of(files))
    installer.restore(target, files, fds)
    installer.finish()
