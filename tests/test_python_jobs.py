"""CPython jobs as users run them: multiprocessing (a Pool of forked workers, a Queue fed by a
thread, Locks and shared Values: POSIX semaphores and /dev/shm objects the job unlinked at once),
checkpointed with --kill at work and restored; the output must be byte-identical to an
uninterrupted run's."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from engine_tree import descendants

from conftest import Procs, incr, line_count, ok, reap_orphans, wait_until

MP_JOB = r"""
import multiprocessing as mp, os, sys
out, gate = sys.argv[1], sys.argv[2]

def work(x):
    s = 0
    for i in range(20000 + x):
        s = (s * 31 + i * x) % 1000003
    return s

def tally(q, total, lock, n):
    for _ in range(n):
        v = q.get()
        with lock:
            total.value = (total.value * 7 + v) % 65521

if __name__ == "__main__":
    lock, total, q = mp.Lock(), mp.Value("i", 1), mp.Queue()
    rounds = 40
    counter = mp.Process(target=tally, args=(q, total, lock, rounds))
    counter.start()
    with open(out, "w") as f, mp.Pool(2) as pool:
        for r in range(rounds):
            if r == 20:
                while not os.path.exists(gate):
                    sum(range(1000))
            res = pool.map(work, range(r, r + 6))
            q.put(sum(res) % 9973)
            with lock:
                seen = total.value
            f.write(f"{r} {sum(res)} {seen if r == rounds - 1 else 0}\n")
            f.flush()
        counter.join()
        f.write(f"done {total.value} {counter.exitcode}\n")
"""


@pytest.mark.parametrize("dump", ["kill", "incremental"])
def test_multiprocessing_pool_queue_lock_value_restored_identically(dump: str, tmp_path: Path, store: Path,
                                                                      procs: Procs) -> None:
    ref, opened = tmp_path / "ref.txt", tmp_path / "open"
    opened.touch()
    p = procs.start([sys.executable, "-c", MP_JOB, ref, opened])
    assert p.wait(timeout=300) == 0
    assert ref.read_text().endswith(" 0\n") and ref.read_text().startswith("0 ")

    out, gate = tmp_path / "out.txt", tmp_path / "gate"
    job = procs.start([sys.executable, "-c", MP_JOB, out, gate])
    wait_until(lambda: line_count(out) >= 20, "the job to reach its gate")
    tree = [job.pid, *descendants(job.pid)]
    assert len(tree) >= 4, tree                   # the root, the tally process, two pool workers
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
    gate.touch()
    res = incr(store, "restore", timeout=300)
    assert res.returncode == 0, res.stderr
    assert out.read_bytes() == ref.read_bytes()
