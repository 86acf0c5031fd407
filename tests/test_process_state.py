"""Per-process and per-thread kernel state that a restored job must find as it
left it: parent-death signals, the child-subreaper flag, membarrier
registrations, the dumpable flag, and the signal that stopped a stopped process.
Each program checks itself after restore (tests/programs/selfcheck.h)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import selfcheck
from test_errors import assert_one_line_error

from conftest import Procs, incr, ok, wait_exit, wait_until

NOBODY = 65534


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_parent_death_signals(cprog, tmp_path: Path, store: Path, procs: Procs, mode: str) -> None:
    out = selfcheck.run(cprog("pdeathsig", "-pthread"), tmp_path, store, procs, mode)
    selfcheck.assert_passed(out)


def test_parent_death_signal_of_a_child_of_a_second_thread_is_refused(cprog, tmp_path: Path, store: Path,
                                                                      procs: Procs) -> None:
    """Restored, the child would be its parent's main thread's: its signal would come at another time."""
    pid, _, _, _ = selfcheck.start(cprog("pdeathsig", "-pthread"), tmp_path, procs, "thread-parent")
    child = selfcheck.children(pid)[0]
    res = incr(store, "checkpoint", pid, timeout=selfcheck.TIMEOUT)
    assert_one_line_error(res, 1, f"PID {child}", "parent-death signal")
    assert os.path.exists(f"/proc/{pid}") and os.path.exists(f"/proc/{child}")


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_child_subreaper(cprog, tmp_path: Path, store: Path, procs: Procs, mode: str) -> None:
    selfcheck.assert_passed(selfcheck.run(cprog("subreaper"), tmp_path, store, procs, mode))


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_membarrier_registrations(cprog, tmp_path: Path, store: Path, procs: Procs, mode: str) -> None:
    selfcheck.assert_passed(selfcheck.run(cprog("membarrier"), tmp_path, store, procs, mode))


@pytest.fixture
def world_dir() -> Iterator[Path]:
    """A directory a job running as nobody can use for its OUT, READY and GO (pytest's are 0700)."""
    d = Path(tempfile.mkdtemp(prefix="incr-test-"))
    try:
        d.chmod(0o777)
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("user,dumpable", [(NOBODY, 1), (0, 0)], ids=["nobody-dumpable", "root-nondumpable"])
@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_dumpable_flag(cprog, world_dir: Path, store: Path, procs: Procs, mode: str, user: int,
                       dumpable: int) -> None:
    """A job of an unprivileged user restored by root stays dumpable (its /proc/PID stays its user's);
    a job that made itself non-dumpable stays non-dumpable."""
    exe = world_dir / "dumpable"
    shutil.copy(cprog("dumpable"), exe)
    exe.chmod(0o755)
    out = selfcheck.run(exe, world_dir, store, procs, mode, dumpable, cwd=world_dir, user=user, group=user,
                        extra_groups=[])
    selfcheck.assert_passed(out)


# Stopped processes.  SIGTSTP stops a process only when its process group is not
# orphaned (some member has a parent in another group of the same session).

def _state(pid: int) -> str:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        return next(line.split(":", 1)[1].strip() for line in f if line.startswith("State:"))


def _stop(pid: int, sig: int = signal.SIGTSTP) -> None:
    os.kill(pid, sig)
    wait_until(lambda: _state(pid).startswith("T"), f"PID {pid} to stop")


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_stopped_child_keeps_its_stop_signal(cprog, tmp_path: Path, store: Path, procs: Procs, mode: str) -> None:
    """The job's root is the stopped child's parent: it checks the stop after restore, then continues it."""
    pid, job, out, go = selfcheck.start(cprog("stopsig", "-pthread"), tmp_path, procs, "child")
    tree = selfcheck.job_pids(pid)
    _stop(tree[1])
    selfcheck.dump(store, pid, mode)
    for p in tree:
        selfcheck.wait_gone(p, job)
    selfcheck.assert_passed(selfcheck.restore_and_check(store, procs, out, go))


def _check_stopped_by_tstp(pid: int) -> None:
    """As the restored root's parent (subreaper of the detached restore): its stop, then SIGCONT."""
    assert _state(pid) == "T (stopped)"
    got, status = os.waitpid(pid, os.WUNTRACED | os.WNOHANG)
    assert got == pid and os.WIFSTOPPED(status), (got, status)
    assert os.WSTOPSIG(status) == signal.SIGTSTP, signal.Signals(os.WSTOPSIG(status)).name
    os.kill(pid, signal.SIGCONT)
    got, status = os.waitpid(pid, os.WCONTINUED)
    assert got == pid and os.WIFCONTINUED(status), (got, status)


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_stopped_root_keeps_its_stop_signal(cprog, tmp_path: Path, store: Path, procs: Procs, mode: str) -> None:
    """A job stopped as a shell's ^Z stops it: the root in a group of its own, its session's leader outside."""
    pid, job, out, go = selfcheck.start(cprog("stopsig", "-pthread"), tmp_path, procs, "root")
    _stop(pid)
    selfcheck.dump(store, pid, mode)
    selfcheck.wait_gone(pid, job)
    selfcheck.assert_passed(selfcheck.restore_and_check(store, procs, out, go, before_go=_check_stopped_by_tstp))


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_stopped_root_in_an_orphaned_group_keeps_its_stop_signal(cprog, tmp_path: Path, store: Path, procs: Procs,
                                                                 mode: str) -> None:
    """Restored from a session of its own, the root's process group is orphaned, where the kernel
    discards SIGTSTP: the stop must come back all the same."""
    pid, job, out, go = selfcheck.start(cprog("stopsig", "-pthread"), tmp_path, procs, "root-shared")
    _stop(pid)
    selfcheck.dump(store, pid, mode)
    selfcheck.wait_gone(pid, job)
    res = subprocess.run([sys.executable, "-m", "incr", "--store", str(store), "restore", "--detach"],
                         capture_output=True, text=True, timeout=selfcheck.TIMEOUT, stdin=subprocess.DEVNULL,
                         start_new_session=True)
    ok(res)
    restored = procs.track(int(res.stdout.split()[-1]))
    _check_stopped_by_tstp(restored)
    go.touch()
    status = wait_exit(restored, timeout=selfcheck.TIMEOUT)
    selfcheck.assert_passed(selfcheck.Outcome(pid=restored, status=status, lines=out.read_text().splitlines()))
