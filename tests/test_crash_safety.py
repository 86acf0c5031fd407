"""`incr checkpoint` killed at any point leaves only complete checkpoints, the
job alive and untraced, and the newest complete checkpoint restorable; killed
inside any syscall it injected into the job, the job runs on unharmed;
`incr restore` killed half-way leaves no process behind."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import selfcheck
from test_checkpoint_restore import reference_output, start_job_at_first_gate

from conftest import Procs, incr, kill_and_wait_gone, ok, reap_orphans, wait_exit, wait_until
from incr.faults import INJECTION_POINTS, POINTS, RESTORE_POINTS


def test_checkpoint_killed_at_every_point(cprog, tmp_path: Path, store: Path, procs: Procs) -> None:
    exe = cprog("job")
    expected = reference_output(exe, tmp_path, procs)
    d, job = start_job_at_first_gate(exe, tmp_path, procs)
    first = json.loads(ok(incr(store, "checkpoint", job.pid, "--json")).stdout)

    for point in POINTS:
        res = incr(store, "checkpoint", job.pid, env={"INCR_FAULT": point})
        assert res.returncode == -9, (point, res.returncode, res.stderr)
        assert job.poll() is None, f"the job died when incr was killed at {point!r}"
        status = Path(f"/proc/{job.pid}/status").read_text()
        assert "TracerPid:\t0" in status, (point, status)
        assert "State:\tt" not in status and "State:\tT" not in status, (point, status)
        listed = json.loads(ok(incr(store, "list", "--json")).stdout)
        assert [c["id"] for c in listed] == [first["id"]], point
        checked = incr(store, "verify", "--read-data")
        assert checked.returncode == 0, (point, checked.stdout)

    # The store still takes checkpoints, and the newest complete one restores.
    second = json.loads(ok(incr(store, "checkpoint", job.pid, "--json")).stdout)
    assert [c["id"] for c in json.loads(ok(incr(store, "list", "--json")).stdout)] == [first["id"], second["id"]]
    kill_and_wait_gone(job.pid)
    job.wait()
    (d / "go1").touch()
    (d / "go2").touch()
    res = incr(store, "restore", "--latest")
    assert res.returncode == 0, res.stderr
    assert (d / "out.txt").read_bytes() == expected


def test_restore_killed_half_way_leaves_no_process_behind(cprog, tmp_path: Path, store: Path,
                                                          procs: Procs) -> None:
    exe = cprog("job")
    expected = reference_output(exe, tmp_path, procs)
    d, job = start_job_at_first_gate(exe, tmp_path, procs)
    ok(incr(store, "checkpoint", job.pid))
    kill_and_wait_gone(job.pid)
    job.wait()

    for point in RESTORE_POINTS:
        res = incr(store, "restore", "--detach", env={"INCR_FAULT": point})
        assert res.returncode == -9, (point, res.returncode, res.stderr)
        wait_until(lambda: _reaped(job.pid), f"the half-restored PID {job.pid} to be gone")
    (d / "go1").touch()
    (d / "go2").touch()
    ok(incr(store, "restore"))
    assert (d / "out.txt").read_bytes() == expected


def _reaped(pid: int) -> bool:
    reap_orphans()
    return not Path(f"/proc/{pid}").exists()


def _what_incr_could_leave(pid: int) -> tuple[list[str], list[tuple[str, str]]]:
    """The job's mappings and descriptors (with what they are), but the tracker incr parks on purpose."""
    lines = Path(f"/proc/{pid}/maps").read_text().splitlines()
    maps = [" ".join(line.split()[:2] + line.split()[5:]) for line in lines]
    fds = sorted((fd, os.readlink(f"/proc/{pid}/fd/{fd}")) for fd in os.listdir(f"/proc/{pid}/fd"))
    return maps, [(fd, link) for fd, link in fds if not (int(fd) >= 64 and link == "anon_inode:[userfaultfd]")]


def _unharmed(pid: int) -> str:
    """What is wrong with the job after incr died, or ""."""
    status = Path(f"/proc/{pid}/status").read_text()
    if "TracerPid:\t0" not in status:
        return "still traced"
    if "State:\tZ" in status or "State:\tX" in status:
        return "dead"
    if "State:\tt" in status or "State:\tT" in status:
        return "left stopped"
    return ""


@pytest.mark.parametrize("point", sorted(INJECTION_POINTS))
def test_job_survives_incr_killed_inside_each_injected_syscall(cprog, tmp_path: Path, store: Path, procs: Procs,
                                                                point: str) -> None:
    """Every syscall a checkpoint injects into the job, one after the other, with incr killed at
    `point` of it: the job's registers, FPU/AVX state, signal mask and sleeping thread are intact."""
    pid, _job, out, go = selfcheck.start(cprog("regsjob", "-pthread", "-mavx2"), tmp_path, procs)
    before = _what_incr_could_leave(pid)
    sent = 0
    after = 0
    while True:
        res = incr(store, "checkpoint", pid, env={"INCR_FAULT": point, "INCR_FAULT_AFTER": str(after)})
        if res.returncode == 0:
            break                      # it injected fewer syscalls than that: every one was hit
        assert res.returncode == -9, (point, after, res.returncode, res.stderr)
        assert not _unharmed(pid), f"incr killed {point} of injected syscall #{after}: the job is {_unharmed(pid)}"
        os.kill(pid, signal.SIGUSR1)
        sent += 1
        after += 1
        assert after < 200, "a checkpoint that never completes"
    assert after >= 8, f"only {after} injected syscalls were hit"
    assert _what_incr_could_leave(pid) == before, "a killed command left something in the job"
    go.touch()
    status = wait_exit(pid)
    lines = out.read_text().splitlines()
    assert lines[:4] == ["ok registers", "ok mxcsr", "ok sleeper", "ok signal mask"], lines
    assert lines[4] == f"ok usr1 {sent}", lines
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
