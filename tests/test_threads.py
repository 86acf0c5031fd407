"""Multi-threaded processes: every thread frozen and restored with its TID,
registers, FP state, TLS, signal mask, name, robust list and clear_child_tid."""

from __future__ import annotations

import os
import sys
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


def run_gated(argv: list[object], out: Path, d: Path, store: Path, procs: Procs, half: int,
              env: dict[str, str]) -> tuple[bytes, int]:
    """Start a gated job, checkpoint it at its first gate, let it run on, kill it, restore:
    (its output, how many threads it had at the checkpoint)."""
    job = procs.start(argv, env={**os.environ, **env})
    wait_until(lambda: line_count(out) >= half, "the job to reach its first gate")
    threads = len(os.listdir(f"/proc/{job.pid}/task"))
    ok(incr(store, "checkpoint", job.pid))
    (d / "go1").touch()
    wait_until(lambda: line_count(out) >= half + 5, "the job to reach its second gate")
    job.kill()
    job.wait()
    (d / "go2").touch()
    res = incr(store, "restore")
    assert res.returncode == 0, res.stderr
    return out.read_bytes(), threads


def test_openmp_stencil_restored_finishes_identically(cprog, tmp_path: Path, store: Path, procs: Procs) -> None:
    exe = cprog("stencil_omp", "-fopenmp", "-lm")
    env = {"OMP_NUM_THREADS": "4"}
    ref = tmp_path / "ref"
    ref.mkdir()
    (ref / "go1").touch()
    (ref / "go2").touch()
    p = procs.start([exe, ref / "out.txt", ref / "go1", ref / "go2", N], env={**os.environ, **env})
    assert p.wait(timeout=120) == 0
    expected = (ref / "out.txt").read_bytes()
    assert b"threads 4" in expected
    d = tmp_path / "run"
    d.mkdir()
    got, threads = run_gated([exe, d / "out.txt", d / "go1", d / "go2", N], d / "out.txt", d, store, procs, N // 2,
                             env)
    assert threads == 4
    assert got == expected


NUMPY_JOB = r"""
import os, sys, hashlib
import numpy as np
out, g1, g2 = sys.argv[1:4]
rng = np.random.default_rng(7)
a = rng.standard_normal((400, 400))
with open(out, "w") as f:
    for it in range(40):
        if it == 20:
            while not os.path.exists(g1):
                sum(range(1000))
        if it == 25:
            while not os.path.exists(g2):
                sum(range(1000))
        a = np.tanh(a @ a.T / 400.0)             # OpenBLAS, several threads
        f.write(f"{it} {hashlib.sha256(a.tobytes()).hexdigest()[:24]}\n")
        f.flush()
"""


def test_numpy_with_openblas_threads_restored_finishes_identically(tmp_path: Path, store: Path,
                                                                   procs: Procs) -> None:
    env = {"OPENBLAS_NUM_THREADS": "4", "OMP_NUM_THREADS": "4"}
    ref = tmp_path / "ref"
    ref.mkdir()
    (ref / "go1").touch()
    (ref / "go2").touch()
    p = procs.start([sys.executable, "-c", NUMPY_JOB, ref / "out.txt", ref / "go1", ref / "go2"],
                    env={**os.environ, **env})
    assert p.wait(timeout=120) == 0
    expected = (ref / "out.txt").read_bytes()
    d = tmp_path / "run"
    d.mkdir()
    out = d / "out.txt"
    argv: list[object] = [sys.executable, "-c", NUMPY_JOB, out, d / "go1", d / "go2"]
    got, threads = run_gated(argv, out, d, store, procs, 20, env)
    assert threads >= 2, "OpenBLAS was expected to run threads of its own (it caps them at the CPU count)"
    assert got == expected


def test_incremental_checkpoint_sees_every_threads_writes(cprog, tmp_path: Path, store: Path, procs: Procs) -> None:
    import json

    exe = cprog("threads", "-pthread")
    ref = tmp_path / "ref"
    ref.mkdir()
    (ref / "go1").touch()
    (ref / "go2").touch()
    assert procs.start([exe, ref / "out.txt", ref / "go1", ref / "go2", N]).wait(timeout=120) == 0
    d = tmp_path / "run"
    d.mkdir()
    out = d / "out.txt"
    job = procs.start([exe, out, d / "go1", d / "go2", N])
    wait_until(lambda: line_count(out) >= N // 2, "the job to reach its first gate")
    first = json.loads(ok(incr(store, "checkpoint", job.pid, "--json")).stdout)
    (d / "go1").touch()
    wait_until(lambda: line_count(out) >= N // 2 + 5, "the job to reach its second gate")
    second = json.loads(ok(incr(store, "checkpoint", job.pid, "--json")).stdout)
    assert second["parent"] == first["id"] and second["pages_dirty"] < second["pages_total"]
    job.kill()
    job.wait()
    (d / "go2").touch()
    res = incr(store, "restore", "--latest")        # the incremental one: every worker's slice must be in it
    assert res.returncode == 0, res.stderr
    assert out.read_bytes() == (ref / "out.txt").read_bytes()
