"""What incr may leave inside a job if it dies mid-command, and how the next command takes it out.

A few steps of a checkpoint change the job for a moment: a userfaultfd
injected before it is parked, a probe page mapped to learn mlockall()'s
flags, a scratch page where a thread's stack has no room.  If incr is killed
in between (docs/crash-model.md), the change would stay.  So each such step
notes what it is about to leave in a `Journal` (the caller makes the notes
durable) before acting, and clears the note once it has undone it; the next
command on the job finds the notes and undoes what is still there
(`still_there`, `undo`).  A mapping is made at an address chosen beforehand
(MAP_FIXED_NOREPLACE), so that the note can name it.

Three kinds are state of the kernel's rather than the job's, undone from incr's side: a TCP
socket of the job in repair mode while its connection is read (`tcp-repair`: a socket left in
it sends nothing, ever), a UDP socket's peek offset moved while its queue is read (`peek-off`,
`size` the offset to put back), and the network lock on the job's ports (`netlock`: an nftables table,
`what` its name; netlock.py).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from . import proc
from . import ptrace as pt
from .errors import EngineError, RemoteSyscallFailed

PAGE = 4096
MAP_PRIVATE_ANON, MAP_FIXED_NOREPLACE = 0x22, 0x100000
_SEARCH_FROM, _SEARCH_TO = 0x10000000, 0x7F0000000000


@dataclass(frozen=True)
class Leftover:
    """A descriptor (`at`: its number, `what`: its /proc link) or an anonymous mapping (`at`: its
    start, `size`) incr may leave in process `pid`."""

    pid: int
    kind: str               # "fd", "mapping", "tcp-repair", "peek-off" (`at`: the socket's fd), "netlock"
    at: int
    size: int = 0
    what: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Leftover:
        return cls(**raw)


class Journal(Protocol):
    """Where the engine notes what it may leave in a job (durably, before acting)."""

    def note(self, leftover: Leftover) -> None: ...
    def clear(self, leftover: Leftover) -> None: ...


class NoJournal:
    """For callers that keep no notes (tests of the engine alone, benchmarks)."""

    def note(self, leftover: Leftover) -> None:
        pass

    def clear(self, leftover: Leftover) -> None:
        pass


def still_there(leftover: Leftover) -> bool:
    """Whether the job still holds exactly what the note describes (and so it is incr's)."""
    pid = leftover.pid
    try:
        if leftover.kind == "netlock":
            return netlock_exists(leftover.what)
        if leftover.kind in ("fd", "tcp-repair", "peek-off"):
            return os.readlink(f"/proc/{pid}/fd/{leftover.at}") == leftover.what
        if leftover.kind == "mapping":
            end = leftover.at + leftover.size
            return any(m.start == leftover.at and m.end == end and not m.is_file and not m.path
                       for m in proc.maps(pid))
    except (OSError, EngineError):
        return False
    return False


class Injector(Protocol):
    def syscall(self, name: str, *args: int) -> int: ...


def undo(target: Injector, leftover: Leftover) -> None:
    """Take the leftover out of the (frozen) job."""
    if leftover.kind == "tcp-repair":
        with _socket_of(leftover.pid, leftover.at) as sock:
            sock.setsockopt(SOL_TCP, TCP_REPAIR, TCP_REPAIR_OFF_NO_WP)
    elif leftover.kind == "peek-off":
        with _socket_of(leftover.pid, leftover.at) as sock:
            sock.setsockopt(socket.SOL_SOCKET, SO_PEEK_OFF, leftover.size)
    elif leftover.kind == "netlock":
        drop_netlock(leftover.what)
    elif leftover.kind == "fd":
        target.syscall("close", leftover.at)
    elif leftover.kind == "mapping":
        target.syscall("munmap", leftover.at, leftover.size)


SOL_TCP, TCP_REPAIR, TCP_REPAIR_OFF_NO_WP, SO_PEEK_OFF = 6, 19, -1, 42


@contextmanager
def _socket_of(pid: int, fd: int) -> Iterator[socket.socket]:
    """Socket `fd` of process `pid`, taken into incr (pidfd_getfd) for the block."""
    pidfd = os.pidfd_open(pid)
    try:
        mine = pt.pidfd_getfd(pidfd, fd)
    finally:
        os.close(pidfd)
    sock = socket.socket(fileno=mine)
    try:
        yield sock
    finally:
        sock.close()


def nft() -> str | None:
    """The nft command, if installed."""
    return shutil.which("nft") or next((p for p in ("/usr/sbin/nft", "/sbin/nft") if os.access(p, os.X_OK)), None)


def netlock_exists(table: str) -> bool:
    cmd = nft()
    if cmd is None:
        return False
    res = subprocess.run([cmd, "list", "table", "inet", table], capture_output=True, check=False)
    return res.returncode == 0


def drop_netlock(table: str) -> None:
    cmd = nft()
    if cmd is not None:
        subprocess.run([cmd, "delete", "table", "inet", table], capture_output=True, check=False)


def free_range(pid: int, size: int) -> int:
    """A page-aligned address range of `size` bytes that process pid does not map (it is frozen:
    its mappings cannot change meanwhile)."""
    addr = _SEARCH_FROM
    for m in sorted(proc.maps(pid), key=lambda m: m.start):
        if addr + size <= m.start:
            break
        addr = max(addr, (m.end + PAGE - 1) // PAGE * PAGE)
    if addr + size > _SEARCH_TO:
        raise EngineError(f"PID {pid}: no free address range of {size} bytes")
    return addr


@contextmanager
def temporary_mapping(target: Injector, journal: Journal, pid: int, size: int, prot: int) -> Iterator[int]:
    """An anonymous mapping of `size` bytes in the frozen process pid for the time of the block
    (its address), noted in `journal` for as long as it exists.  RemoteSyscallFailed if the
    kernel refuses it."""
    addr = free_range(pid, size)
    leftover = Leftover(pid, "mapping", addr, size)
    journal.note(leftover)
    got = target.syscall("mmap", addr, size, prot, MAP_PRIVATE_ANON | MAP_FIXED_NOREPLACE, -1, 0)
    if got != addr:
        journal.clear(leftover)
        raise RemoteSyscallFailed(pid, "mmap", -got if -4096 < got < 0 else 17)    # 17: EEXIST, placed elsewhere
    try:
        yield addr
    finally:
        target.syscall("munmap", addr, size)
        journal.clear(leftover)
