"""Descriptors beyond files and pipes: each restored, then used by the job itself."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from conftest import Procs, incr, kill_and_wait_gone, ok, read_pid, wait_exit, wait_until


def test_eventfd_signalfd_timerfd_epoll_inotify_still_behave(cprog, tmp_path: Path, store: Path,
                                                             procs: Procs) -> None:
    watched = tmp_path / "watched"
    watched.mkdir()
    out, ready, go = tmp_path / "out.txt", tmp_path / "ready", tmp_path / "go"
    job = procs.start([cprog("fdkinds"), out, ready, go, watched])
    read_pid(ready)
    ok(incr(store, "checkpoint", job.pid))
    kill_and_wait_gone(job.pid)
    job.wait()
    res = ok(incr(store, "restore", "--detach"))
    pid = procs.track(int(res.stdout))
    os.kill(pid, signal.SIGUSR1)
    (watched / "new").touch()
    go.touch()
    status = wait_exit(pid)
    wait_until(out.exists, "the verdict")
    lines = out.read_text().splitlines()
    assert lines == ["ok eventfd", "ok signalfd", "ok epoll", "ok timerfd", "ok inotify"], lines
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def test_posix_timers_keep_their_ids_and_keep_firing(cprog, tmp_path: Path, store: Path, procs: Procs) -> None:
    out, ready, go = tmp_path / "out.txt", tmp_path / "ready", tmp_path / "go"
    job = procs.start([cprog("posixtimers", "-lrt"), out, ready, go])
    read_pid(ready)
    ok(incr(store, "checkpoint", job.pid))
    kill_and_wait_gone(job.pid)
    job.wait()
    pid = procs.track(int(ok(incr(store, "restore", "--detach")).stdout))
    go.touch()
    status = wait_exit(pid)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert out.read_text() == "ids 1 2 fired 1 value 1 hour 1\n"


ECHO = "import sys\nfor line in sys.stdin:\n    print('echo:', line.strip(), flush=True)\n"


def _read_until(master: int, needle: bytes, timeout: float = 30) -> bytes:
    import select
    import time

    got = b""
    end = time.monotonic() + timeout
    while needle not in got and time.monotonic() < end:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            got += os.read(master, 4096)
    return got


def test_terminal_stdio_comes_back_on_the_restorer_terminal(tmp_path: Path, store: Path, procs: Procs) -> None:
    import subprocess
    import sys

    m1, s1 = os.openpty()
    m2, s2 = os.openpty()
    try:
        job = procs.start([sys.executable, "-c", ECHO], stdin=s1, stdout=s1, stderr=s1)
        os.write(m1, b"before\n")
        assert b"echo: before" in _read_until(m1, b"echo: before")
        wait_until(lambda: Path(f"/proc/{job.pid}/wchan").read_text() in ("wait_woken", "n_tty_read"),
                   "the job to wait on its terminal")
        ok(incr(store, "checkpoint", job.pid))
        kill_and_wait_gone(job.pid)
        job.wait()
        # The restorer runs on the second terminal: the job comes back on it, all three streams.
        res = subprocess.run([sys.executable, "-m", "incr", "--store", str(store), "restore", "--detach"],
                             stdin=s2, stdout=s2, stderr=s2)
        said = _read_until(m2, b"restored PID")
        assert res.returncode == 0, said
        procs.track(job.pid)
        assert f"restored PID {job.pid}".encode() in said
        os.write(m2, b"after\n")
        assert b"echo: after" in _read_until(m2, b"echo: after"), "the restored job answers on the new terminal"
    finally:
        for fd in (m1, s1, m2, s2):
            os.close(fd)
