"""What is outside the job: processes that share the job's files, and the job itself still running.
Dump and restore side by side.  A restore must never damage what is not the job's.

Files shared with processes outside the job
-------------------------------------------
At dump (the tree frozen) one scan of /proc lists the regular files that processes outside the
job hold (os.stat of /proc/PID/fd/N: about 5 us a descriptor here, 2 ms for the ~400
descriptors of this machine).  For each regular file of the job the image records:

* `OpenFile.shared_outside`: the job's open file description itself is held by a process
  outside the job too (kcmp KCMP_FILE against that process's descriptors on the same inode).
  This is the batch script and its job writing one log, Slurm's slurm-%j.out;
* `OpenFile.other_writers`: processes outside the job that have the file open for writing,
  through any description.

Restore:

* stdin/stdout/stderr on a regular file whose description was shared with a process outside
  the job are the launcher's stdio (OpenFile.INHERIT_STDIO, as terminals and pipes from the
  launcher are): the restored job gets `incr restore`'s own, so a batch script that restores its
  job sees the job's lines continue in its own log, in order, and the old file is left alone.
  `incr restore --stdio original` (with_original_stdio()) reopens them instead, as a file that
  others write (below).
* A file the job writes is *written by others* when, at dump, its description was shared with
  a process outside the job or an outside process had the file open for writing; or when, at
  restore, any process has it open for writing (a read lease, F_SETLEASE F_RDLCK, fails exactly
  then: one fcntl; only then does a scan of /proc name the writers); or when the checkpoint
  ended the job (`checkpoint --kill`, TreeImage.ended_job) and the file is longer now than at
  the checkpoint: the job wrote nothing after that instant, so every byte beyond its
  checkpoint size is someone else's.
  Such a file is never truncated.  A description of the job that was at the file's end at the
  checkpoint (an appending writer: its offset >= the file's size then) is reopened at the
  file's end now, so it continues after what the others wrote; one that was shared with an
  outside process comes back as a description of its own, so it also gets O_APPEND: the
  shared offset kept the job's and the other's writes from overwriting each other, O_APPEND
  does the same for two descriptions.  A description inside the file keeps its offset (the
  bytes up to the checkpoint size are the ones the job knew).  A warning names the file.
* A file only the job writes is truncated back to its size at the checkpoint when it is longer
  (the job ran on after the checkpoint and writes those bytes again): that is what makes the
  job's output byte-identical to an uninterrupted run's.  Each file cut back is named in one
  warning, and told to whoever records the cuts (recording_cuts(): incr.branches keeps them,
  to explain a later restore of a newer checkpoint that the cut makes impossible).  Limit: a process that opened,
  appended to and closed such a file after a checkpoint the job ran on from (not a --kill
  one), holding it neither at the dump nor at the restore, leaves no trace to tell its bytes
  from the job's; they are cut with the job's.  And restoring one --kill checkpoint a second
  time, after a first restore of it ran on, keeps what that run wrote.

The job itself still running
----------------------------
The image records each process's start time (/proc/PID/stat field 22) and the boot id.  A
restore is refused, with or without --new-pidns, when a PID of the job is held by the very
process that was checkpointed (same boot, same start time), or when a process whose PID (in its
own PID namespace: a copy restored with --new-pidns) is one of the job's has one of the job's
written files open for writing: a restored copy of the job runs.  A second copy would write
the same files.  A PID held by any other process is PidTaken, for which --new-pidns is the way.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import fcntl
import logging
import os
import stat
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field

from incr.proto import image_pb2

from . import proc, pty
from . import ptrace as pt
from .errors import EngineError, JobStillRunning

log = logging.getLogger(__name__)

OpenFile = image_pb2.OpenFile
O_ACCMODE = 0o3
F_SETLEASE = 1024

Inode = tuple[int, int]                  # (st_dev, st_ino)


def writable(flags: int) -> bool:
    return flags & O_ACCMODE in (os.O_WRONLY, os.O_RDWR)


def _start_time(pid: int) -> int:
    """Clock ticks after boot at which process `pid` started; 0 when there is none or it exited (a
    zombie holds its PID, but runs no more: PidTaken, for which --new-pidns is right)."""
    try:
        st = proc.stat(pid)
    except EngineError:
        return 0
    return 0 if st.state in ("Z", "X") else st[22]


# ---------------------------------------------------------------- dump

@dataclass(frozen=True)
class OutsideFd:
    pid: int
    fd: int


class Survey:
    """The regular files processes outside `job` hold, from one scan of /proc made on first use."""

    def __init__(self, job: Collection[int], *, with_self: bool = False) -> None:
        """`with_self`: count incr's own process too (a restore's stdio may be the job's file)."""
        self.job = set(job) | (set() if with_self else {os.getpid()})
        self._by_inode: dict[Inode, list[OutsideFd]] | None = None

    def _index(self) -> dict[Inode, list[OutsideFd]]:
        if self._by_inode is None:
            self._by_inode = defaultdict(list)
            for pid in _all_pids(exclude=self.job):
                for fd, st in _regular_fds(pid):
                    self._by_inode[(st.st_dev, st.st_ino)].append(OutsideFd(pid, fd))
        return self._by_inode

    def holders(self, st: os.stat_result) -> list[OutsideFd]:
        return self._index().get((st.st_dev, st.st_ino), [])

    def note(self, pid: int, fd: int, st: os.stat_result, desc: image_pb2.OpenFile) -> None:
        """Record on `desc` (fd `fd` of job process `pid`) who outside the job shares or writes its file."""
        holders = self.holders(st)
        desc.shared_outside = any(_same_description(pid, fd, h) for h in holders)
        desc.other_writers.extend(sorted({proc.describe(h.pid) for h in holders if _writes(h)}))

    def writers(self, st: os.stat_result) -> list[OutsideFd]:
        return [h for h in self.holders(st) if _writes(h)]


def _all_pids(exclude: Collection[int]) -> list[int]:
    return [int(e) for e in os.listdir("/proc") if e.isdigit() and int(e) not in exclude]


def _regular_fds(pid: int) -> Iterable[tuple[int, os.stat_result]]:
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:                          # exited, a kernel thread, or not ours to read
        return
    for name in names:
        try:
            st = os.stat(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            yield int(name), st


def _same_description(pid: int, fd: int, other: OutsideFd) -> bool:
    try:
        return pt.kcmp_files(pid, fd, other.pid, other.fd) == 0
    except (OSError, EngineError):           # it exited or closed it: not shared any more
        return False


def _writes(h: OutsideFd) -> bool:
    try:
        return writable(int(proc.fdinfo(h.pid, h.fd)["flags"], 8))
    except (OSError, EngineError, KeyError):
        return False


# ---------------------------------------------------------------- restore

def with_original_stdio(tree: image_pb2.TreeImage) -> image_pb2.TreeImage:
    """`--stdio original`: a copy of `tree` whose stdio shared with the launcher reopens the files."""
    out = image_pb2.TreeImage()
    out.CopyFrom(tree)
    for p in out.processes:
        for f in p.files:
            if f.kind == OpenFile.INHERIT_STDIO and f.file.ino:      # a regular file (terminals have none)
                f.kind = OpenFile.REGULAR
    return out


def writers_now(path: str) -> list[str] | None:
    """Processes that have the file at `path` open for writing now: [] when none, None when the
    file cannot be opened.  Unnamed writers (out of sight of incr) are "a process"."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        try:
            fcntl.fcntl(fd, F_SETLEASE, fcntl.F_RDLCK)     # EAGAIN exactly when it is open for writing
            fcntl.fcntl(fd, F_SETLEASE, fcntl.F_UNLCK)
            return []
        except OSError as exc:
            lease_said_busy = exc.errno == errno.EAGAIN     # else leases do not work here: look
    finally:
        os.close(fd)
    names = sorted({proc.describe(h.pid) for h in Survey((), with_self=True).writers(st)})
    if not names and lease_said_busy:
        return ["a process incr cannot see"]
    return names


@dataclass
class Placement:
    """How a written regular file is reopened: extra open flags, and whether at its end."""

    extra_flags: int = 0
    at_end: bool = False


@dataclass
class _Decision:
    others: list[str]                    # why others write it ([]: the job alone)
    size: int                            # at the checkpoint
    done: bool = False                   # truncated or warned about already


@dataclass
class Resumption:
    """Per file the job writes, whether others write it too, decided once at the start of a restore
    (before any restored process holds it); prepare() then truncates or places each description."""

    decisions: dict[str, _Decision] = field(default_factory=dict)

    @classmethod
    def of(cls, files: Iterable[image_pb2.OpenFile], *, ended_job: bool = False) -> Resumption:
        written: dict[str, list[image_pb2.OpenFile]] = defaultdict(list)
        for f in files:
            if f.kind == OpenFile.REGULAR and writable(f.flags):
                written[f.path].append(f)
        out = cls()
        for path, descs in written.items():
            size = descs[0].file.size
            out.decisions[path] = _Decision(others=_others(path, descs, size, ended_job), size=size)
        return out

    def prepare(self, f: image_pb2.OpenFile) -> Placement:
        """Truncate `f`'s file back to its checkpoint size if the job alone writes it (once); else warn
        (once) and say where description `f` continues."""
        d = self.decisions.get(f.path)
        if d is None:
            d = self.decisions[f.path] = _Decision(others=[], size=f.file.size)
        if not d.others:
            if not d.done:
                d.done = True
                _truncate_back(f.path, d.size)
            return Placement()
        if not d.done:
            d.done = True
            log.warning("%s is written by others too (%s): not truncated; the job continues at its end",
                        f.path, "; ".join(d.others))
        if f.shared_outside:
            return Placement(extra_flags=os.O_APPEND, at_end=True)
        return Placement(at_end=f.pos >= f.file.size)


def _others(path: str, descs: list[image_pb2.OpenFile], size: int, ended_job: bool) -> list[str]:
    why = []
    if any(f.shared_outside for f in descs):
        why.append("its description was shared with a process outside the job")
    writers = sorted({w for f in descs for w in f.other_writers})
    if writers:
        why.append(f"open for writing in {', '.join(writers)} at the checkpoint")
    now = writers_now(path)
    if now:
        why.append(f"open for writing in {', '.join(now)} now")
    with contextlib.suppress(OSError):
        grown = os.stat(path).st_size - size
        if ended_job and grown > 0:
            why.append(f"{grown} bytes were added after the checkpoint that ended the job")
    return why


@dataclass(frozen=True)
class Cut:
    """A file a restore truncated back to its size at the checkpoint: from `before` to `after` bytes."""

    path: str
    before: int
    after: int


_recorder: contextvars.ContextVar[list[Cut] | None] = contextvars.ContextVar("cuts", default=None)


@contextlib.contextmanager
def recording_cuts() -> Iterator[list[Cut]]:
    """The files restores inside the block cut back, in the list it gives (filled as they are cut)."""
    cuts: list[Cut] = []
    token = _recorder.set(cuts)
    try:
        yield cuts
    finally:
        _recorder.reset(token)


def _truncate_back(path: str, size: int) -> None:
    now = os.stat(path).st_size
    if now > size:
        log.warning("restore cut %s back from %d to %d bytes (written after this checkpoint)", path, now, size)
        os.truncate(path, size)
        cuts = _recorder.get()
        if cuts is not None:
            cuts.append(Cut(path, now, size))


def refuse_if_running(tree: image_pb2.TreeImage) -> None:
    """Raise JobStillRunning when the checkpointed job itself, or a restored copy of it, runs."""
    same_boot = bool(tree.boot_id) and tree.boot_id == proc.boot_id()
    for p in tree.processes:
        if same_boot and p.start_time and _start_time(p.pid) == p.start_time:
            raise JobStillRunning(p.pid, proc.describe(p.pid), "is the very process that was checkpointed")
    job = {p.pid for p in tree.processes}
    for path in sorted({f.path for p in tree.processes for f in p.files
                        if f.kind in (OpenFile.REGULAR, OpenFile.INHERIT_STDIO) and f.file.ino
                        and writable(f.flags)}):
        copy = _copy_holding(path, job)
        if copy is not None:
            inner = _inner_pid(copy)
            where = "" if inner == copy else f" (PID {inner} in its PID namespace)"
            raise JobStillRunning(copy, proc.describe(copy), f"is a restored copy of it{where} and has {path} "
                                  "open for writing")


def _copy_holding(path: str, job: set[int]) -> int | None:
    """A process with one of the job's PIDs (in its own namespace) writing the file at `path`."""
    if not writers_now(path):
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    for h in Survey(()).writers(st):
        with contextlib.suppress(EngineError, KeyError, ValueError):
            if _inner_pid(h.pid) in job:
                return h.pid
    return None


def _inner_pid(pid: int) -> int:
    return proc.ns_ids(pid)[0]


def warn_lost_terminals(tree: image_pb2.TreeImage) -> None:
    """A controlling terminal is never given back: the restored tree never joins the caller's session."""
    own = {pty.device(t.index) for t in tree.ptys if t.session}
    had = [p for p in tree.processes if p.tty_nr and not p.zombie and p.tty_nr not in own]
    if had:
        p = had[0]
        log.warning("PID %d (%s) had a controlling terminal (device %d:%d); restored processes never get one "
                    "(a terminal on stdio stays usable, as this command's own)",
                    p.pid, p.comm, os.major(p.tty_nr), os.minor(p.tty_nr))
