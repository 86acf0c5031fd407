"""Descriptors leading outside the job (engine/external.py): refused by default in one line naming
who holds the other end; recorded as external with `checkpoint --external` (a warning each); a
restore refuses in one line until told what each becomes with `--external N:PATH|null`, and then
gives the job exactly that.  Real: a recipe of `make -j3` holding make's jobserver pipe (two
tokens queued in it: never empty, so never taken for the job's own).  A pipe both of whose ends
the job holds that an outsider holds too but that holds nothing is the job's own, with a warning."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import selfcheck

from conftest import Procs, incr, ok, read_pid, wait_until


def _one_line(res: subprocess.CompletedProcess[str], *words: str) -> None:
    assert res.returncode == 1, res
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr, res.stderr
    for word in words:
        assert word in res.stderr, (word, res.stderr)


def test_a_make_j_recipe_holding_the_jobserver_pipe_is_checkpointed_with_external(
        cprog: Callable[..., Path], tmp_path: Path, store: Path, procs: Procs) -> None:
    out, ready, go = tmp_path / "out.txt", tmp_path / "ready", tmp_path / "go"
    (tmp_path / "Makefile").write_text(f"all: job other\njob:\n\t+@{cprog('jobserver')} {out} {ready} {go}\n"
                                       "other:\n\t@true\n")
    make = procs.start(["make", "-j3", "-C", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pid = procs.track(read_pid(ready))
    fds = sorted(int(fd) for fd in os.listdir(f"/proc/{pid}/fd") if os.readlink(f"/proc/{pid}/fd/{fd}")
                 .startswith("pipe:"))
    assert len(fds) == 2, fds                          # the jobserver's two ends, nothing else

    _one_line(incr(store, "checkpoint", pid), f"PID {pid}", f"PID {make.pid} (make)", "--external")
    assert not store.exists()
    res = ok(incr(store, "checkpoint", pid, "--external", "--kill"))
    warned = [line for line in res.stderr.splitlines() if "warning" in line]
    assert len(warned) == 2 and all("leads outside the job" in line for line in warned), res.stderr
    assert make.wait(timeout=60) != 0                  # its recipe was killed
    selfcheck.wait_gone(pid, None)

    _one_line(incr(store, "restore", "--detach"), f"fd {fds[0]}", f"fd {fds[1]}", "--external")
    _one_line(incr(store, "restore", "--detach", "--external", f"{fds[0]}:null"), f"fd {fds[1]}")
    assert not os.path.exists(f"/proc/{pid}")
    bad = incr(store, "restore", "--detach", "--external", "three:null")
    assert bad.returncode == 2 and "--external" in bad.stderr and "Traceback" not in bad.stderr, bad
    outcome = selfcheck.restore_and_check(store, procs, out, go, "--external", f"{fds[0]}:null",
                                          "--external", f"{fds[1]}:null")
    selfcheck.assert_passed(outcome)


def test_a_pipe_and_a_socket_to_the_caller_become_what_the_restore_says(
        cprog: Callable[..., Path], tmp_path: Path, store: Path, procs: Procs) -> None:
    r, w = os.pipe()
    os.set_blocking(r, False)
    mine, theirs = socket.socketpair()
    try:
        argv = ["bash", "-c", f'exec "$0" "$@" 7<&{r} 8<&{theirs.fileno()} {r}<&- {theirs.fileno()}<&-',
                cprog("external"), tmp_path / "out.txt", tmp_path / "ready", tmp_path / "go"]
        job = procs.start(argv, pass_fds=(r, theirs.fileno()))
        pid = procs.track(read_pid(tmp_path / "ready"))
        os.close(r)
        theirs.close()
        _one_line(incr(store, "checkpoint", pid), f"PID {pid}", "fd 7", "outside the job")
        res = ok(incr(store, "checkpoint", pid, "--external", "--kill"))
        assert "fd 7" in res.stderr and "fd 8" in res.stderr, res.stderr
        job.wait(timeout=60)
        wait_until(lambda: not os.path.exists(f"/proc/{pid}"), "the killed job to be gone")

        fifo = tmp_path / "fifo"
        os.mkfifo(fifo)
        res = ok(incr(store, "restore", "--detach", "--external", f"7:{fifo}", "--external", f"{pid}/8:null"))
        restored = procs.track(int(res.stdout.split()[-1]))
        with open(fifo, "w") as f:                     # a reader is there: the restored fd 7
            f.write("hello\n")
        (tmp_path / "go").touch()
        status = selfcheck.wait_exit(restored, timeout=selfcheck.TIMEOUT)
        lines = (tmp_path / "out.txt").read_text().splitlines()
        assert lines and all(line.startswith("ok ") for line in lines), lines
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    finally:
        os.close(w)
        mine.close()


def test_a_pipe_shared_with_an_outsider_is_the_jobs_own_while_empty(
        cprog: Callable[..., Path], tmp_path: Path, store: Path, procs: Procs) -> None:
    r, w = os.pipe()
    try:
        ready = tmp_path / "ready"
        job = procs.start([cprog("idle"), "1", "zero", ready], pass_fds=(r, w))
        pid = procs.track(read_pid(ready))
        res = ok(incr(store, "checkpoint", pid))           # we hold both ends too: a leaked pipe, empty
        assert "outside the job" in res.stderr and "restored as the job's own pipe" in res.stderr, res.stderr
        os.write(w, b"token")
        _one_line(incr(store, "checkpoint", pid), f"PID {pid}", f"fd {r}", f"PID {os.getpid()}", "--external")
        assert os.read(r, 16) == b"token"                   # (nothing of the job's or ours was touched)
        job.kill()
    finally:
        os.close(r)
        os.close(w)
