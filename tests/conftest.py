"""Fixtures shared by the suite: C programs compiled on demand, processes that
are always ended by PID, and the `incr` command line run as a subprocess."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from engine_tree import descendants

# A suite started in the background of a non-interactive shell (`make test &`, as a CI runner may)
# inherits SIGINT ignored, and so would every incr it starts, which then rightly ignores Ctrl-C:
# the Ctrl-C tests need a process that hears it, as one typed at a terminal does.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

PROGRAMS = Path(__file__).parent / "programs"
PR_SET_CHILD_SUBREAPER = 36


@pytest.fixture(scope="session", autouse=True)
def subreaper() -> None:
    """Jobs restored with --detach are orphaned when incr exits; they come to us, to be reaped."""
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


@pytest.fixture(autouse=True)
def runtime_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Trackers' state files go to the test's own directory, not /run/incr."""
    monkeypatch.setenv("INCR_RUNTIME_DIR", str(tmp_path / "incr-runtime"))


@pytest.fixture(scope="session")
def cprog(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """cprog("job") -> path of tests/programs/job.c compiled with gcc (also "conformance/prog")."""
    if shutil.which("gcc") is None:
        pytest.fail("gcc is required (make test installs it)")
    outdir = tmp_path_factory.mktemp("bin")
    built: dict[tuple[str, tuple[str, ...]], Path] = {}

    def build(name: str, *flags: str) -> Path:
        key = (name, flags)
        if key not in built:
            exe = outdir / (name.replace("/", "_") + "".join(f.replace("-", "_") for f in flags))
            subprocess.run(["gcc", "-O2", "-Wall", "-o", str(exe), str(PROGRAMS / f"{name}.c"), *flags],
                           check=True)
            built[key] = exe
        return built[key]

    return build


class Procs:
    """Every process a test starts or restores; all are SIGKILLed and reaped at teardown."""

    def __init__(self) -> None:
        self.pids: list[int] = []
        self.popens: list[subprocess.Popen[bytes]] = []

    def start(self, argv: list[str | Path], **kw: object) -> subprocess.Popen[bytes]:
        # Not pytest's capture files: those are unlinked, which a checkpoint refuses.
        for stream in ("stdin", "stdout", "stderr"):
            kw.setdefault(stream, subprocess.DEVNULL)
        p = subprocess.Popen([str(a) for a in argv], start_new_session=True, **kw)  # type: ignore[call-overload]
        self.popens.append(p)
        self.pids.append(p.pid)
        return p

    def track(self, pid: int) -> int:
        self.pids.append(pid)
        return pid

    def cleanup(self) -> None:
        for pid in reversed(self.pids):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for p in self.popens:       # each started in a session of its own: its children are in its group
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGKILL)
        for p in self.popens:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=10)
        reap_orphans()


def reap_orphans() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


@pytest.fixture
def procs() -> Iterator[Procs]:
    p = Procs()
    try:
        yield p
    finally:
        p.cleanup()


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store"


def incr(store: Path | None, *args: str | int | Path, env: dict[str, str] | None = None,
         timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the incr command line; never raises for a non-zero exit."""
    argv = [sys.executable, "-m", "incr"]
    if store is not None:
        argv += ["--store", str(store)]
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(argv + [str(a) for a in args], capture_output=True, text=True, env=full_env,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def run_killed(store: Path, args: tuple[str, ...], pid: int, delay: float) -> subprocess.CompletedProcess[str]:
    """The command, SIGKILLed `delay` seconds after it started (unless it ended first)."""
    p = subprocess.Popen([sys.executable, "-m", "incr", "--store", str(store), *args, str(pid), "--json"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    p.send_signal(signal.SIGKILL)
    out, err = p.communicate()
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, f"incr failed ({result.returncode}): {result.stderr}"
    return result


def verify_here(store: Path) -> str:
    """What `incr verify --read-data` finds wrong with `store` ("" when all is well), checked in
    this process: the soaks run it after every trial, and a Python start is most of its cost."""
    from incr import maintenance
    report = maintenance.verify(store, read_data=1.0)
    return "" if report.ok else "\n".join(report.problems()) or "not ok"


def listed_here(store: Path) -> list[str]:
    """The ids `incr list` shows, oldest first, read in this process."""
    from incr import api
    return [c.id for c in api.Store(store).checkpoints()]


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 60) -> None:
    """Poll a condition on files or /proc; fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.005)


def line_count(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def read_pid(path: Path) -> int:
    wait_until(lambda: path.exists() and path.read_text().endswith("\n"), f"{path} to be written")
    return int(path.read_text())


def kill_and_wait_gone(pid: int) -> None:
    """SIGKILL a job and wait until its PID is free again (reaped by its parent)."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    reap_orphans()
    wait_until(lambda: not os.path.exists(f"/proc/{pid}") or _zombie_reaped(pid), f"PID {pid} to be gone")


def checkpoint_then_kill(store: Path, job: subprocess.Popen[bytes], procs: Procs, dump: str) -> list[int]:
    """Checkpoint running `job` with --kill ("incremental": after a predump and a checkpoint) and
    wait until every process of its tree is gone; returns that tree (root first)."""
    tree = [job.pid, *descendants(job.pid)]
    for pid in tree:
        procs.track(pid)
    if dump == "incremental":
        ok(incr(store, "predump", job.pid))
        ok(incr(store, "checkpoint", job.pid))
    ok(incr(store, "checkpoint", job.pid, "--kill"))
    job.wait()

    def gone() -> bool:
        reap_orphans()
        return not any(os.path.exists(f"/proc/{pid}") for pid in tree)

    wait_until(gone, "the killed job's processes to be gone")
    return tree


def _zombie_reaped(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    return not os.path.exists(f"/proc/{pid}")


def wait_exit(pid: int, timeout: float = 60) -> int:
    """Wait status of a child (or adopted orphan) `pid`; fails the test rather than hang."""
    status: list[int] = []

    def reaped() -> bool:
        got, st = os.waitpid(pid, os.WNOHANG)
        if got == pid:
            status.append(st)
        return bool(status)

    wait_until(reaped, f"PID {pid} to exit", timeout)
    return status[0]
