"""Descriptor semantics a restored job can observe: status flags of every
descriptor, owners and signals of O_ASYNC descriptions, descriptor tables and
fs state shared between processes, reopened memfds, POSIX timers aimed at one
thread.  Each program checks itself after restore (tests/programs/selfcheck.h)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import selfcheck
from engine_tree import descendants

from conftest import Procs, incr, wait_until


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_status_flags_of_every_descriptor(cprog: Callable[..., Path], tmp_path: Path, store: Path,
                                          procs: Procs, mode: str) -> None:
    scratch = tmp_path / "files"
    scratch.mkdir()
    selfcheck.assert_passed(selfcheck.run(cprog("fdflags"), tmp_path, store, procs, mode, scratch))


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_reopened_files_are_the_same_file(cprog: Callable[..., Path], tmp_path: Path, store: Path,
                                          procs: Procs, mode: str) -> None:
    scratch = tmp_path / "files"
    scratch.mkdir()
    selfcheck.assert_passed(selfcheck.run(cprog("memfd_reopen"), tmp_path, store, procs, mode, scratch))


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_signal_driven_io_reaches_its_owner(cprog: Callable[..., Path], tmp_path: Path, store: Path,
                                            procs: Procs, mode: str) -> None:
    selfcheck.assert_passed(selfcheck.run(cprog("fown", "-pthread"), tmp_path, store, procs, mode))


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_shared_descriptor_tables_and_fs_stay_shared(cprog: Callable[..., Path], tmp_path: Path, store: Path,
                                                     procs: Procs, mode: str) -> None:
    scratch = tmp_path / "cwd"
    scratch.mkdir()
    selfcheck.assert_passed(selfcheck.run(cprog("fdshare", "-pthread"), tmp_path, store, procs, mode, scratch))


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_posix_timers_signal_their_thread(cprog: Callable[..., Path], tmp_path: Path, store: Path,
                                          procs: Procs, mode: str) -> None:
    selfcheck.assert_passed(selfcheck.run(cprog("timer_tid", "-pthread", "-lrt"), tmp_path, store, procs, mode))


REFUSED = {       # what fdrefuse.c sets up -> what the one line must say ({other}: the number it reports)
    "owner-outside": ("fd {other} (pipe:", "its owner (F_SETOWN) is process", "not a live process of the job"),
    "async-dup": ("fd 3 (pipe:", "O_ASYNC with F_SETSIG", "descriptors 3, {other}"),
    "stdio-async": ("fd 0 (pipe:", "signal-driven I/O", "stdio from the launcher"),
    "thread-files": ("thread {other}", "descriptor table of its own", "unshare(CLONE_FILES)"),
    "clone-vm": ("cannot checkpoint PID {other}: memory", "CLONE_VM", "not supported"),
    "sibling-files": ("descriptor table", "(CLONE_FILES) with PID {other}", "not with its parent"),
}


@pytest.mark.parametrize("kind", REFUSED)
def test_state_that_cannot_come_back_is_refused_in_one_line(cprog: Callable[..., Path], tmp_path: Path, store: Path,
                                                             procs: Procs, kind: str) -> None:
    ready = tmp_path / "ready"
    job = procs.start([cprog("fdrefuse", "-pthread"), kind, ready], stdin=subprocess.PIPE)
    wait_until(lambda: ready.exists() and ready.read_text().endswith("\n"), "the job to be ready")
    pid, other = (int(x) for x in ready.read_text().split())
    for p in descendants(pid):
        procs.track(p)
    res = incr(store, "checkpoint", pid, "--kill")
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 1 and len(lines) == 1, res.stderr
    assert f"PID {pid}" in lines[0] or f"PID {other}" in lines[0], lines[0]
    for needle in REFUSED[kind]:
        assert needle.format(other=other) in lines[0], (needle, lines[0])
    assert job.poll() is None, "the job runs on"


@pytest.mark.parametrize("program", [("fown", "-pthread"), ("fdshare", "-pthread"), ("timer_tid", "-pthread", "-lrt")],
                         ids=lambda p: p[0])
def test_owners_sharing_and_thread_timers_in_a_new_pid_namespace(cprog: Callable[..., Path], tmp_path: Path,
                                                                  store: Path, procs: Procs,
                                                                  program: tuple[str, ...]) -> None:
    """Owners are named by IDs: incr's view of them differs from the job's there."""
    scratch = tmp_path / "cwd"
    scratch.mkdir()
    args = (scratch,) if program[0] == "fdshare" else ()
    selfcheck.assert_passed(selfcheck.run(cprog(*program), tmp_path, store, procs, "kill", *args, new_pidns=True))


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_periodic_timers_with_their_signal_pending_keep_firing(cprog, tmp_path: Path, store: Path, procs: Procs,
                                                                mode: str) -> None:
    """An interval timer re-arms when its signal is dequeued: frozen with the signal pending, its time
    left reads 0.  Dropped as disarmed, the restored job got its last tick and then waited for ever."""
    selfcheck.assert_passed(selfcheck.run(cprog("timer_pending", "-lrt"), tmp_path, store, procs, mode))
