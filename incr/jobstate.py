"""What incr keeps about a job between commands, outside the store, under
runtime_dir() (/run/incr; INCR_RUNTIME_DIR): one command at a time per job,
and the journal of what a command may leave inside the job.

* ``job-PID.lock``: an exclusive flock held by the command working on the
  job, from its first touch to its last; the kernel drops it when its holder
  dies, SIGKILL included (no stale lock to break).
* ``job-PID.json``: the journal (engine/leftovers.py): every leftover a
  command noted before acting and has not cleared since.  The next command
  sweeps them out of the job before anything else.

Both belong to the process, not to its PID: a record whose start time is
not the process's is another process's, and is ignored (then removed).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
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


def remove_records_of_gone_processes(keep: int) -> None:
    """Records of processes that no longer exist (any kind of record, any command's)."""
    for old in ensure_runtime_dir().glob("*-[0-9]*.*"):
        pid = old.stem.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != keep and not os.path.exists(f"/proc/{pid}"):
            with contextlib.suppress(OSError):
                old.unlink()


class JobLock:
    """One incr command at a time per job (see the module docstring)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        path = ensure_runtime_dir() / f"job-{pid}.lock"
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self.fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(self.fd)
            raise JobBusy(f"PID {pid} is being checkpointed by another incr command (PID {holder}); "
                          "wait for it to finish, then try again") from None
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
