"""TCP and UDP sockets of a job (engine/inet.py, engine/netlock.py): connections between job
processes with full queues both ways, over IPv4 and IPv6, listeners, bound and connected UDP
sockets with datagrams queued from several sources, through a checkpoint and a restore
(tests/programs/tcpjob.c); half-closed connections in each state a loopback pair can hold
(tests/programs/tcphalf.c); an incr killed with a connection in repair mode and the network lock
on leaves the job whole once the next command has run; what is not supported yet is refused in
one line, the job running on."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import selfcheck

from conftest import Procs, incr, ok, read_pid, wait_exit, wait_until
from incr.engine import netlock

pytestmark = pytest.mark.skipif(netlock.unavailable() != "", reason=f"network lock: {netlock.unavailable()}")


def _nft_tables() -> list[str]:
    res = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True)
    return [line.split()[-1] for line in res.stdout.splitlines() if netlock.TABLE_PREFIX in line]


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_connections_listeners_and_udp_sockets_come_back(mode: str, cprog: Callable[..., Path], tmp_path: Path,
                                                          store: Path, procs: Procs) -> None:
    outcome = selfcheck.run(cprog("tcpjob"), tmp_path, store, procs, mode)
    selfcheck.assert_passed(outcome)
    assert not _nft_tables()


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_half_closed_connections_come_back_with_their_bytes_and_ends_of_file(
        mode: str, cprog: Callable[..., Path], tmp_path: Path, store: Path, procs: Procs) -> None:
    outcome = selfcheck.run(cprog("tcphalf"), tmp_path, store, procs, mode)
    selfcheck.assert_passed(outcome)
    assert not _nft_tables()


def _hold_tables() -> list[str]:
    return netlock.held()


ECHO = """
import os, socket, sys, time
port, ready, go = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.create_connection(("127.0.0.1", port))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
s.sendall(b"hello\\n")
with open(ready + ".tmp", "w") as f:
    f.write(f"{os.getpid()}\\n")
os.rename(ready + ".tmp", ready)
while not os.path.exists(go):
    time.sleep(0.001)
f = s.makefile("rb")
for line in f:
    if line == b"end\\n":
        break
    s.sendall(line.upper())
s.close()
"""


def _echo_job(tmp_path: Path, procs: Procs, listener: socket.socket) -> tuple[int, Path, socket.socket]:
    """A job connected to `listener` (this process: a peer outside the job) that, once GO exists,
    sends each line it reads back in capitals until "end"; (its PID, GO, our end)."""
    ready, go = tmp_path / "ready", tmp_path / "go"
    procs.start([sys.executable, "-c", ECHO, str(listener.getsockname()[1]), ready, go])
    peer, _ = listener.accept()
    pid = procs.track(read_pid(ready))
    assert peer.recv(6) == b"hello\n"
    return pid, go, peer


def _read_to_eof(sock: socket.socket) -> bytes:
    sock.settimeout(60)
    got = b""
    while chunk := sock.recv(1 << 16):
        got += chunk
    return got


def test_a_connection_to_a_peer_outside_the_job_comes_back_with_tcp_established(
        tmp_path: Path, store: Path, procs: Procs) -> None:
    """checkpoint --kill --tcp-established: the job's ports stay locked until the restore (`incr
    check` says so), so that the peer sees only a delay: what it sent before the checkpoint, and
    while the job was gone, arrives once and in order, answered; no reset."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        pid, go, peer = _echo_job(tmp_path, procs, listener)
        with peer:
            peer.sendall(b"one\n")                         # unread by the job at the checkpoint
            refused = incr(store, "checkpoint", pid, "--kill")
            assert refused.returncode == 1 and "--tcp-established" in refused.stderr, refused.stderr
            ok(incr(store, "checkpoint", pid, "--kill", "--tcp-established", timeout=selfcheck.TIMEOUT))
            selfcheck.wait_gone(pid, None)
            assert _hold_tables() == [f"{netlock.HOLD_PREFIX}{pid}"]
            assert json.loads(ok(incr(None, "check", "--json")).stdout)["network_locks_held"] == _hold_tables()
            peer.sendall(b"two\n")                         # held back by the lock: no reset comes
            peer.settimeout(0.3)
            with pytest.raises(TimeoutError):
                peer.recv(1)
            res = ok(incr(store, "restore", "--detach", timeout=selfcheck.TIMEOUT))
            assert procs.track(int(res.stdout.split()[-1])) == pid
            assert not _hold_tables()
            go.touch()
            peer.sendall(b"three\nend\n")
            assert _read_to_eof(peer) == b"ONE\nTWO\nTHREE\n"
            assert peer.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
        assert os.WEXITSTATUS(wait_exit(pid, timeout=selfcheck.TIMEOUT)) == 0


def test_a_checkpoint_killed_while_holding_the_lock_for_outside_peers_leaves_it_to_the_next_command(
        tmp_path: Path, store: Path, procs: Procs) -> None:
    """Killed after the ports were locked for the restore and before the job was killed: the job runs
    on, and the next command on it takes the lock out; the connection carries on."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        pid, go, peer = _echo_job(tmp_path, procs, listener)
        with peer:
            killed = incr(store, "checkpoint", pid, "--kill", "--tcp-established", env={"INCR_FAULT": "frozen"},
                          timeout=selfcheck.TIMEOUT)
            assert killed.returncode == -signal.SIGKILL, killed.stderr
            assert _hold_tables(), "no lock held: the test proves nothing"
            ok(incr(store, "checkpoint", pid, "--tcp-established", timeout=selfcheck.TIMEOUT))
            assert not _hold_tables() and not _nft_tables()
            go.touch()
            peer.sendall(b"still here\nend\n")
            assert _read_to_eof(peer) == b"STILL HERE\n"
        assert os.WEXITSTATUS(wait_exit(pid, timeout=selfcheck.TIMEOUT)) == 0


SEGMENTS = """
import os, socket, sys, time
out, ready, go = sys.argv[1:4]
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(2)
c = socket.socket(); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 1000)
c.connect(l.getsockname()); a, _ = l.accept()
a.setsockopt(socket.IPPROTO_TCP, socket.TCP_WINDOW_CLAMP, 40000)
def now():
    return [(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG),
             s.getsockopt(socket.IPPROTO_TCP, socket.TCP_WINDOW_CLAMP)) for s in (c, a)]
before = now()
with open(ready + ".tmp", "w") as f:
    f.write(f"{os.getpid()}\\n")
os.rename(ready + ".tmp", ready)
while not os.path.exists(go):
    time.sleep(0.001)
with open(out, "w") as f:
    f.write(f"{before} {now()}\\n".replace(", ", ","))
"""


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_segment_size_and_window_clamp_read_back_as_before(mode: str, tmp_path: Path, store: Path,
                                                           procs: Procs) -> None:
    """TCP_MAXSEG (the segment size, here negotiated down by the client's own MSS) and
    TCP_WINDOW_CLAMP (the kernel's on one end, the program's on the other) read the same after a
    restore as before."""
    script = tmp_path / "segments.py"
    script.write_text(f"#!{sys.executable}\n{SEGMENTS}")
    script.chmod(0o755)
    outcome = selfcheck.run(script, tmp_path, store, procs, mode)
    before, _, after = outcome.lines[0].partition(" ")
    assert before == after, outcome.lines


OWNED = """
import os, socket, sys, time
os.setgroups([]); os.setresgid(65534, 65534, 65534); os.setresuid(65534, 65534, 65534)
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(2)
c = socket.socket(); c.connect(l.getsockname()); a, _ = l.accept()
u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); u.bind(("::1", 0))
os.write(1, b"ready\\n")
os.close(1)
os.open("/dev/null", os.O_WRONLY)
time.sleep(600)
"""


def _socket_owners(pid: int) -> dict[int, tuple[int, int]]:
    """Each socket descriptor of `pid` -> its owner (the socket inode's uid and gid)."""
    out = {}
    for name in os.listdir(f"/proc/{pid}/fd"):
        path = f"/proc/{pid}/fd/{name}"
        if os.readlink(path).startswith("socket:"):
            st = os.stat(path)
            out[int(name)] = (st.st_uid, st.st_gid)
    return out


def test_sockets_keep_their_owner(tmp_path: Path, store: Path, procs: Procs) -> None:
    """The owner of each socket (its maker's fsuid, which `ss -e` shows and owner matches of a
    firewall test) is the job's user after a restore, not root's."""
    job = procs.start([sys.executable, "-c", OWNED], stdout=subprocess.PIPE)
    assert job.stdout is not None and job.stdout.readline() == b"ready\n"
    job.stdout.close()
    pid = procs.track(job.pid)
    before = _socket_owners(pid)
    assert len(before) == 4 and set(before.values()) == {(65534, 65534)}, before
    ok(incr(store, "checkpoint", pid, "--kill", timeout=selfcheck.TIMEOUT))
    selfcheck.wait_gone(pid, job)
    restored = procs.track(int(ok(incr(store, "restore", "--detach", timeout=selfcheck.TIMEOUT)).stdout.split()[-1]))
    assert _socket_owners(restored) == before


CLOSING_JOB = """
import os, signal, socket, sys, time
out, ready, go = sys.argv[1:4]
here = os.path.dirname(ready)
def wait_for(name):
    while not os.path.exists(os.path.join(here, name)):
        time.sleep(0.001)
def state(s):
    return s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(1)
c = socket.create_connection(l.getsockname()); a, _ = l.accept()
with open(os.path.join(here, "port"), "w") as f:
    f.write(f"{c.getsockname()[1]} {a.getsockname()[1]}")
wait_for("locked")
c.shutdown(socket.SHUT_WR); a.shutdown(socket.SHUT_WR)      # both FINs held back: FIN wait 1 each
with open(os.path.join(here, "shut"), "w"):
    pass
wait_for("crossing")
deadline = time.monotonic() + 30
while (state(c), state(a)) != (4, 11) and time.monotonic() < deadline:   # the client's FIN sent again
    time.sleep(0.001)
before = (state(c), state(a))
with open(ready + ".tmp", "w") as f:
    f.write(f"{os.getpid()}\\n")
os.rename(ready + ".tmp", ready)
wait_for("go")
lines = ["ok FIN wait 1 and closing before" if before == (4, 11) else f"BAD states before {before}"]
for name, s in (("client", c), ("server", a)):
    s.settimeout(30)
    try:
        eof = s.recv(1) == b""
    except OSError as exc:
        eof = exc
    lines.append(("ok" if eof is True else "BAD") + f" {name} reads its end of file ({eof})")
    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    lines.append(("ok" if err == 0 else "BAD") + f" {name} saw no reset (SO_ERROR {err})")
    try:
        s.send(b"x", socket.MSG_NOSIGNAL)
        lines.append(f"BAD {name} could send after shutting down")
    except BrokenPipeError:
        lines.append(f"ok {name} cannot send, shut down as before")
with open(out, "w") as f:
    f.write("\\n".join(lines) + "\\n")
"""


def _nft(commands: str) -> None:
    subprocess.run(["nft", "-f", "-"], input=commands, text=True, check=True)


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_a_connection_closing_on_one_end_comes_back(mode: str, tmp_path: Path, store: Path,
                                                        procs: Procs) -> None:
    """Closing (shut down, the peer's FIN received before its own was acknowledged) on the server's
    end, FIN wait 1 on the client's: made with an nftables table of the test's that holds back both
    FINs, then lets the client's through again, and nothing of the server's.  (Both ends closing
    needs the two first FINs to cross, which the loopback never does.)  Restored, each end reads
    its end of file, cannot send, and saw no reset."""
    script = tmp_path / "closing.py"
    script.write_text(f"#!{sys.executable}\n{CLOSING_JOB}")
    script.chmod(0o755)
    out, ready, go = tmp_path / "out.txt", tmp_path / "ready", tmp_path / "go"
    table = "incr_test_closing"
    job = procs.start([script, out, ready, go])
    try:
        wait_until(lambda: (tmp_path / "port").exists(), "the job's connection")
        client, server = (tmp_path / "port").read_text().split()
        _nft(f"table inet {table} {{\n  chain out {{ type filter hook output priority 0; policy accept; "
             f"tcp sport {client} drop; tcp dport {client} drop; }}\n}}\n")
        (tmp_path / "locked").touch()
        wait_until(lambda: (tmp_path / "shut").exists(), "the job to shut both ends down")
        _nft(f"flush chain inet {table} out\n"
             f"add rule inet {table} out tcp sport {server} tcp dport {client} drop\n"
             f"add rule inet {table} out tcp sport {client} tcp flags & (fin | syn | rst | psh) == 0 drop\n")
        (tmp_path / "crossing").touch()
        pid = procs.track(read_pid(ready))
        selfcheck.dump(store, pid, mode)
        selfcheck.wait_gone(pid, job)
    finally:
        subprocess.run(["nft", "delete", "table", "inet", table], capture_output=True, check=False)
    selfcheck.assert_passed(selfcheck.restore_and_check(store, procs, out, go))
    assert not _nft_tables()


def _udp_peek_offsets(pids: list[int]) -> list[int]:
    """SO_PEEK_OFF of every UDP socket of `pids` (read through a copy of each, pidfd_getfd)."""
    from incr.engine import ptrace as pt

    out = []
    for pid in pids:
        for name in os.listdir(f"/proc/{pid}/fd"):
            if not os.readlink(f"/proc/{pid}/fd/{name}").startswith("socket:"):
                continue
            pidfd = os.pidfd_open(pid)
            try:
                sock = socket.socket(fileno=pt.pidfd_getfd(pidfd, int(name)))
            finally:
                os.close(pidfd)
            with sock:
                if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_DGRAM:
                    out.append(sock.getsockopt(socket.SOL_SOCKET, 42))
    return out


@pytest.mark.parametrize("point", ["udp-peek", "tcp-repair"])
def test_an_incr_killed_mid_read_leaves_the_job_whole_after_the_next_command(
        point: str, cprog: Callable[..., Path], tmp_path: Path, store: Path, procs: Procs) -> None:
    """SIGKILLed with a UDP socket's peek offset moved, or with one socket in repair mode and the
    lock on: what it changed stays (the job's connection sends nothing meanwhile), `incr check`
    names the lock, and the next checkpoint takes it all out; the job, never restored, then
    checks its own connections, which carry on."""
    pid, job, out, go = selfcheck.start(cprog("tcpjob"), tmp_path, procs)
    tree = selfcheck.job_pids(pid)
    for p in tree:
        procs.track(p)
    assert set(_udp_peek_offsets(tree)) == {-1}
    killed = incr(store, "checkpoint", pid, env={"INCR_FAULT": point}, timeout=selfcheck.TIMEOUT)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    left = _nft_tables()
    if point == "tcp-repair":
        assert left, "the lock of the killed incr is gone already: the test proves nothing"
        report = json.loads(ok(incr(None, "check", "--json")).stdout)
        assert report["network_locks_left_behind"] == left
    else:
        assert set(_udp_peek_offsets(tree)) != {-1}, "no peek offset left moved: the test proves nothing"
    ok(incr(store, "checkpoint", pid, timeout=selfcheck.TIMEOUT))
    assert not _nft_tables()
    assert set(_udp_peek_offsets(tree)) == {-1}
    go.touch()
    status = wait_exit(job.pid, timeout=selfcheck.TIMEOUT)
    lines = out.read_text().splitlines()
    assert lines and not [line for line in lines if not line.startswith("ok ")], lines
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, (status, lines)


REFUSED = r"""
import os, socket, sys, time
mode, ready = sys.argv[1], sys.argv[2]
keep = []
if mode == "backlog":               # the test connects to it, from outside the job
    l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(4)
    keep.append(l)
    with open(ready + ".port", "w") as f:
        f.write(str(l.getsockname()[1]))
elif mode == "sent before accepted":
    l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(4)
    c = socket.create_connection(l.getsockname()); c.sendall(b"x")
    keep += [l, c]
elif mode == "outside":
    keep.append(socket.create_connection(("127.0.0.1", int(sys.argv[3]))))
elif mode == "shut down before accepted":
    l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(4)
    c = socket.create_connection(l.getsockname()); c.shutdown(socket.SHUT_WR)
    keep += [l, c]
elif mode == "empty datagram":
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0)); u.sendto(b"", u.getsockname())
    keep.append(u)
elif mode == "raw":
    keep.append(socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))
with open(ready + ".tmp", "w") as f:
    f.write(f"{os.getpid()}\n")
os.rename(ready + ".tmp", ready)
time.sleep(600)
"""


@pytest.mark.parametrize(("mode", "why"), [
    ("backlog", r"1 connection\(s\) from outside the job wait in its accept queue"),
    ("sent before accepted", r"its connection waits in the accept queue of fd \d+ \(TCP socket [0-9.:]+\) with "
                             r"data sent on it"),
    ("outside", r"its peer is not a socket of the job: a connection leading out of the job is checkpointed only "
                r"with --tcp-established"),
    ("shut down before accepted", r"its connection waits in the accept queue of fd \d+ \(TCP socket [0-9.:]+\) "
                                  r"with its end shut down"),
    ("empty datagram", r"an empty datagram is queued"),
    ("raw", r"sockets of type 3, protocol 1 \(raw, SCTP, \.\.\.\) are not supported yet"),
])
def test_what_is_not_supported_yet_is_refused_in_one_line(mode: str, why: str, tmp_path: Path, store: Path,
                                                           procs: Procs) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        ready = tmp_path / "ready"
        procs.start([sys.executable, "-c", REFUSED, mode, ready, str(server.getsockname()[1])])
        pid = procs.track(read_pid(ready))
        outside = []
        if mode == "backlog":
            outside.append(socket.create_connection(("127.0.0.1", int((tmp_path / "ready.port").read_text()))))
        res = incr(store, "checkpoint", pid)
        for s in outside:
            s.close()
        assert res.returncode == 1, res.stderr
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1, lines
        assert re.search(why, lines[0]), lines[0]
        assert f"cannot checkpoint PID {pid}: fd " in lines[0]
        assert os.path.exists(f"/proc/{pid}") and not _nft_tables()


@pytest.mark.parametrize("through", ["libnftables", "the nft command"])
def test_the_lock_holds_back_every_packet_of_the_ports_until_it_goes(through: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """What the lock is for: a byte sent on a locked connection arrives only once it is lifted;
    taken in incr's process through libnftables, or by the nft command where that will not load."""
    from incr.engine.leftovers import NoJournal

    monkeypatch.setattr(netlock, "_library", None)
    if through == "the nft command":
        def unloadable() -> None:
            raise OSError("libnftables.so.1: cannot open shared object file")
        monkeypatch.setattr(netlock, "_Library", unloadable)

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
        with client, server:
            with netlock.locked({client.getsockname()[1]}, NoJournal(), os.getpid()):
                assert _nft_tables() == [f"{netlock.TABLE_PREFIX}{os.getpid()}"]
                client.sendall(b"x")
                server.settimeout(0.3)
                with pytest.raises(TimeoutError):
                    server.recv(1)
            assert not _nft_tables()
            server.settimeout(30)          # retransmitted once the lock is gone
            assert server.recv(1) == b"x"
    assert (netlock._library is not None) == (through == "libnftables")
