"""The benchmark workloads (benchmarks/workloads/): what each is, how to build and start one,
and how to read what it says of itself through its run directory.

Every workload is `PROG RUN_DIR SIZE_MIB SEED`, deterministic given SEED, and speaks the
protocol of benchmarks/workloads/wl.h in RUN_DIR: `ready` ("PID\\n" once its memory is
touched), `progress` (its iteration count, rewritten in place every 50 ms), `stalls` (one
line "END_EPOCH_S GAP_MS" each time its 1 ms probe thread slept over 2 ms: downtime as the
job saw it) and `check` -> `verdict` (it verifies its whole state against its own
bookkeeping and answers "ok ITERATIONS" or "bad WHAT").  A restore cuts `progress` and
`stalls` back to their size at the checkpoint: read the stalls of a run before restoring it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

SOURCE_DIR = Path(__file__).resolve().parents[2] / "benchmarks" / "workloads"
COMMON_HEADER = "wl.h"
PROTOCOL_FILES = ("ready", "ready.tmp", "progress", "stalls", "check", "verdict", "verdict.tmp")
POLL_S = 0.005


class WorkloadFailed(Exception):
    """A workload could not be built or started, died, or found its own state wrong (one line)."""


@dataclass(frozen=True)
class Workload:
    """One of benchmarks/workloads/: `command()` gives the argv that runs it."""

    name: str
    summary: str
    sparse: bool                 # dirties a small fraction per second: incremental checkpoints much smaller than full
    source: str                  # its file in benchmarks/workloads/
    cflags: tuple[str, ...] = ()

    def command(self, build_dir: Path, run_dir: Path, size_mib: int, seed: int) -> list[str]:
        """The argv that runs this workload (a C one is compiled into `build_dir` first, when its source changed)."""
        source = SOURCE_DIR / self.source
        if not source.exists():
            raise WorkloadFailed(f"workload {self.name}: {source} is missing (incr bench runs from a source checkout)")
        args = [str(run_dir), str(size_mib), str(seed)]
        if source.suffix == ".py":
            return [sys.executable, str(source), *args]
        return [str(self._build(source, build_dir)), *args]

    def _build(self, source: Path, build_dir: Path) -> Path:
        exe = build_dir / self.name
        newest_input = max(source.stat().st_mtime_ns, (SOURCE_DIR / COMMON_HEADER).stat().st_mtime_ns)
        if exe.exists() and exe.stat().st_mtime_ns >= newest_input:
            return exe
        if shutil.which("gcc") is None:
            raise WorkloadFailed(f"workload {self.name}: gcc is needed to build {source.name}")
        build_dir.mkdir(parents=True, exist_ok=True)
        tmp = build_dir / f".{self.name}.{os.getpid()}.tmp"      # renamed into place: concurrent builds never clash
        res = subprocess.run(["gcc", "-O2", "-Wall", "-ffp-contract=off", "-pthread", *self.cflags, "-o", str(tmp),
                              str(source), "-lm"], capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if res.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise WorkloadFailed(f"workload {self.name}: gcc failed: {_tail(res.stderr)}")
        tmp.replace(exe)
        return exe


WORKLOADS: dict[str, Workload] = {w.name: w for w in (
    Workload("sparse", "rewrites ~1 % of its pages per second at random (HPC-like data: smooth, noisy, int64)",
             True, "sparse.c"),
    Workload("stencil", "2-D five-point stencil on a window of 1/8 of the grid that crosses it in about a minute",
             True, "stencil.c"),
    Workload("hotloop", "rewrites every page continuously: pre-copy cannot help", False, "hotloop.c"),
    Workload("zeros", "mostly-zero memory: every 32nd page data, 0.2 % of the pages rewritten per second",
             True, "zeros.c"),
    Workload("numpy", "Jacobi solver in NumPy, the whole grid every sweep (Python probe thread: GIL)",
             False, "numpy_jacobi.py"),
    Workload("openmp", "Jacobi solver on 2 OpenMP threads, the whole grid every sweep", False, "openmp.c",
             ("-fopenmp",)),
    Workload("noisy", "incompressible noisy float64, 2 % of the pages rewritten per second", True, "noisy.c"),
    Workload("shm", "parent and 2 children sharing a MAP_SHARED|MAP_ANONYMOUS region, each with private memory",
             True, "shm.c"),
)}


@dataclass(frozen=True)
class _Proc:
    """A process as /proc shows it: its PID with its start time, so that a reused PID is not mistaken for it."""

    pid: int
    start: int

    @classmethod
    def of(cls, pid: int) -> _Proc | None:
        stat = _stat_fields(pid)
        return None if stat is None else cls(pid, int(stat[19]))

    def gone(self) -> bool:
        stat = _stat_fields(self.pid)
        return stat is None or int(stat[19]) != self.start


class Running:
    """A started workload: its root PID (from `ready`), its run directory, and what it reports there."""

    def __init__(self, workload: Workload, run_dir: Path, popen: subprocess.Popen[bytes], log: Path, pid: int) -> None:
        self.workload = workload
        self.run_dir = run_dir
        self.pid = pid
        self.log = log                   # the started command's stdout and stderr
        self._popen = popen

    @classmethod
    def start(cls, workload: Workload, build_dir: Path, run_dir: Path, size_mib: int, seed: int, *,
              prefix: Sequence[str] = (), env: Mapping[str, str] | None = None, timeout: float = 120) -> Running:
        """Starts `prefix + argv` in a session of its own and waits until the job is ready.  `env`
        adds to (or overrides) our environment.  Its output goes to RUN_DIR.log, beside RUN_DIR:
        the job keeps no descriptor on RUN_DIR files but `progress` and `stalls`."""
        argv = [*prefix, *workload.command(build_dir, run_dir, size_mib, seed)]
        run_dir.mkdir(parents=True, exist_ok=True)
        for name in PROTOCOL_FILES:
            (run_dir / name).unlink(missing_ok=True)
        log = run_dir.with_name(run_dir.name + ".log")
        log.unlink(missing_ok=True)
        full_env = {**os.environ, **(env or {})}
        # O_APPEND: CRIU checks the size of every other regular file a job holds at restore (a log grows).
        with open(log, "ab") as out:
            popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=full_env,
                                     start_new_session=True, close_fds=True)
        try:
            pid = _wait_ready(workload, run_dir, popen, log, timeout)
        except BaseException:
            _kill_group(popen)
            raise
        return cls(workload, run_dir, popen, log, pid)

    @property
    def started_pid(self) -> int:
        """The host PID of what start() ran: the job's root under a launcher that execs it
        (dmtcp_launch), where `pid` is what the job itself sees (DMTCP virtualizes PIDs)."""
        return self._popen.pid

    def iterations(self) -> int:
        return self._progress()[0]

    def rate(self, seconds: float) -> float:
        """Iterations per second over about `seconds`, timed by the progress file's own writes."""
        n0, t0 = self._progress()
        time.sleep(seconds)
        n1, t1 = self._progress()
        return 0.0 if t1 <= t0 else (n1 - n0) / ((t1 - t0) * 1e-9)

    def stalls(self, since: float, until: float) -> list[float]:
        """The gaps (ms) the job's probe saw that overlap [since, until] (epoch seconds)."""
        try:
            text = (self.run_dir / "stalls").read_text(encoding="ascii", errors="replace")
        except FileNotFoundError:
            return []
        gaps: list[float] = []
        for line in text.splitlines(keepends=True):
            fields = line.split()
            if not line.endswith("\n") or len(fields) != 2:
                continue
            try:
                end, gap_ms = float(fields[0]), float(fields[1])
            except ValueError:
                continue
            if end >= since and end - gap_ms / 1e3 <= until:
                gaps.append(gap_ms)
        return gaps

    def check(self, timeout: float = 60) -> int:
        """Asks the job to verify its whole state; its iteration count when it is right."""
        verdict, request = self.run_dir / "verdict", self.run_dir / "check"
        verdict.unlink(missing_ok=True)
        request.touch()
        deadline = time.monotonic() + timeout
        while (text := _complete_line(verdict)) is None:
            if not _alive(self.pid):
                raise WorkloadFailed(f"workload {self.workload.name}: PID {self.pid} ended before its self-check "
                                     f"answered")
            if time.monotonic() > deadline:
                request.unlink(missing_ok=True)
                raise WorkloadFailed(f"workload {self.workload.name} (PID {self.pid}): no answer to its self-check "
                                     f"in {timeout:g} s")
            time.sleep(POLL_S)
        word, _, rest = text.strip().partition(" ")
        if word == "ok" and rest.isdigit():
            return int(rest)
        if word == "bad":
            raise WorkloadFailed(f"workload {self.workload.name} (PID {self.pid}): self-check failed: {rest}")
        raise WorkloadFailed(f"workload {self.workload.name} (PID {self.pid}): unreadable verdict {text.strip()!r}")

    def adopt(self, pid: int) -> None:
        """After a restore: the job's root is now host PID `pid` (incr keeps the PID, DMTCP does not).
        Until the restored job rewrites `progress` (within 50 ms) it shows the count of before the kill."""
        self.pid = pid

    def stop(self, timeout: float = 30) -> None:
        """SIGKILLs the job's whole tree (and what we started, if it still runs), reaps what is
        ours, and returns once every one of those PIDs is gone."""
        roots = [self.pid]
        if self._popen.returncode is None:
            roots.append(self._popen.pid)
        procs = {p for p in (_Proc.of(pid) for pid in _tree(roots)) if p is not None}
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGKILL)
        _kill_group(self._popen)
        deadline = time.monotonic() + timeout
        while live := [p for p in procs if not p.gone()]:
            for p in live:               # ours when we started it, or when we are the subreaper it came to
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(p.pid, os.WNOHANG)
            if time.monotonic() > deadline:
                raise WorkloadFailed(f"workload {self.workload.name}: PIDs {sorted(p.pid for p in live)} still "
                                     f"there {timeout:g} s after SIGKILL")
            time.sleep(POLL_S)

    def _progress(self) -> tuple[int, int]:
        """(iterations, mtime in ns of the write that put them there)."""
        path = self.run_dir / "progress"
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise WorkloadFailed(f"workload {self.workload.name}: no progress file {path}") from None
        try:
            for _ in range(100):         # a read racing the job's rewrite: read again
                before = os.fstat(fd).st_mtime_ns
                data = os.pread(fd, 64, 0)
                if os.fstat(fd).st_mtime_ns == before and len(data) == 21 and data[:20].isdigit():
                    return int(data), before
                time.sleep(0.001)
        finally:
            os.close(fd)
        raise WorkloadFailed(f"workload {self.workload.name}: unreadable progress file {path}")


def _wait_ready(workload: Workload, run_dir: Path, popen: subprocess.Popen[bytes], log: Path, timeout: float) -> int:
    ready = run_dir / "ready"
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(FileNotFoundError):
            text = ready.read_text(encoding="ascii", errors="replace")
            if text.endswith("\n") and text.strip().isdigit():
                return int(text)
        status = popen.poll()
        if status is not None:
            raise WorkloadFailed(f"workload {workload.name} exited ({_status(status)}) before it was ready: "
                                 f"{_tail(_read_tail(log))}")
        if time.monotonic() > deadline:
            raise WorkloadFailed(f"workload {workload.name} not ready after {timeout:g} s: {_tail(_read_tail(log))}")
        time.sleep(POLL_S)


def _kill_group(popen: subprocess.Popen[bytes]) -> None:
    """The started command is a session (and group) leader of its own: its group goes with it."""
    if popen.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(popen.pid, signal.SIGKILL)
        popen.wait()


def _tree(roots: Sequence[int]) -> list[int]:
    """The roots and every process below them, as /proc shows them now."""
    out = list(dict.fromkeys(roots))
    for pid in out:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except FileNotFoundError:
            continue
        for tid in tids:
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                out.extend(c for c in map(int, Path(f"/proc/{pid}/task/{tid}/children").read_text().split())
                           if c not in out)
    return out


def _complete_line(path: Path) -> str | None:
    """The file's text once it holds a whole line (the job renames it into place, whole)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    return text if text.endswith("\n") else None


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat after the command name: [state, ppid, ...] (field 3 onwards)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text.rsplit(")", 1)[1].split()


def _alive(pid: int) -> bool:
    stat = _stat_fields(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def _status(returncode: int) -> str:
    return f"signal {-returncode}" if returncode < 0 else f"status {returncode}"


def _read_tail(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 2000))
            return f.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


def _tail(text: str, limit: int = 300) -> str:
    """The last lines of some output, on one line."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    joined = " | ".join(lines[-3:]) or "(no output)"
    return joined if len(joined) <= limit else "..." + joined[-limit:]
