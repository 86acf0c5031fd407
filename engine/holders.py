"""Where an open file description is held in a frozen tree, and taking it from there.

Shared by the descriptor tables (engine/files.py) and shared memory (engine/shm.py), which both
pass descriptions on between processes of a restore."""

from __future__ import annotations

from dataclasses import dataclass

from .remote import RemoteProcess


@dataclass
class Holder:
    """Where a description was seen first: process, descriptor number."""

    pid: int
    fd: int


def transfer(target: RemoteProcess, holder: Holder) -> int:
    """`target` takes descriptor holder.fd of process holder.pid: injected pidfd_open + pidfd_getfd."""
    pidfd = target.call("pidfd_open", holder.pid, 0)
    try:
        return target.call("pidfd_getfd", pidfd, holder.fd, 0)
    finally:
        target.call("close", pidfd)
