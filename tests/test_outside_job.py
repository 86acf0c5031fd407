"""A restore never damages or duplicates what is outside the job (engine/outside.py):
the batch script's log it shares with its job, files other processes write too,
the caller's session and terminal, and the job itself when it still runs."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import selfcheck

from conftest import Procs, incr, ok, read_pid, wait_exit, wait_until

N = 10                                   # lines the job writes: N/2 before the checkpoint, N/2 after
O_APPEND = 0o2000


def job_lines(first: int, last: int) -> bytes:
    return b"".join(b"job %d\n" % i for i in range(first, last + 1))


def script_env(tmp_path: Path, store: Path, exe: Path) -> dict[str, str]:
    return {**os.environ, "PY": sys.executable, "STORE": str(store),
            "PROG": str(exe), "OUT": str(tmp_path / "out.txt"), "READY": str(tmp_path / "ready"),
            "GO": str(tmp_path / "go"), "LOG": str(tmp_path / "log"), "ERR": str(tmp_path / "restore.err")}


def verdict(tmp_path: Path) -> list[str]:
    return (tmp_path / "out.txt").read_text().splitlines()


# Slurm's way: slurmstepd opens slurm-%j.out and the batch script and every step write it
# through that one open file description (no O_APPEND: one shared offset).  (The script's own
# stderr is not the log only because bash reports the killed job there.)
BATCH_SCRIPT_RESTORING = """
exec > "$LOG"
echo "script: start"
"$PROG" "$OUT" "$READY" "$GO" - 0 10 2>&1
echo "script: job ended ($?)"
"$PY" -m incr --store "$STORE" restore 2>"$ERR"
echo "script: restored job exited ($?)"
"""


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_a_batch_script_restores_its_job_into_its_own_log(cprog, tmp_path: Path, store: Path, procs: Procs,
                                                          mode: str) -> None:
    script = procs.start(["bash", "-c", BATCH_SCRIPT_RESTORING], env=script_env(tmp_path, store, cprog("appender")))
    pid = procs.track(read_pid(tmp_path / "ready"))
    selfcheck.dump(store, pid, mode)
    (tmp_path / "go").touch()
    assert script.wait(timeout=selfcheck.TIMEOUT) == 0
    err = (tmp_path / "restore.err").read_text()
    for restored in re.findall(r"restored PID (\d+)", err):
        procs.track(int(restored))
    log = (tmp_path / "log").read_bytes()
    expected = (b"script: start\n" + job_lines(1, N // 2) + b"script: job ended (137)\n" + job_lines(N // 2 + 1, N)
                + b"script: restored job exited (0)\n")
    assert log == expected, (log, err)
    assert all(line.startswith("ok ") for line in verdict(tmp_path)), verdict(tmp_path)


BATCH_SCRIPT = """
exec > "$LOG"
echo "script: start"
"$PROG" "$OUT" "$READY" "$GO" - 0 10 2>&1
echo "script: job ended ($?)"
"""


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_stdio_original_reopens_the_log_at_its_end(cprog, tmp_path: Path, store: Path, procs: Procs,
                                                  mode: str) -> None:
    script = procs.start(["bash", "-c", BATCH_SCRIPT], env=script_env(tmp_path, store, cprog("appender")))
    pid = procs.track(read_pid(tmp_path / "ready"))
    selfcheck.dump(store, pid, mode)
    assert script.wait(timeout=selfcheck.TIMEOUT) == 0
    log = tmp_path / "log"
    outcome = selfcheck.restore_and_check(store, procs, tmp_path / "out.txt", tmp_path / "go", "--stdio", "original",
                                          before_go=lambda p: check_reopened_for_appending(p, log))
    selfcheck.assert_passed(outcome)
    assert log.read_bytes() == (b"script: start\n" + job_lines(1, N // 2) + b"script: job ended (137)\n"
                                + job_lines(N // 2 + 1, N))


def check_reopened_for_appending(pid: int, log: Path) -> None:
    assert os.readlink(f"/proc/{pid}/fd/1") == str(log)
    flags = int(Path(f"/proc/{pid}/fdinfo/1").read_text().split("flags:")[1].split()[0], 8)
    assert flags & O_APPEND, "a description shared with the script comes back appending"


APPENDER = """
import os, sys
fd = -1
for line in sys.stdin:
    cmd, _, arg = line.rstrip("\\n").partition(" ")
    if cmd == "open":
        fd = os.open(arg, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    elif cmd == "write":
        os.write(fd, (arg + "\\n").encode())
    elif cmd == "close":
        os.close(fd)
    print("done", flush=True)
"""


class Appender:
    """A process outside the job that appends lines to a file, one command at a time."""

    def __init__(self, procs: Procs, path: Path) -> None:
        self.p = procs.start([sys.executable, "-c", APPENDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.path = path

    def do(self, cmd: str, arg: str = "") -> None:
        assert self.p.stdin is not None and self.p.stdout is not None
        self.p.stdin.write(f"{cmd} {arg}\n".encode())
        self.p.stdin.flush()
        assert self.p.stdout.readline() == b"done\n"

    def open(self) -> None:
        self.do("open", str(self.path))


def start_writer(cprog, tmp_path: Path, procs: Procs, path: Path, append: int) -> tuple[int, subprocess.Popen[bytes]]:
    pid, job, _, _ = selfcheck.start(cprog("appender"), tmp_path, procs, path, append, N)
    return pid, job


def restore_writer(store: Path, tmp_path: Path, procs: Procs) -> tuple[selfcheck.Outcome, str]:
    """Restore detached, let the job write its second half and check itself; (outcome, restore's stderr)."""
    res = ok(incr(store, "restore", "--detach", timeout=selfcheck.TIMEOUT))
    pid = procs.track(int(res.stdout.split()[-1]))
    (tmp_path / "go").touch()
    status = wait_exit(pid, timeout=selfcheck.TIMEOUT)
    return selfcheck.Outcome(pid=pid, status=status, lines=verdict(tmp_path)), res.stderr


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_a_file_an_outside_process_holds_for_writing_is_not_truncated(cprog, tmp_path: Path, store: Path,
                                                                     procs: Procs, mode: str) -> None:
    path = tmp_path / "shared.log"
    other = Appender(procs, path)
    other.open()
    pid, job = start_writer(cprog, tmp_path, procs, path, 1)
    other.do("write", "other 1")
    selfcheck.dump(store, pid, mode)
    selfcheck.wait_gone(pid, job)
    other.do("write", "other 2")                     # after the checkpoint: beyond its size
    outcome, err = restore_writer(store, tmp_path, procs)
    other.do("write", "other 3")
    selfcheck.assert_passed(outcome)
    assert path.read_bytes() == job_lines(1, N // 2) + b"other 1\nother 2\n" + job_lines(N // 2 + 1, N) + b"other 3\n"
    assert f"{path} is written by others too" in err and "not truncated" in err, err


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_a_file_appended_to_after_the_checkpoint_that_ended_the_job_is_not_truncated(
        cprog, tmp_path: Path, store: Path, procs: Procs, mode: str) -> None:
    """`./job > log; echo after >> log`: nobody holds the file at the checkpoint or the restore,
    but the job wrote nothing after a --kill checkpoint: what lies beyond is someone else's."""
    path = tmp_path / "out.log"
    pid, job = start_writer(cprog, tmp_path, procs, path, 0)      # its own description, no O_APPEND
    selfcheck.dump(store, pid, mode)
    selfcheck.wait_gone(pid, job)
    other = Appender(procs, path)
    other.open()
    other.do("write", "after")
    other.do("close")
    outcome, err = restore_writer(store, tmp_path, procs)
    selfcheck.assert_passed(outcome)
    assert path.read_bytes() == job_lines(1, N // 2) + b"after\n" + job_lines(N // 2 + 1, N)
    assert f"{path} is written by others too" in err and "ended the job" in err, err


def kill_and_reap(pid: int, job: subprocess.Popen[bytes]) -> None:
    os.kill(pid, signal.SIGKILL)
    selfcheck.wait_gone(pid, job)


def test_a_file_written_by_others_at_the_checkpoint_only_is_not_truncated(cprog, tmp_path: Path, store: Path,
                                                                         procs: Procs) -> None:
    """The job ran on after the checkpoint (a node failure, not --kill); the other writer held the
    file at the checkpoint and has closed it since: its lines must stay."""
    path = tmp_path / "shared.log"
    other = Appender(procs, path)
    other.open()
    pid, job = start_writer(cprog, tmp_path, procs, path, 1)
    ok(incr(store, "checkpoint", pid))
    other.do("write", "other 1")
    other.do("close")
    kill_and_reap(pid, job)
    outcome, err = restore_writer(store, tmp_path, procs)
    selfcheck.assert_passed(outcome)
    assert path.read_bytes() == job_lines(1, N // 2) + b"other 1\n" + job_lines(N // 2 + 1, N)
    assert "open for writing in PID" in err and "at the checkpoint" in err, err


def test_a_file_an_outside_process_opened_after_the_checkpoint_is_not_truncated(cprog, tmp_path: Path,
                                                                               store: Path, procs: Procs) -> None:
    """Nobody else had the file open at the checkpoint; at the restore someone does (seen by a
    read lease, then named by a scan of /proc)."""
    path = tmp_path / "shared.log"
    pid, job = start_writer(cprog, tmp_path, procs, path, 1)
    ok(incr(store, "checkpoint", pid))
    other = Appender(procs, path)
    other.open()
    other.do("write", "other 1")
    kill_and_reap(pid, job)
    outcome, err = restore_writer(store, tmp_path, procs)
    selfcheck.assert_passed(outcome)
    assert path.read_bytes() == job_lines(1, N // 2) + b"other 1\n" + job_lines(N // 2 + 1, N)
    assert f"open for writing in PID {other.p.pid} (python" in err and "now" in err, err


def test_a_file_only_the_job_writes_is_still_truncated_back(cprog, tmp_path: Path, store: Path,
                                                            procs: Procs) -> None:
    """The job ran on after the checkpoint and wrote its second half; restored, it writes that
    again where it did the first time: the output is an uninterrupted run's."""
    path = tmp_path / "own.log"
    pid, job = start_writer(cprog, tmp_path, procs, path, 0)
    ok(incr(store, "checkpoint", pid))
    (tmp_path / "go").touch()
    assert job.wait(timeout=selfcheck.TIMEOUT) == 0
    assert path.read_bytes() == job_lines(1, N)
    (tmp_path / "go").unlink()
    outcome, err = restore_writer(store, tmp_path, procs)
    selfcheck.assert_passed(outcome)
    assert path.read_bytes() == job_lines(1, N)
    assert f"restore cut {path} back from" in err, err


# ---------------------------------------------------------------- sessions and terminals

# An interactive shell, reduced: leads a session on a terminal, runs `incr restore --detach`
# in its foreground process group, and waits for the terminal to hang up.
TERMINAL_SHELL = """
import fcntl, os, signal, subprocess, sys, termios, time
# A login shell's SIGHUP is the default, whatever the suite inherited (under nohup: ignored).
signal.signal(signal.SIGHUP, signal.SIG_DFL)
tty = os.open(sys.argv[1], os.O_RDWR)
fcntl.ioctl(tty, termios.TIOCSCTTY, 0)
for n in (0, 1, 2):
    os.dup2(tty, n)
status = subprocess.call(sys.argv[2:])
print(f"restore exited {status}", flush=True)
while True:
    time.sleep(60)
"""


def read_terminal(master: int, until: bytes) -> bytes:
    seen = b""
    while until not in seen:
        ready, _, _ = select.select([master], [], [], selfcheck.TIMEOUT)
        assert ready, f"nothing more on the terminal; so far: {seen!r}"
        seen += os.read(master, 4096)
    return seen


def stat_fields(pid: int) -> list[str]:
    raw = Path(f"/proc/{pid}/stat").read_text()
    return raw[raw.rindex(")") + 2:].split()       # [0] is field 3 (state)


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_a_detached_restore_outlives_the_terminal_that_typed_it(cprog, tmp_path: Path, store: Path, procs: Procs,
                                                               mode: str) -> None:
    out, ready, go = tmp_path / "out.txt", tmp_path / "ready", tmp_path / "go"
    # Started by a shell-like parent, in that parent's session and group: it leads neither.
    launcher = procs.start(["bash", "-c", f"'{cprog('session')}' '{out}' '{ready}' '{go}'; true"])
    pid = procs.track(read_pid(ready))
    child = procs.track(int(Path(f"/proc/{pid}/task/{pid}/children").read_text().split()[0]))
    fields = stat_fields(pid)
    assert int(fields[3]) == int(fields[2]) == launcher.pid != pid, "neither session nor group leader"
    selfcheck.dump(store, pid, mode)
    selfcheck.wait_gone(pid, launcher)
    selfcheck.wait_gone(child, None)

    master, slave = os.openpty()
    try:
        shell = procs.start([sys.executable, "-c", TERMINAL_SHELL, os.ttyname(slave), sys.executable, "-m", "incr",
                             "--store", store, "restore", "--detach"])
        said = read_terminal(master, b"restore exited").decode()
        assert "restore exited 0" in said, said
        restored = procs.track(int(re.findall(r"^(\d+)\r?$", said, re.M)[0]))
        procs.track(int(Path(f"/proc/{restored}/task/{restored}/children").read_text().split()[0]))
        tty_of_shell = int(stat_fields(shell.pid)[4])
        assert tty_of_shell != 0, "the shell has the terminal"
    finally:
        os.close(master)                               # the terminal goes away: hangup
        os.close(slave)
    assert shell.wait(timeout=selfcheck.TIMEOUT) == -signal.SIGHUP
    fields = stat_fields(restored)
    pgrp, session, tty_nr = int(fields[2]), int(fields[3]), int(fields[4])
    assert session not in (shell.pid, os.getsid(0), restored), "a session of its own, led by no job process"
    assert pgrp == session and tty_nr == 0, "its group is that session's; no controlling terminal"
    go.touch()
    status = wait_exit(restored, timeout=selfcheck.TIMEOUT)
    selfcheck.assert_passed(selfcheck.Outcome(pid=restored, status=status, lines=out.read_text().splitlines()))


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_a_job_led_from_outside_gets_a_session_of_its_own_in_a_new_pid_namespace(
        cprog, tmp_path: Path, store: Path, procs: Procs, mode: str) -> None:
    out, ready, go = tmp_path / "out.txt", tmp_path / "ready", tmp_path / "go"
    launcher = procs.start(["bash", "-c", f"'{cprog('session')}' '{out}' '{ready}' '{go}'; true"])
    pid = procs.track(read_pid(ready))
    child = int(Path(f"/proc/{pid}/task/{pid}/children").read_text().split()[0])
    selfcheck.dump(store, pid, mode)
    selfcheck.wait_gone(pid, launcher)
    selfcheck.wait_gone(child, None)
    restored = procs.track(int(ok(incr(store, "restore", "--detach", "--new-pidns")).stdout))
    init = int(stat_fields(restored)[1])
    inside = {k: int(v.split()[-1]) for k, v in (line.split(":", 1) for line in
                                                 Path(f"/proc/{restored}/status").read_text().splitlines())
              if k in ("NSpid", "NSpgid", "NSsid")}
    assert inside == {"NSpid": pid, "NSpgid": 1, "NSsid": 1}, "in the session and group of the namespace's init"
    assert int(stat_fields(restored)[3]) == init != os.getsid(0)
    go.touch()
    status = wait_exit(init, timeout=selfcheck.TIMEOUT)
    selfcheck.assert_passed(selfcheck.Outcome(pid=restored, status=status, lines=out.read_text().splitlines()))


# ---------------------------------------------------------------- the job itself still running

def still_running(pid: int, how: str) -> str:
    return (f"incr restore: error: cannot restore: the job is still running: PID {pid} (appender) {how}; "
            f"end it first (kill {pid}), then run restore again\n")


def test_restore_is_refused_while_the_job_or_a_restored_copy_runs(cprog, tmp_path: Path, store: Path,
                                                                  procs: Procs) -> None:
    path = tmp_path / "out.log"
    pid, job = start_writer(cprog, tmp_path, procs, path, 0)
    ok(incr(store, "checkpoint", pid))
    for extra in ((), ("--new-pidns",)):
        res = incr(store, "restore", "--detach", *extra)
        assert res.returncode == 1 and res.stderr == still_running(pid, "is the very process that was checkpointed")

    kill_and_reap(pid, job)
    copy = procs.track(int(ok(incr(store, "restore", "--detach")).stdout))
    for extra in ((), ("--new-pidns",)):
        res = incr(store, "restore", "--detach", *extra)
        assert res.returncode == 1 and res.stderr == still_running(
            copy, f"is a restored copy of it and has {path} open for writing"), res.stderr
    kill_and_reap(copy, None)

    holder = procs.start([cprog("pidholder"), tmp_path / "held", pid])   # an unrelated process gets the PID
    read_pid(tmp_path / "held")
    procs.track(pid)
    res = incr(store, "restore", "--detach")
    assert res.returncode == 1 and "--new-pidns" in res.stderr and f"PID {pid} is in use by PID {pid} (pidholder)" \
        in res.stderr, res.stderr
    restored = procs.track(int(ok(incr(store, "restore", "--detach", "--new-pidns")).stdout))
    init = int(stat_fields(restored)[1])             # the new PID namespace's, which ends with the job
    (tmp_path / "go").touch()
    status = wait_exit(init, timeout=selfcheck.TIMEOUT)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, (status, verdict(tmp_path))
    selfcheck.assert_passed(selfcheck.Outcome(pid=restored, status=status, lines=verdict(tmp_path)))
    assert path.read_bytes() == job_lines(1, N)
    holder.kill()


NON_REAPING_PARENT = r"""
import os, signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
child = os.fork()
if child == 0:
    os.execv(sys.argv[2], sys.argv[2:])
signal.sigwait([signal.SIGUSR1])               # told to: only now is the child reaped
os.waitpid(child, 0)
with open(sys.argv[1], "w") as f:
    f.write("reaped\n")
signal.sigwait([signal.SIGUSR1])
"""


def test_a_pid_held_by_the_jobs_own_unreaped_zombie_says_so(cprog, tmp_path: Path, store: Path,
                                                           procs: Procs) -> None:
    """After `checkpoint --kill` the job is a zombie until its parent reaps it: a restore waits a
    moment, then says who has not reaped it; once reaped, the restore works."""
    ready, reaped = tmp_path / "ready", tmp_path / "reaped"
    parent = procs.start([sys.executable, "-c", NON_REAPING_PARENT, reaped, cprog("idle"), "1", "zero", ready])
    pid = read_pid(ready)
    procs.track(pid)
    ok(incr(store, "checkpoint", pid, "--kill"))
    res = incr(store, "restore", "--detach")
    comm = Path(sys.executable).name[:15]
    assert res.returncode == 1 and res.stderr == (
        f"incr restore: error: cannot restore: PID {pid} (idle) is a zombie of PID {parent.pid} ({comm}) (its "
        f"parent has not reaped it): make PID {parent.pid} reap it (wait for it) or end PID {parent.pid} (kill "
        f"{parent.pid}), then run restore again; or restore with --new-pidns\n"), res.stderr
    parent.send_signal(signal.SIGUSR1)
    wait_until(lambda: reaped.exists() and reaped.read_text() == "reaped\n", "the parent to reap the job")
    restored = procs.track(int(ok(incr(store, "restore", "--detach")).stdout))
    assert restored == pid
