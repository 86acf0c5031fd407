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
