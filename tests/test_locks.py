"""File locks, leases, directory notifications and socket pair credentials across a
checkpoint and a restore (engine/locks.py, engine/unixsock.py): each comes back with
the same semantics, or the checkpoint (or the restore, for what others hold now)
refuses in one line.  Each program checks itself after restore (tests/programs/selfcheck.h)."""

from __future__ import annotations

import fcntl
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import selfcheck
from engine_tree import descendants

from conftest import Procs, incr, ok, reap_orphans, wait_exit, wait_until


def start_tree(exe: Path, tmp_path: Path, procs: Procs, *args: object) -> tuple[int, list[int], Path, Path]:
    pid, _, out, go = selfcheck.start(exe, tmp_path, procs, *args)
    tree = descendants(pid)
    for p in tree:
        procs.track(p)
    return pid, tree, out, go


def wait_gone(tree: list[int], what: str) -> None:
    def all_gone() -> bool:
        reap_orphans()
        return not any(os.path.exists(f"/proc/{p}") for p in tree)

    wait_until(all_gone, what)


def dump_tree(store: Path, pid: int, tree: list[int], mode: str) -> None:
    selfcheck.dump(store, pid, mode)
    wait_gone(tree, "the checkpointed tree to be gone")


def scratch_dir(tmp_path: Path) -> Path:
    d = tmp_path / "files"
    d.mkdir()
    return d


def refused(res: subprocess.CompletedProcess[str], *words: str) -> str:
    """The one-line refusal `res` printed, which names each of `words`."""
    assert res.returncode == 1, (res.returncode, res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_flock_posix_and_ofd_locks_come_back_where_they_were(cprog: Callable[..., Path], tmp_path: Path,
                                                             store: Path, procs: Procs, mode: str) -> None:
    selfcheck.assert_passed(selfcheck.run(cprog("locks"), tmp_path, store, procs, mode, scratch_dir(tmp_path)))


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_a_lock_taken_by_another_process_meanwhile_refuses_the_restore(cprog: Callable[..., Path], tmp_path: Path,
                                                                       store: Path, procs: Procs, mode: str) -> None:
    files = scratch_dir(tmp_path)
    pid, tree, out, go = start_tree(cprog("locks"), tmp_path, procs, files)
    dump_tree(store, pid, tree, mode)
    before = {p.name: p.stat() for p in files.iterdir()}
    for name, take in (("flock", lambda fd: fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)),
                       ("posix", lambda fd: fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB, 1, 15))):
        fd = os.open(files / name, os.O_RDWR)
        try:
            take(fd)                             # an outsider's: a shared flock, a POSIX read lock on byte 15
            line = refused(incr(store, "restore", "--detach", timeout=selfcheck.TIMEOUT),
                           f"PID {pid}", str(files / name), "taken")
            assert str(os.getpid()) in line, line                  # who holds it
            assert not any(os.path.exists(f"/proc/{p}") for p in tree), "a refused restore left a process"
            assert {p.name: p.stat() for p in files.iterdir()} == before, "a refused restore touched the files"
        finally:
            os.close(fd)
    selfcheck.assert_passed(selfcheck.restore_and_check(store, procs, out, go))


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_leases_come_back_and_still_break(cprog: Callable[..., Path], tmp_path: Path, store: Path, procs: Procs,
                                          mode: str) -> None:
    selfcheck.assert_passed(selfcheck.run(cprog("lease"), tmp_path, store, procs, mode, scratch_dir(tmp_path)))


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_a_lease_whose_file_is_open_for_writing_meanwhile_refuses_the_restore(cprog: Callable[..., Path],
                                                                              tmp_path: Path, store: Path,
                                                                              procs: Procs, mode: str) -> None:
    files = scratch_dir(tmp_path)
    pid, tree, out, go = start_tree(cprog("lease"), tmp_path, procs, files)
    dump_tree(store, pid, tree, mode)
    fd = os.open(files / "rd", os.O_WRONLY)
    try:
        refused(incr(store, "restore", "--detach", timeout=selfcheck.TIMEOUT), f"PID {pid}", "read lease",
                str(files / "rd"), "open for writing")
        wait_gone(tree, "the half-restored tree to be gone")      # (refused late: its stubs were killed)
    finally:
        os.close(fd)
    selfcheck.assert_passed(selfcheck.restore_and_check(store, procs, out, go))


def refuse_checkpoint(store: Path, pid: int, mode: str) -> subprocess.CompletedProcess[str]:
    """The checkpoint of `mode` (a refused one never kills the job)."""
    if mode == "kill":
        return incr(store, "checkpoint", pid, "--kill", timeout=selfcheck.TIMEOUT)
    ok(incr(store, "predump", pid, timeout=selfcheck.TIMEOUT))
    return incr(store, "checkpoint", pid, timeout=selfcheck.TIMEOUT)


def assert_unharmed(pid: int, out: Path, go: Path) -> None:
    """The job still runs after the refusal, and all its own checks pass."""
    assert os.path.exists(f"/proc/{pid}"), "a refused checkpoint ended the job"
    go.touch()
    status = wait_exit(pid, timeout=selfcheck.TIMEOUT)
    selfcheck.assert_passed(selfcheck.Outcome(pid=pid, status=status, lines=out.read_text().splitlines()))


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_a_lease_being_broken_is_refused(cprog: Callable[..., Path], tmp_path: Path, store: Path, procs: Procs,
                                        mode: str) -> None:
    files = scratch_dir(tmp_path)
    pid, _, out, go = selfcheck.start(cprog("lease"), tmp_path, procs, files, "breaking")
    refused(refuse_checkpoint(store, pid, mode), f"PID {pid}", str(files / "wr"), "lease being broken")
    assert_unharmed(pid, out, go)


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_dnotify_is_refused(cprog: Callable[..., Path], tmp_path: Path, store: Path, procs: Procs, mode: str) -> None:
    files = scratch_dir(tmp_path)
    pid, _, out, go = selfcheck.start(cprog("dnotify"), tmp_path, procs, files)
    refused(refuse_checkpoint(store, pid, mode), f"PID {pid}", f"fd 3 ({files})", "dnotify")
    assert_unharmed(pid, out, go)


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_socket_pairs_keep_their_creators_credentials(cprog: Callable[..., Path], tmp_path: Path, store: Path,
                                                     procs: Procs, mode: str) -> None:
    selfcheck.assert_passed(selfcheck.run(cprog("peercred"), tmp_path, store, procs, mode))


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_a_socket_pair_made_by_a_zombie_is_refused(cprog: Callable[..., Path], tmp_path: Path, store: Path,
                                                   procs: Procs, mode: str) -> None:
    pid, _, out, go = selfcheck.start(cprog("peercred"), tmp_path, procs, "zombie")
    refused(refuse_checkpoint(store, pid, mode), f"PID {pid}", "socket:[", "zombie")
    assert_unharmed(pid, out, go)


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_a_posix_lock_of_an_exited_process_sharing_the_table_is_refused(cprog: Callable[..., Path], tmp_path: Path,
                                                                        store: Path, procs: Procs,
                                                                        mode: str) -> None:
    files = scratch_dir(tmp_path)
    pid, _, out, go = selfcheck.start(cprog("locks"), tmp_path, procs, files, "exited")
    refused(refuse_checkpoint(store, pid, mode), f"PID {pid}", str(files / "ghost"), "POSIX", "has exited")
    assert_unharmed(pid, out, go)



def test_socket_pairs_of_exited_creators_in_a_new_pid_namespace(cprog: Callable[..., Path], tmp_path: Path,
                                                                store: Path, procs: Procs) -> None:
    """The helper that makes a socket pair with the PID of a process that has exited is born in the
    restored job's namespace, where that PID is its own."""
    selfcheck.assert_passed(selfcheck.run(cprog("peercred"), tmp_path, store, procs, "kill", new_pidns=True))
