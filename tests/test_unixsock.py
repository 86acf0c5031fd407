"""Unix socket pairs beyond the conformance corpus (engine/unixsock.py): every socket option a
program can read back, on both ends of each type, a peek offset into queued data, shut-down ends
of each type; and descriptors in flight deeper in a queue than a running job's first message
(tests/programs/sockopts.c); an option value a new socket cannot take refused at the checkpoint."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest
import selfcheck

from conftest import Procs
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
