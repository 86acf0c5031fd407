"""Unix socket pairs beyond the conformance corpus (engine/unixsock.py): every socket option a
program can read back, on both ends of each type, a peek offset into queued data, shut-down ends
of each type; and descriptors in flight deeper in a queue than a running job's first message,
refused with the queue left as it was (tests/programs/sockopts.c); an option value a new socket
cannot take refused at the checkpoint."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest
import selfcheck

from conftest import Procs, incr
from incr.engine import unixsock
from incr.engine.errors import Unsupported
from incr.proto import image_pb2


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_options_and_shutdown_round_trip(mode: str, cprog: Callable[..., Path], tmp_path: Path, store: Path,
                                         procs: Procs) -> None:
    outcome = selfcheck.run(cprog("sockopts"), tmp_path, store, procs, mode, "opts")
    selfcheck.assert_passed(outcome)


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_descriptors_in_flight_deep_in_a_queue_refused(mode: str, cprog: Callable[..., Path], tmp_path: Path,
                                                        store: Path, procs: Procs) -> None:
    pid, job, out, go = selfcheck.start(cprog("sockopts"), tmp_path, procs, "deep")
    steps = [("predump", pid), ("checkpoint", pid)] if mode == "incremental" else [("checkpoint", pid, "--kill")]
    for step in steps:
        res = incr(store, *step, timeout=selfcheck.TIMEOUT)
        if res.returncode:
            break
    assert res.returncode == 1, f"not refused: {res.stdout}{res.stderr}"
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and f"PID {pid}" in lines[0] and "in flight" in lines[0], res.stderr
    assert "SCM_RIGHTS" in lines[0], lines[0]
    assert job.poll() is None, "the refused job died"
    go.touch()
    job.wait(timeout=selfcheck.TIMEOUT)
    outcome = selfcheck.Outcome(pid=pid, status=job.returncode << 8, lines=out.read_text().splitlines())
    selfcheck.assert_passed(outcome)


def test_option_a_new_socket_cannot_take_is_refused() -> None:
    # The kernel doubles what SO_RCVBUF is given: no program can have an odd size set.
    odd = image_pb2.SocketOption(name="SO_RCVBUF", value=(300001).to_bytes(4, "little"))
    fine = image_pb2.SocketOption(name="SO_RCVLOWAT", value=(9).to_bytes(4, "little"))
    unixsock.check_options(7, "fd 3 (socket:[9])", socket.SOCK_STREAM, [fine])
    with pytest.raises(Unsupported, match=r"^cannot checkpoint PID 7: fd 3 \(socket:\[9\]\): socket option "
                       r"SO_RCVBUF 300001 \(reads back 300000\)"):
        unixsock.check_options(7, "fd 3 (socket:[9])", socket.SOCK_STREAM, [fine, odd])
