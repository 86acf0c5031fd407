"""POSIX message queues (mq_open): recognised, and refused by name.

A queue descriptor looks like a regular file (its link is the queue's name,
"/name", a path inside the kernel's mqueue mount, which /proc shows like a
deleted or replaced file).  Restoring one faithfully would need its messages
(drained and sent back), its mq_notify registration and, above all, the queue
object itself: a named queue outlives the job (checkpoint --kill leaves it with
whatever it held then, which others may change), so the restore could neither
recreate it nor know it is still the one the job had.  Refused, naming it.
"""

from __future__ import annotations

import ctypes
import os

from .errors import Unsupported

MQUEUE_MAGIC = 0x19800202        # include/uapi/linux/magic.h
_STATFS_SIZE = 120               # struct statfs on x86_64; f_type is its first field (a long)
_libc = ctypes.CDLL(None, use_errno=True)


def fs_type(path: str) -> int:
    """statfs(2) f_type of the file system holding `path` (a /proc/PID/fd/N link is followed)."""
    buf = ctypes.create_string_buffer(_STATFS_SIZE)
    if _libc.statfs(os.fsencode(path), buf) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)
    return int.from_bytes(buf.raw[:8], "little")


def is_queue(pid: int, fd: int) -> bool:
    try:
        return fs_type(f"/proc/{pid}/fd/{fd}") == MQUEUE_MAGIC
    except OSError:
        return False


def refuse(pid: int, fd: int, name: str) -> Unsupported:
    return Unsupported(pid, f"fd {fd} (POSIX message queue {name})", "message queues (mq_open) are not "
                       "supported: the queue outlives the job, so a restore cannot know it is the one the job had")
