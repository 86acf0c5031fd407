"""The spine end to end: checkpoint live processes, kill them, restore them
with the same PID, and require the job to finish as an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from conftest import Procs, incr, kill_and_wait_gone, line_count, ok, read_pid, wait_until

N = 40   # job iterations; gates at N/2 and N/2+5


def make_data(path: Path) -> Path:
    path.write_bytes(bytes((i * 31 + 7) % 251 for i in range(1 << 20)))
    return path


def job_argv(exe: Path, d: Path) -> list[str | Path]:
    return [exe, d / "out.txt", d / "data.bin", d / "go1", d / "go2", N]


def reference_output(exe: Path, tmp: Path, procs: Procs) -> bytes:
    ref = tmp / "ref"
    ref.mkdir()
    make_data(ref / "data.bin")
    (ref / "go1").touch()
    (ref / "go2").touch()
    p = procs.start(job_argv(exe, ref))
    assert p.wait(timeout=120) == 0
    return (ref / "out.txt").read_bytes()


def start_job_at_first_gate(exe: Path, tmp_path: Path, procs: Procs) -> tuple[Path, subprocess.Popen[bytes]]:
    """The C job started in tmp_path/run, waiting at its first gate: (its directory, the job)."""
    d = tmp_path / "run"
    d.mkdir()
    make_data(d / "data.bin")
    job = procs.start(job_argv(exe, d))
    wait_until(lambda: line_count(d / "out.txt") >= N // 2, "the job to reach its first gate")
    return d, job


def test_c_job_restored_finishes_like_uninterrupted_run(cprog, tmp_path: Path, store: Path, procs: Procs) -> None:
    exe = cprog("job")
    expected = reference_output(exe, tmp_path, procs)
    d, job = start_job_at_first_gate(exe, tmp_path, procs)

    res = ok(incr(store, "checkpoint", job.pid, "--json"))
    info = json.loads(res.stdout)
    assert info["root_pid"] == job.pid and info["kind"] == "checkpoint"
    assert job.poll() is None, "checkpoint must leave the job running"

    # Let the job run past the checkpoint and write more output, then lose it.
    (d / "go1").touch()
    wait_until(lambda: line_count(d / "out.txt") >= N // 2 + 5, "the job to reach its second gate")
    job.kill()
    job.wait()
    (d / "go2").touch()

    res = incr(store, "restore", "--latest")
    assert res.returncode == 0, res.stderr
    assert f"restored PID {job.pid}" in res.stderr
    assert (d / "out.txt").read_bytes() == expected


def test_restored_process_keeps_pid_and_is_detached(cprog, tmp_path: Path, store: Path, procs: Procs) -> None:
    exe = cprog("job")
    d, job = start_job_at_first_gate(exe, tmp_path, procs)
    ok(incr(store, "checkpoint", job.pid, "--kill"))
    job.wait()
    res = ok(incr(store, "restore", "--detach"))
    pid = procs.track(int(res.stdout.strip()))
    assert pid == job.pid
    assert Path(f"/proc/{pid}/exe").resolve() == exe.resolve()
    (d / "go1").touch()
    (d / "go2").touch()
    _, status = os.waitpid(pid, 0)          # orphaned by incr, adopted by us (subreaper)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert (d / "out.txt").read_bytes().endswith(b"done usr1 1 usr2 40\n")


PY_JOB = r"""
import hashlib, os, sys, time
out, gate = sys.argv[1], sys.argv[2]
state = {"primes": [], "h": hashlib.sha256()}
words = [str(i) * (i % 7 + 1) for i in range(20000)]
def step(n):
    for k in range(n * 50, n * 50 + 50):
        if k > 1 and all(k % p for p in state["primes"] if p * p <= k):
            state["primes"].append(k)
    state["h"].update(" ".join(words[n::97]).encode())
with open(out, "w") as f:
    for n in range(60):
        if n == 30:
            while not os.path.exists(gate):
                sum(range(1000))
        step(n)
        f.write(f"{n} {len(state['primes'])} {state['h'].hexdigest()[:16]} {sum(map(len, words)) % 9973}\n")
        f.flush()
"""


def test_cpython_script_restored_finishes_identically(tmp_path: Path, store: Path, procs: Procs) -> None:
    ref = tmp_path / "ref.txt"
    (tmp_path / "open").touch()
    p = procs.start([sys.executable, "-c", PY_JOB, ref, tmp_path / "open"])
    assert p.wait(timeout=120) == 0

    out = tmp_path / "out.txt"
    job = procs.start([sys.executable, "-c", PY_JOB, out, tmp_path / "gate"])
    wait_until(lambda: line_count(out) >= 30, "the script to reach its gate")
    ok(incr(store, "checkpoint", job.pid))
    kill_and_wait_gone(job.pid)
    job.wait()
    (tmp_path / "gate").touch()
    res = incr(store, "restore")
    assert res.returncode == 0, res.stderr
    assert out.read_bytes() == ref.read_bytes()


def test_job_exit_status_and_signal_come_through_attached_restore(cprog, tmp_path: Path, store: Path,
                                                                  procs: Procs) -> None:
    ready = tmp_path / "ready"
    job = procs.start([cprog("idle"), 4, "zero", ready])
    read_pid(ready)
    ok(incr(store, "checkpoint", job.pid, "--kill"))
    job.wait()
    restorer = procs.start([sys.executable, "-m", "incr", "--store", store, "restore"], stderr=subprocess.PIPE)
    assert restorer.stderr is not None
    assert f"restored PID {job.pid}".encode() in restorer.stderr.readline()
    procs.track(job.pid)
    restorer.send_signal(signal.SIGTERM)       # forwarded to the job, which dies of it
    assert restorer.wait(timeout=60) == 128 + signal.SIGTERM
