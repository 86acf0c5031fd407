"""The supervisor's control socket: how other incr commands reach a running supervisor.

One Unix stream socket per supervised job, ``supervisor-PID.sock`` in the
runtime directory (jobstate.runtime_dir(), mode 0700), PID being the job's
root; the socket itself is 0600 and a request is served only from a peer of
the same uid (or root), checked with SO_PEERCRED.  One JSON line each way:

    {"op": "status"}                      -> {"ok": true, "status": {...}}
    {"op": "checkpoint", "kill": false}   -> {"ok": true, "checkpoint": {...}}  (incr list --json fields)
        (optional: "store", the store the asker means; "ghost_limit", bytes, and "external" and
        "tcp_established", true, for this checkpoint)
    any failure                           -> {"ok": false, "error": "one line"}

A supervisor killed with SIGKILL leaves its socket file behind: a connect
that is refused means nobody listens, and whoever finds it so removes it.

Paths are reached through /proc/self/fd/N of the directory: a runtime
directory deep in a scratch tree must not hit sun_path's 108 bytes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from incr.errors import IncrError
from incr.jobstate import ensure_runtime_dir, runtime_dir

log = logging.getLogger(__name__)

PREFIX, SUFFIX = "supervisor-", ".sock"
#: A checkpoint of a big job may take minutes: a client waits this long for the answer.
ANSWER_TIMEOUT = 3600.0
MAX_LINE = 1 << 20

Handler = Callable[[dict[str, Any]], dict[str, Any]]


class ControlError(IncrError):
    """The supervisor could not be reached, or answered with an error."""


def socket_name(pid: int) -> str:
    return f"{PREFIX}{pid}{SUFFIX}"


def socket_path(pid: int) -> Path:
    return runtime_dir() / socket_name(pid)


@contextlib.contextmanager
def _short_path(directory: Path, name: str) -> Iterator[str]:
    """`directory/name` as a path short enough for sun_path, valid while the block runs."""
    dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{dfd}/{name}"
    finally:
        os.close(dfd)


def _connect(pid: int, timeout: float) -> socket.socket | None:
    """A connection to PID's supervisor; None when there is none (a stale socket is removed)."""
    path = socket_path(pid)
    if not path.exists():
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    sock.settimeout(timeout)
    try:
        with _short_path(path.parent, path.name) as short:
            sock.connect(short)
    except (ConnectionRefusedError, FileNotFoundError):
        sock.close()
        _remove_stale(path)
        return None
    except OSError as exc:
        sock.close()
        raise ControlError(f"cannot reach the supervisor of PID {pid} ({path}): {exc.strerror or exc}") from None
    return sock


def _remove_stale(path: Path) -> None:
    # Refused: no process listens there (its supervisor was killed).  A new supervisor that bound
    # the name between our connect and this unlink would lose it; supervisors of one PID do not
    # start concurrently (a second one refuses while the first answers).
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
        log.info("removed %s: its supervisor is gone", path.name)


def supervised(pid: int) -> bool:
    """Whether a live supervisor serves the job `pid`."""
    sock = _connect(pid, 5.0)
    if sock is None:
        return False
    sock.close()
    return True


def request(pid: int, message: dict[str, Any], timeout: float = ANSWER_TIMEOUT) -> dict[str, Any] | None:
    """Ask PID's supervisor; its answer (raises ControlError for an error answer); None: no supervisor."""
    sock = _connect(pid, timeout)
    if sock is None:
        return None
    with sock:
        sock.sendall(json.dumps(message).encode() + b"\n")
        data = _read_line(sock)
    if not data:
        raise ControlError(f"the supervisor of PID {pid} closed the connection without an answer (did it exit?)")
    answer: dict[str, Any] = json.loads(data)
    if not answer.get("ok"):
        raise ControlError(str(answer.get("error", "the supervisor refused")))
    return answer


def _read_line(sock: socket.socket) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < MAX_LINE:
        chunk = sock.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if chunk.endswith(b"\n"):
            break
    return b"".join(chunks)


def live_supervisors() -> list[int]:
    """Job PIDs with a supervisor answering (stale sockets found are removed)."""
    try:
        names = os.listdir(runtime_dir())
    except OSError:
        return []
    pids = sorted(int(n[len(PREFIX):-len(SUFFIX)]) for n in names
                  if n.startswith(PREFIX) and n.endswith(SUFFIX) and n[len(PREFIX):-len(SUFFIX)].isdigit())
    return [pid for pid in pids if supervised(pid)]


class Server:
    """Serves requests for job `pid` on its socket, each in a thread of its own, with `handler`."""

    def __init__(self, pid: int, handler: Handler) -> None:
        self.pid = pid
        self.handler = handler
        directory = ensure_runtime_dir()
        self.path = directory / socket_name(pid)
        if supervised(pid):
            raise ControlError(f"PID {pid} is supervised already (socket {self.path}); "
                               f"`incr attach --status {pid}` says by whom")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        old_umask = os.umask(0o177)               # 0600 from the start: never a moment open to others
        try:
            with _short_path(directory, self.path.name) as short:
                self.sock.bind(short)
        finally:
            os.umask(old_umask)
        self.sock.listen(8)
        self._inode = os.stat(self.path).st_ino
        self._thread = threading.Thread(target=self._serve, name="incr-control", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return                              # closed
            threading.Thread(target=self._answer, args=(conn,), name="incr-control-request", daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            try:
                if not self._peer_allowed(conn):
                    conn.sendall(b'{"ok": false, "error": "permission denied"}\n')
                    return
                data = _read_line(conn)
                answer = self.handler(json.loads(data)) if data else {"ok": False, "error": "empty request"}
            except (ValueError, TypeError) as exc:
                answer = {"ok": False, "error": f"bad request: {exc}"}
            except OSError:
                return
            with contextlib.suppress(OSError):
                conn.sendall(json.dumps(answer).encode() + b"\n")

    @staticmethod
    def _peer_allowed(conn: socket.socket) -> bool:
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", creds)
        return uid in (0, os.getuid())

    def close(self) -> None:
        """Stop serving and remove the socket (if it is still ours)."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        with contextlib.suppress(FileNotFoundError):
            if os.stat(self.path).st_ino == self._inode:
                self.path.unlink()
