"""`incr checkpoint` killed at any point leaves only complete checkpoints, the
job alive and untraced, and the newest complete checkpoint restorable;
`incr restore` killed half-way leaves no process behind."""

from __future__ import annotations

import json
from pathlib import Path

from test_checkpoint_restore import reference_output, start_job_at_first_gate

from conftest import Procs, incr, kill_and_wait_gone, ok, reap_orphans, wait_until
from incr.faults import POINTS, RESTORE_POINTS


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
