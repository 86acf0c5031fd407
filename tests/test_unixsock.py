"""Unix socket pairs beyond the conformance corpus (engine/unixsock.py): every socket option a
program can read back, on both ends of each type, a peek offset into queued data, shut-down ends
of each type; and descriptors in flight deeper in a queue than a running job's first message
(tests/programs/sockopts.c); an option value a new socket cannot take refused at the checkpoint.
A datagram or seqpacket pair's queue is only peeked, never taken out of the job's socket, unless it
holds an empty message no peek can see: checkpoints SIGKILLed at seeded random instants leave
every message where it was."""

from __future__ import annotations

import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import selfcheck

from conftest import Procs, incr, ok, run_killed, wait_exit
from incr.engine import unixsock
from incr.engine.errors import Unsupported
from incr.proto import image_pb2


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_options_and_shutdown_round_trip(mode: str, cprog: Callable[..., Path], tmp_path: Path, store: Path,
                                         procs: Procs) -> None:
    outcome = selfcheck.run(cprog("sockopts"), tmp_path, store, procs, mode, "opts")
    selfcheck.assert_passed(outcome)


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_descriptors_in_flight_deep_in_a_queue_come_back(mode: str, cprog: Callable[..., Path], tmp_path: Path,
                                                         store: Path, procs: Procs) -> None:
    outcome = selfcheck.run(cprog("sockopts"), tmp_path, store, procs, mode, "deep")
    selfcheck.assert_passed(outcome)


def test_option_a_new_socket_cannot_take_is_refused() -> None:
    # The kernel doubles what SO_RCVBUF is given: no program can have an odd size set.
    odd = image_pb2.SocketOption(name="SO_RCVBUF", value=(300001).to_bytes(4, "little"))
    fine = image_pb2.SocketOption(name="SO_RCVLOWAT", value=(9).to_bytes(4, "little"))
    unixsock.check_options(7, "fd 3 (socket:[9])", socket.SOCK_STREAM, [fine])
    with pytest.raises(Unsupported, match=r"^cannot checkpoint PID 7: fd 3 \(socket:\[9\]\): socket option "
                       r"SO_RCVBUF 300001 \(reads back 300000\)"):
        unixsock.check_options(7, "fd 3 (socket:[9])", socket.SOCK_STREAM, [fine, odd])


@pytest.mark.parametrize("mode", selfcheck.MODES)
@pytest.mark.parametrize("hidden", [False, True], ids=["seen", "hidden-empty"])
def test_datagram_and_seqpacket_queues_come_back_whole(mode: str, hidden: bool, cprog: Callable[..., Path],
                                                       tmp_path: Path, store: Path, procs: Procs) -> None:
    args = ("queues", "hidden") if hidden else ("queues",)
    selfcheck.assert_passed(selfcheck.run(cprog("sockopts"), tmp_path, store, procs, mode, *args))


def test_pair_queues_are_read_without_taking_a_message_out(cprog: Callable[..., Path], tmp_path: Path,
                                                           store: Path, procs: Procs) -> None:
    # The point is on the drain's path only: a checkpoint that reaches it took messages out.
    pid, _, out, go = selfcheck.start(cprog("sockopts"), tmp_path, procs, "queues")
    ok(incr(store, "checkpoint", pid, env={"INCR_FAULT": "dgram-drained"}))
    rng = random.Random(20261204)
    span = _timed_checkpoint(store, pid)
    killed = 0
    for _ in range(12):
        res = run_killed(store, ("checkpoint",), pid, rng.uniform(0.0, span))
        killed += res.returncode == -signal.SIGKILL
    assert killed >= 6, f"only {killed} of 12 checkpoints were killed mid-run"
    go.touch()
    assert wait_exit(pid) == 0, out.read_text()
    lines = out.read_text().splitlines()
    assert lines and all(line.startswith("ok ") for line in lines), lines


def test_a_queue_with_an_empty_message_no_peek_sees_is_read_out(cprog: Callable[..., Path], tmp_path: Path,
                                                                store: Path, procs: Procs) -> None:
    pid, _, _, _ = selfcheck.start(cprog("sockopts"), tmp_path, procs, "queues", "hidden")
    res = incr(store, "checkpoint", pid, env={"INCR_FAULT": "dgram-drained"})
    assert res.returncode == -signal.SIGKILL, (res.returncode, res.stderr)


def _timed_checkpoint(store: Path, pid: int) -> float:
    t0 = time.perf_counter()
    ok(incr(store, "checkpoint", pid))
    return time.perf_counter() - t0


CHROOTED_SOCKET = """
import os, socket, sys, time
os.chroot(sys.argv[1]); os.chdir("/")
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.bind("/sock"); s.listen(1)
os.write(1, b"ready\\n")
time.sleep(600)
"""


def test_a_chrooted_process_with_a_socket_bound_to_a_path_is_refused(tmp_path: Path, store: Path,
                                                                     procs: Procs) -> None:
    # The name it bound is relative to its root: a restore binding it would put it elsewhere.
    root = tmp_path / "root"
    root.mkdir()
    job = procs.start([sys.executable, "-c", CHROOTED_SOCKET, root], stdout=subprocess.PIPE)
    assert job.stdout is not None and job.stdout.readline() == b"ready\n"
    res = incr(store, "checkpoint", job.pid)
    assert res.returncode == 1, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and f"PID {job.pid}" in lines[0] and "inside its root directory" in lines[0], lines
    assert job.poll() is None


OWNED_SOCKETS = r"""
import os, signal, socket, sys
report = open(sys.argv[1], "w")                 # (before the ids change: the test's directories are root's)
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
os.setgid(1234); os.setuid(4321)
pair = socket.socketpair()
listener = socket.socket(socket.AF_UNIX)
listener.bind(b"\0incr-test-owners-%d" % os.getpid())
listener.listen(1)
client = socket.socket(socket.AF_UNIX)
client.connect(listener.getsockname())
accepted, _ = listener.accept()
netlink = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
netlink.bind((0, 0))
socks = (*pair, listener, client, accepted, netlink)
def owners():
    report.write(" ".join(f"{os.fstat(s.fileno()).st_uid}:{os.fstat(s.fileno()).st_gid}" for s in socks) + "\n")
    report.flush()
owners()
signal.sigwait({signal.SIGUSR1})
owners()
"""


def test_sockets_come_back_with_their_owners(tmp_path: Path, store: Path, procs: Procs) -> None:
    # A socket's inode is owned by its maker's fsuid and fsgid (fstat shows it); the restore makes
    # the job's as root, then gives each its owner back (fchown).
    import os
    out = tmp_path / "owners"
    job = procs.start([sys.executable, "-c", OWNED_SOCKETS, out])
    deadline = time.monotonic() + 30
    while not (out.exists() and out.read_text().endswith("\n")):
        assert time.monotonic() < deadline and job.poll() is None, "the job did not start"
        time.sleep(0.01)
    assert out.read_text() == " ".join(["4321:1234"] * 6) + "\n"
    ok(incr(store, "checkpoint", job.pid, "--kill"))
    job.wait()
    res = ok(incr(store, "restore", "--detach"))
    pid = procs.track(int(res.stdout.split()[-1]))
    os.kill(pid, signal.SIGUSR1)
    assert wait_exit(pid) == 0
    before, after = out.read_text().splitlines()
    assert after == before, (before, after)
