"""CPython jobs as users run them: multiprocessing (a Pool of forked workers, a Queue fed by a
thread, Locks and shared Values: POSIX semaphores and /dev/shm objects the job unlinked at once;
a Manager: a server process listening on a Unix socket bound to a path, with a thread per
accepted connection, and Connections passed to workers; descriptors passed to a worker with
multiprocessing.reduction.send_handle and socket.send_fds, queued at the checkpoint),
checkpointed with --kill at work and restored; the output must be byte-identical to an
uninterrupted run's."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from conftest import Procs, checkpoint_then_kill, incr, line_count, wait_until

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
            with lock:                  # the lock works; how far the tally got is the scheduler's
                total.value
            f.write(f"{r} {sum(res)}\n")
            f.flush()
        counter.join()
        f.write(f"done {total.value} {counter.exitcode}\n")
"""


MANAGER_JOB = r"""
import multiprocessing as mp, os, sys
out, gate = sys.argv[1], sys.argv[2]

def work(args):
    d, x = args
    s = 0
    for i in range(20000 + x):
        s = (s * 31 + i * x) % 1000003
    d[x] = s
    return s

def echo(conn):
    conn.send(conn.recv() * 2)
    conn.close()

if __name__ == "__main__":
    with mp.Manager() as m, open(out, "w") as f, mp.Pool(2) as pool:
        d, log = m.dict(), m.list()
        for r in range(30):
            if r == 15:
                while not os.path.exists(gate):
                    sum(range(1000))
            res = pool.map(work, [(d, x) for x in range(r, r + 4)])
            a, b = mp.Pipe()
            h = pool.apply_async(echo, (b,))
            a.send(r)
            got = a.recv()
            h.get()
            log.append(sum(res) % 9973)
            f.write(f"{r} {sum(res)} {max(d.items())} {got} {len(log)}\n")
            f.flush()
        f.write(f"done {sum(log)} {len(d)}\n")
"""


HANDLES_JOB = r"""
import multiprocessing as mp, os, socket, sys
from multiprocessing import reduction
out, gate = sys.argv[1], sys.argv[2]
data = os.path.join(os.path.dirname(out), os.path.basename(out) + ".data")

def worker(conn, sock, rounds):
    total = 0
    for r in range(rounds):
        if r == 5:                     # the parent has sent round 5's descriptors: they wait, queued
            while not os.path.exists(gate):
                sum(range(1000))
        fd = reduction.recv_handle(conn)
        msg, fds, _, _ = socket.recv_fds(sock, 64, 4)
        with os.fdopen(fd, "rb") as f:
            got = f.read()
        rfd, wfd = fds
        os.write(wfd, msg)
        os.close(wfd)
        piped = os.read(rfd, 64)
        os.close(rfd)
        total = (total * 131 + sum(got) + len(piped)) % 1000003
        conn.send((r, len(got), piped.decode(), total))

if __name__ == "__main__":
    ctx = mp.get_context("fork")
    a, b = ctx.Pipe()
    s1, s2 = socket.socketpair()
    rounds = 10
    p = ctx.Process(target=worker, args=(b, s2, rounds))
    p.start()
    with open(out, "w") as f:
        for r in range(rounds):
            with open(data, "wb") as w:
                w.write(bytes(range(r, r + 40)))
            fd = os.open(data, os.O_RDONLY)
            os.lseek(fd, r, os.SEEK_SET)
            reduction.send_handle(a, fd, p.pid)          # a file only in flight once closed
            os.close(fd)
            rfd, wfd = os.pipe()                          # both ends only in flight
            socket.send_fds(s1, [b"round %d" % r], [rfd, wfd])
            os.close(rfd)
            os.close(wfd)
            if r == 5:
                f.write("sent\n")                        # (the checkpoint comes once this is written)
                f.flush()
            f.write("%d %r\n" % (r, a.recv()))
            f.flush()
        p.join()
        f.write("done %d\n" % p.exitcode)
"""


def _restored_identically(job_src: str, gate_line: int, least: int, dump: str, tmp_path: Path, store: Path,
                          procs: Procs) -> None:
    """Runs `job_src` once through, then again: checkpointed (`dump`) once it wrote `gate_line` lines
    (its tree then has at least `least` processes), killed, restored; the outputs must be equal."""
    ref, opened = tmp_path / "ref.txt", tmp_path / "open"
    opened.touch()
    p = procs.start([sys.executable, "-c", job_src, ref, opened])
    assert p.wait(timeout=300) == 0
    assert ref.read_text().startswith("0 ")

    out, gate = tmp_path / "out.txt", tmp_path / "gate"
    job = procs.start([sys.executable, "-c", job_src, out, gate])
    wait_until(lambda: line_count(out) >= gate_line, "the job to reach its gate")
    tree = checkpoint_then_kill(store, job, procs, dump)
    assert len(tree) >= least, tree
    gate.touch()
    res = incr(store, "restore", timeout=300)
    assert res.returncode == 0, res.stderr
    assert out.read_bytes() == ref.read_bytes()


@pytest.mark.parametrize("dump", ["kill", "incremental"])
def test_multiprocessing_pool_queue_lock_value_restored_identically(dump: str, tmp_path: Path, store: Path,
                                                                      procs: Procs) -> None:
    # the root, the tally process, two pool workers
    _restored_identically(MP_JOB, 20, 4, dump, tmp_path, store, procs)


@pytest.mark.parametrize("dump", ["kill", "incremental"])
def test_multiprocessing_manager_and_pool_restored_identically(dump: str, tmp_path: Path, store: Path,
                                                               procs: Procs) -> None:
    """The manager's server listens on a Unix socket under /tmp/pymp-*, its threads serve accepted
    connections (the root's proxies and the workers'); a Connection goes to a worker each round."""
    _restored_identically(MANAGER_JOB, 15, 4, dump, tmp_path, store, procs)


@pytest.mark.parametrize("dump", ["kill", "incremental"])
def test_descriptors_passed_to_a_worker_restored_identically(dump: str, tmp_path: Path, store: Path,
                                                             procs: Procs) -> None:
    """multiprocessing.reduction.send_handle (a file at an offset) and socket.send_fds (a pipe's
    two ends) over socket pairs: round 5's wait in the worker's queues at the checkpoint."""
    _restored_identically(HANDLES_JOB, 6, 2, dump, tmp_path, store, procs)
