"""Pseudo-terminals a job made (engine/pty.py), with a real program not ours: util-linux
`script`, which runs its command on a pty it opened with openpty(3), the command's session
having it as its controlling terminal.  Checkpointed (also incrementally) with --kill while the
command runs, restored: the command's own report of its terminal (isatty, the same ttyname,
session leader, foreground group, /dev/tty) and the typescript `script` writes from the master are identical to an
uninterrupted run's (but the typescript's first and last lines, which carry the time)."""

from __future__ import annotations

import fcntl
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import selfcheck

from conftest import Procs, checkpoint_then_kill, incr, line_count, ok, run_killed, wait_exit, wait_until

COMMAND = r"""
import os, sys, time
out, gate = sys.argv[1], sys.argv[2]
first = os.ttyname(0)                  # (its index may differ between runs: others open ptys too)
with open(out, "w") as f:
    for i in range(20):
        if i == 10:
            while not os.path.exists(gate):
                sum(range(1000))
        f.write(f"{i} {os.isatty(0)} {os.ttyname(0) == first} {os.getsid(0) == os.getpid()} "
                f"{os.tcgetpgrp(0) == os.getpgrp()} {open('/dev/tty', 'w').close() is None}\n")
        f.flush()
        print("line", i, flush=True)
        time.sleep(0.02)
"""


#: A `script` session started: it, its command's output, its typescript.
Started = tuple[subprocess.Popen[bytes], Path, Path]


def _run(tmp_path: Path, procs: Procs, tag: str, gate: Path) -> Started:
    job_py = tmp_path / "command.py"
    job_py.write_text(COMMAND)
    out, typescript = tmp_path / f"{tag}.txt", tmp_path / f"{tag}.typescript"
    script = shutil.which("script")
    assert script, "util-linux's script is required (Debian's bsdutils)"
    # `exec`: script runs the command through $SHELL -c, and dash (CI's /bin/sh) forks rather
    # than execs a lone command, which would leave the shell, not the command, as session leader
    p = procs.start([script, "-qfec", f"exec {sys.executable} {job_py} {out} {gate}", typescript])
    return p, out, typescript


def _body(typescript: Path) -> list[str]:
    return typescript.read_text(errors="replace").splitlines()[1:-1]


def _restored_as_uninterrupted(start: Callable[[str, Path], Started],
                               ready: Callable[[subprocess.Popen[bytes], Path], bool], dump: str, store: Path,
                               procs: Procs, tmp_path: Path) -> tuple[str, str]:
    """`start(tag, gate)` (a `script` session: it, its command's output, its typescript) run to its end
    ungated, then gated, checkpointed (`dump`) once `ready(job, output)`, killed and restored: the
    command's output and the typescript (but its lines carrying the time) are the uninterrupted
    run's.  The uninterrupted output, and what the restore said."""
    opened = tmp_path / "open"
    opened.touch()
    ref, ref_out, ref_ts = start("ref", opened)
    assert ref.wait(timeout=120) == 0
    gate = tmp_path / "gate"
    job, out, ts = start("job", gate)
    wait_until(lambda: ready(job, out), "the command to reach its gate")
    checkpoint_then_kill(store, job, procs, dump)
    gate.touch()
    res = incr(store, "restore", timeout=120)        # (until the restored job ends)
    assert res.returncode == 0, res.stderr
    assert out.read_bytes() == ref_out.read_bytes()
    assert _body(ts) == _body(ref_ts)
    return ref_out.read_text(), res.stderr


@pytest.mark.parametrize("dump", ["kill", "incremental"])
def test_script_session_on_its_pty_restored_identically(dump: str, tmp_path: Path, store: Path,
                                                         procs: Procs) -> None:
    ref_out, said = _restored_as_uninterrupted(lambda tag, gate: _run(tmp_path, procs, tag, gate),
                                               lambda _, out: line_count(out) >= 10, dump, store, procs, tmp_path)
    assert ref_out.startswith("0 True True True True True\n"), ref_out
    assert "controlling terminal" not in said, said      # it is the job's own: given back


READER = r"""
import os, sys, time
out, gate = sys.argv[1], sys.argv[2]
with open(out, "w") as f:
    f.write(f"waiting {os.isatty(0)}\n")
    f.flush()
    while not os.path.exists(gate):
        time.sleep(0.01)
    f.write(f"read {sys.stdin.buffer.read()!r}\n")
"""
TYPED_AHEAD = b"alpha\nbeta\ngamma\n"


def _typed_ahead(tmp_path: Path, procs: Procs, tag: str, gate: Path) -> Started:
    """`script` running a command that reads its terminal only once `gate` exists, three lines typed
    ahead into it (script's stdin, then its end)."""
    reader = tmp_path / "reader.py"
    reader.write_text(READER)
    out, typescript = tmp_path / f"{tag}.txt", tmp_path / f"{tag}.typescript"
    script = shutil.which("script")
    assert script, "util-linux's script is required (Debian's bsdutils)"
    p = procs.start([script, "-qfec", f"exec {sys.executable} {reader} {out} {gate}", typescript],
                    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    assert p.stdin is not None
    p.stdin.write(TYPED_AHEAD)
    p.stdin.close()
    return p, out, typescript


def _typed_waiting(script_pid: int) -> int:
    """The bytes typed into the terminal of script's command, waiting to be read (FIONREAD on its slave)."""
    kids = Path(f"/proc/{script_pid}/task/{script_pid}/children").read_text().split()
    if not kids:
        return 0
    fd = os.open(f"/proc/{kids[0]}/fd/0", os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        return int(struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, bytes(4)))[0])
    finally:
        os.close(fd)


@pytest.mark.parametrize("dump", ["kill", "incremental"])
def test_lines_typed_ahead_into_scripts_terminal_are_read_after_restore(dump: str, tmp_path: Path, store: Path,
                                                                         procs: Procs) -> None:
    # A real program's pty with typed-ahead lines waiting in its line discipline (pty.py): the
    # command reads them after restore, as in an uninterrupted run, and so does the typescript.
    ref_out, _ = _restored_as_uninterrupted(
        lambda tag, gate: _typed_ahead(tmp_path, procs, tag, gate),
        lambda job, out: out.exists() and _typed_waiting(job.pid) == len(TYPED_AHEAD), dump, store, procs, tmp_path)
    assert ref_out == f"waiting True\nread {TYPED_AHEAD!r}\n", ref_out


@pytest.mark.parametrize("program", ["fd_pty_queued", "fd_pty_flow"])
def test_what_waits_in_a_pty_stays_when_checkpoints_are_killed(program: str, cprog: Callable[..., Path],
                                                                tmp_path: Path, store: Path, procs: Procs) -> None:
    # A line discipline is read out and put back, a packet-mode status read and made again, a
    # stopped terminal started and stopped again (pty.py): killed checkpoints, at seeded random
    # instants, and whole ones leave the live job every byte in order, nothing echoed, each
    # terminal stopped or not as it was, each status waiting.
    work = tmp_path / "work"
    work.mkdir()
    pid, _, out, go = selfcheck.start(cprog(f"conformance/{program}"), tmp_path, procs, work)
    t0 = time.perf_counter()
    ok(incr(store, "checkpoint", pid))
    span = time.perf_counter() - t0
    rng = random.Random(20261204)
    killed = 0
    for _ in range(10):
        killed += run_killed(store, ("checkpoint",), pid, rng.uniform(0.0, span)).returncode == -signal.SIGKILL
    ok(incr(store, "checkpoint", pid))
    assert killed >= 5, f"only {killed} of 10 checkpoints were killed mid-run"
    go.touch()
    assert wait_exit(pid) == 0, out.read_text()
    lines = out.read_text().splitlines()
    assert len(lines) > 10 and all(line.startswith("ok ") for line in lines), lines


PACKET_PTY = r"""
import fcntl, os, struct, sys, termios, time
if sys.argv[1] == "lone":                                   # a master whose slave was never opened
    m = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY)
    fcntl.ioctl(m, 0x40045431, struct.pack("i", 0))         # TIOCSPTLCK: unlocked
    s = m                                                   # (TCSETS on a master sets its slave's)
else:
    m, s = os.openpty()
fcntl.ioctl(m, 0x5420, struct.pack("i", 1))                 # TIOCPKT
attrs = termios.tcgetattr(s)
attrs[0] &= ~termios.IXON                                   # a status change the master has not read
termios.tcsetattr(s, termios.TCSANOW, attrs)
if sys.argv[1] == "data":
    os.write(s, b"out\n")
    while struct.unpack("i", fcntl.ioctl(m, 0x541B, bytes(4)))[0] == 0:
        time.sleep(0.001)
print("ready", flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("waiting", ["status", "data", "lone"])
def test_a_pty_in_packet_mode_is_refused_only_with_bytes_waiting(waiting: str, tmp_path: Path, store: Path,
                                                                  procs: Procs) -> None:
    # In packet mode the master reads as ready for a status change alone (pty.py): that is no
    # byte waiting, and it is made again (fd_pty_flow restores it) where incr holds a slave to make
    # it with; bytes are refused (a status read first would be lost), and so is a status on a
    # master whose slave no process opened (opening one, then closing it, would change the pty).
    job = procs.start([sys.executable, "-c", PACKET_PTY, waiting], stdout=subprocess.PIPE)
    assert job.stdout is not None and job.stdout.readline() == b"ready\n"
    res = incr(store, "checkpoint", job.pid)
    if waiting == "status":
        ok(res)
    else:
        assert res.returncode == 1, res.stderr
        lines = res.stderr.strip().splitlines()
        words = "packet mode" if waiting == "data" else "status change waits to be read"
        assert len(lines) == 1 and f"PID {job.pid}" in lines[0] and words in lines[0], lines
    assert job.poll() is None
