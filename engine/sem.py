"""System V semaphore sets the job operates on: refused at the checkpoint, in one line.

Why not saved: a set's values can be read, but not what the kernel will undo when a process
that used SEM_UNDO exits (its semadj), which /proc and semctl do not show.  The one way to learn
them is to make the kernel apply them (an injected unshare(CLONE_SYSVSEM)) and then make them
again (an injected semop): an incr killed between the two leaves them applied in a job that runs
on (docs/crash-model.md), and values alone would restore a job whose exit undoes other amounts
than the original's.  Which sets are the job's: the kernel records no creator, only each
semaphore's last operator (GETPID, which SETVAL and SETALL set too); a set with a process of the
job among them is the job's.  A set only processes outside the job operate on is theirs: left
alone (a job process waiting on it waits again after restore)."""

from __future__ import annotations

import ctypes
from collections.abc import Collection

from .errors import Unsupported

GETPID = 11
_libc = ctypes.CDLL(None, use_errno=True)


def check(job: Collection[int]) -> None:
    """Refuse when a process of `job` is the last operator of a semaphore of a set here (incr
    and the job share an IPC namespace: namespaces.py refuses any other)."""
    for semid, nsems in _sets():
        for num in range(nsems):
            pid = int(_libc.semctl(semid, num, GETPID))
            if pid in job:
                raise Unsupported(pid, f"System V semaphore set {semid}",
                                  "its undo adjustments (SEM_UNDO) cannot be read without applying them, which a "
                                  "checkpoint killed half-way would leave applied; semaphore sets are not "
                                  "supported yet")


def _sets() -> list[tuple[int, int]]:
    """(id, number of semaphores) of every set in our IPC namespace."""
    try:
        with open("/proc/sysvipc/sem", encoding="ascii") as f:
            lines = f.readlines()[1:]
    except FileNotFoundError:
        return []                 # a kernel without System V IPC
    return [(int(fields[1]), int(fields[3])) for fields in (line.split() for line in lines) if len(fields) > 3]
