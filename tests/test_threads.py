"""Multi-threaded processes: every thread frozen and restored with its TID,
registers, FP state, TLS, signal mask, name, robust list and clear_child_tid."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import Procs, incr, line_count, ok, wait_until

N = 40


def thread_names(pid: int) -> dict[int, str]:
    return {int(t): Path(f"/proc/{pid}/task/{t}/comm").read_text().strip() for t in os.listdir(f"/proc/{pid}/task")}


def thread_masks(pid: int) -> dict[int, str]:
    out = {}
    for t in os.listdir(f"/proc/{pid}/task"):
        status = Path(f"/proc/{pid}/task/{t}/status").read_text()
        out[int(t)] = next(line for line in status.splitlines() if line.startswith("SigBlk:"))
    return out


def test_pthreads_job_restored_finishes_identically(cprog, tmp_path: Path, store: Path, procs: Procs) -> None:
    exe = cprog("threads", "-pthread")
    ref = tmp_path / "ref"
    ref.mkdir()
    (ref / "go1").touch()
    (ref / "go2").touch()
    p = procs.start([exe, ref / "out.txt", ref / "go1", ref / "go2", N])
    assert p.wait(timeout=120) == 0
    expected = (ref / "out.txt").read_bytes()
    assert expected.endswith(b"done joined 4 threads, " + expected.rsplit(b", ", 1)[1])

    d = tmp_path / "run"
    d.mkdir()
    out = d / "out.txt"
    job = procs.start([exe, out, d / "go1", d / "go2", N])
    wait_until(lambda: line_count(out) >= N // 2, "the job to reach its first gate")
    names, masks = thread_names(job.pid), thread_masks(job.pid)
    assert len(names) == 5
    ok(incr(store, "checkpoint", job.pid))
    (d / "go1").touch()
    wait_until(lambda: line_count(out) >= N // 2 + 5, "the job to reach its second gate")
    job.kill()
    job.wait()

    res = incr(store, "restore", "--detach")
    assert res.returncode == 0, res.stderr
    pid = procs.track(int(res.stdout))
    assert thread_names(pid) == names, "every thread back with its TID and its name"
    assert thread_masks(pid) == masks
    (d / "go2").touch()
    wait_until(lambda: out.read_bytes().endswith(b"\n") and b"done" in out.read_bytes(), "the job to finish")
    assert out.read_bytes() == expected
