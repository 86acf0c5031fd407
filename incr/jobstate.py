"""What incr keeps about a job between commands, outside the store, under
runtime_dir() (/run/incr; INCR_RUNTIME_DIR): one command at a time per job,
and the journal of what a command may leave inside the job.

* ``job-PID.lock``: an exclusive flock held by the command working on the
  job, from its first touch to its last; the kernel drops it when its holder
  dies, SIGKILL included (no stale lock to break).
* ``job-PID.json``: the journal (engine/leftovers.py): every leftover a
  command noted before acting and has not cleared since.  The next command
  sweeps them out of the job before anything else.

* ``tracker-PID.json``: what a dirty-page tracker left in the job (incr/dirty.py).
* ``origin-PID.json``: the checkpoint a restored job was restored from (and its store): the
  parent of its first checkpoint, which has no tracker base to say so (record_origin).

All belong to the process, not to its PID: a record whose start time is
not the process's is another process's, and is ignored.  Every command
removes the records of processes that no longer exist (PID free, or taken by
a process with another start time), under the job's lock: never those of a
job a command is working on (remove_stale_records).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import time
from pathlib import Path

from incr.engine import leftovers, proc
from incr.engine.errors import EngineError, ProcessNotFound
from incr.engine.freeze import freeze
from incr.engine.leftovers import Leftover

log = logging.getLogger(__name__)


class JobBusy(EngineError):
    """Another incr command is working on the job right now."""


def runtime_dir() -> Path:
    return Path(os.environ.get("INCR_RUNTIME_DIR", "/run/incr"))


def start_time(pid: int) -> int:
    return proc.stat(pid)[22]


def write_durably(path: Path, text: str) -> None:
    """`text` as the whole of `path`, replaced atomically and fsynced (file, then directory)."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def ensure_runtime_dir() -> Path:
    d = runtime_dir()
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    return d


_RECORD = re.compile(r"\.?(tracker|job|origin)-([0-9]+)\.(json|lock)(\.tmp)?")
#: How long a command waits for a job lock held by a sweep (which holds it for a few unlinks).
SWEEP_WAIT = 2.0


def _record_pid(name: str) -> int:
    """The PID a runtime record is of (0: not a record: left alone)."""
    m = _RECORD.fullmatch(name)
    if m is None or (m.group(4) is not None) != name.startswith("."):
        return 0
    return int(m.group(2))


def _stale(path: Path, pid: int) -> bool:
    """Whether record `path` is of a process that no longer exists: its PID is free, or (for a record
    that names its start time) taken by another process.  In doubt (unreadable): not stale."""
    try:
        now = start_time(pid)
    except EngineError:
        return not os.path.exists(f"/proc/{pid}")
    if path.suffix != ".json":
        return False                         # a lock or a temporary: no start time in it
    try:
        recorded = json.loads(path.read_text())["start_time"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return bool(recorded != now)


def remove_stale_records(keep: int = 0) -> int:
    """Remove the records (tracker-PID.json, job-PID.json, job-PID.lock) of processes that no
    longer exist, but for PID `keep`; return how many.  Cheap (one listing of the runtime
    directory), so every command runs it.

    Never a record of a live process, never one of a job an incr command is working on: the
    records of a PID go only while this process holds that job's lock (JobLock), taken without
    waiting -- a held lock means a running command, and its records are left alone.  The lock file
    goes last, while still held: a command that opened it before the unlink finds, once it has the
    lock, that it locked a file no longer there, and takes the lock again (JobLock)."""
    try:
        names = os.listdir(runtime_dir())
    except OSError:
        return 0
    by_pid: dict[int, list[Path]] = {}
    for name in names:
        pid = _record_pid(name)
        if pid and pid != keep:
            by_pid.setdefault(pid, []).append(runtime_dir() / name)
    removed = 0
    for pid, paths in sorted(by_pid.items()):
        if any(_stale(p, pid) for p in paths):
            removed += _remove_under_lock(pid)
    return removed


def _remove_under_lock(pid: int) -> int:
    lock_path = runtime_dir() / f"job-{pid}.lock"
    created = False
    try:
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            created = True
    except OSError:
        return 0
    removed = 0
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0                         # a command is working on the job
        if not _locked_file_in_place(fd, lock_path):
            return 0                         # another sweep removed it meanwhile
        for name in (f"tracker-{pid}.json", f"job-{pid}.json", f"origin-{pid}.json", f".tracker-{pid}.json.tmp",
                     f".job-{pid}.json.tmp", f".origin-{pid}.json.tmp"):
            path = runtime_dir() / name
            if path.exists() and _stale(path, pid):     # looked at again: under the lock it cannot change
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed += 1
        if created or _stale(lock_path, pid):
            lock_path.unlink()
            if not created:
                removed += 1
    except OSError:
        pass
    finally:
        os.close(fd)
    if removed:
        log.info("removed %d records of PID %d, which no longer exists", removed, pid)
    return removed


def _locked_file_in_place(fd: int, path: Path) -> bool:
    """Whether the file `fd` locks is still the one at `path` (a sweep may have unlinked it)."""
    try:
        there = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (there.st_dev, there.st_ino) == (mine.st_dev, mine.st_ino)


def remove_records_of_gone_processes(keep: int) -> None:
    """Records of processes that no longer exist (any kind of record, any command's); the runtime
    directory exists afterwards (callers write their record next)."""
    ensure_runtime_dir()
    remove_stale_records(keep)


def record_origin(pid: int, store: Path, checkpoint_id: str) -> None:
    """Process `pid` was restored from `checkpoint_id` of `store` (see the module docstring)."""
    ensure_runtime_dir()
    record = {"start_time": start_time(pid), "store": str(store.resolve()), "checkpoint": checkpoint_id}
    write_durably(runtime_dir() / f"origin-{pid}.json", json.dumps(record))


def origin(pid: int, store: Path) -> str:
    """The checkpoint of `store` process `pid` was restored from ("": none, or not from this store)."""
    try:
        raw = json.loads((runtime_dir() / f"origin-{pid}.json").read_text())
        if raw["start_time"] != start_time(pid) or raw["store"] != str(store.resolve()):
            return ""
        return str(raw["checkpoint"])
    except (OSError, ValueError, KeyError, TypeError, EngineError):
        return ""


class JobLock:
    """One incr command at a time per job (see the module docstring)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        path = ensure_runtime_dir() / f"job-{pid}.lock"
        deadline = time.monotonic() + SWEEP_WAIT
        while True:
            self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(self.fd, 32, 0).decode("ascii", "replace").strip()
                os.close(self.fd)
                if not holder and time.monotonic() < deadline:
                    # A command that has the lock and writes its PID next, or a sweep of stale
                    # records (remove_stale_records), which writes none and lets go at once.
                    time.sleep(0.01)
                    continue
                raise JobBusy(f"PID {pid} is being checkpointed by another incr command (PID {holder or 'unknown'});"
                              " wait for it to finish, then try again") from None
            if _locked_file_in_place(self.fd, path):
                break
            os.close(self.fd)                # unlinked by a sweep while we waited for it: lock the new one
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class JobJournal:
    """The durable journal of one job's leftovers (engine.leftovers.Journal)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.path = ensure_runtime_dir() / f"job-{pid}.json"
        self.entries: list[Leftover] = self._load()

    def _load(self) -> list[Leftover]:
        try:
            raw = json.loads(self.path.read_text())
            if raw["start_time"] != start_time(self.pid):
                return []                       # another process's, that had this PID
            return [Leftover.from_dict(e) for e in raw["leftovers"]]
        except (OSError, ValueError, KeyError, TypeError, EngineError):
            return []

    def _save(self) -> None:
        if not self.entries:
            self.path.unlink(missing_ok=True)
            return
        write_durably(self.path, json.dumps({"start_time": start_time(self.pid),
                                             "leftovers": [e.as_dict() for e in self.entries]}))

    def note(self, leftover: Leftover) -> None:
        self.entries.append(leftover)
        self._save()

    def clear(self, leftover: Leftover) -> None:
        with contextlib.suppress(ValueError):
            self.entries.remove(leftover)
        self._save()

    def sweep(self) -> None:
        """Take out of the job what an earlier command noted and did not clear (it died), if it is
        still there; the job is frozen for it only when there is something to take out."""
        there = [e for e in self.entries if leftovers.still_there(e)]
        if there:
            try:
                with freeze(self.pid, for_dump=False) as frozen:
                    for e in there:
                        log.info("PID %d: taking out the %s an interrupted incr command left at %#x", self.pid,
                                 e.kind, e.at)
                        leftovers.undo(frozen.tracee(), e)
            except ProcessNotFound:
                pass
        self.entries = []
        self._save()

    def fds(self) -> set[int]:
        """Descriptors noted (not the job's own: a checkpoint skips them until swept)."""
        return {e.at for e in self.entries if e.kind == "fd" and leftovers.still_there(e)}


class Claims:
    """The processes of a job one command works on: each locked (JobLock) and its journal swept of
    what an interrupted command left, before anything else touches it.  A context manager: the
    locks go at its end."""

    def __init__(self) -> None:
        self.locks: dict[int, JobLock] = {}
        self.journals: dict[int, JobJournal] = {}

    def claim(self, pid: int) -> JobJournal:
        if pid not in self.locks:
            self.locks[pid] = JobLock(pid)
            journal = JobJournal(pid)
            journal.sweep()
            self.journals[pid] = journal
        return self.journals[pid]

    def release(self) -> None:
        for lock in self.locks.values():
            lock.release()
        self.locks.clear()

    def __enter__(self) -> Claims:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
