"""Descriptors of /proc files and directories, and O_PATH descriptors of symbolic links.  Dump
and restore.

A /proc file has no contents to keep: it is opened again by its path once every process of
the tree exists, at its offset (a seq file re-reads up to it).  A path naming a process must
name one of the job (/proc/self is named so too: its PID); the restored process has that PID.
In a new PID namespace the job would need a /proc of its own, which it does not get yet: refused
at restore.  A symbolic link held with O_PATH|O_NOFOLLOW is reopened so; its target is recorded
and must be the same at restore.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection

from incr.proto import image_pb2

from . import fown
from .errors import RestoreError, Unsupported
from .remote import RemoteProcess

OpenFile = image_pb2.OpenFile
_PID_PATH = re.compile(r"^/proc/(\d+)(/|$)")


def proc_dev() -> int:
    return os.stat("/proc").st_dev


def describe(pid: int, what: str, link: str, base: image_pb2.OpenFile, job: Collection[int]) -> image_pb2.OpenFile:
    """A descriptor of /proc: `link` as /proc shows it; `job`: the tree's PIDs."""
    named = _PID_PATH.match(link)
    if named and int(named.group(1)) not in job:
        raise Unsupported(pid, what, f"a /proc file of PID {named.group(1)}, outside the job, cannot follow it")
    base.kind = OpenFile.PROCFS
    return base


def symlink(pid: int, what: str, link: str, base: image_pb2.OpenFile) -> image_pb2.OpenFile:
    """An O_PATH descriptor of the symbolic link `link` itself."""
    try:
        base.what = os.readlink(link)
    except OSError as exc:
        raise Unsupported(pid, what, f"the symbolic link cannot be read ({exc.strerror})") from None
    base.kind = OpenFile.SYMLINK
    return base


def preflight(f: image_pb2.OpenFile) -> None:
    if f.kind == OpenFile.SYMLINK:
        try:
            target = os.readlink(f.path)
        except OSError as exc:
            raise RestoreError(f"cannot restore: the symbolic link {f.path}, held by the job, is not there "
                               f"({exc.strerror}); put it back first") from None
        if target != f.what:
            raise RestoreError(f"cannot restore: the symbolic link {f.path} points to {target} now, not {f.what} "
                               "as when the job held it")


def reopen(target: RemoteProcess, f: image_pb2.OpenFile) -> int:
    """The descriptor again in `target`, by path, at its offset."""
    if f.kind == OpenFile.PROCFS and target.pid != target.vpid and _PID_PATH.match(f.path):
        raise RestoreError(f"cannot restore {f.path} in a new PID namespace: /proc there is still the host's, "
                           "which numbers the job's processes otherwise; restore without --new-pidns")
    fd = target.syscall("openat", -100, target.put(os.fsencode(f.path) + b"\0"), f.flags & ~fown.NOT_REOPENED, 0)
    if fd < 0:
        raise RestoreError(f"cannot reopen {f.path} in PID {target.vpid}: {os.strerror(-fd)}")
    if f.pos and f.kind == OpenFile.PROCFS:
        got = target.syscall("lseek", fd, f.pos, os.SEEK_SET)
        if got != f.pos:
            raise RestoreError(f"cannot put {f.path} back at offset {f.pos} in PID {target.vpid}: "
                               f"{os.strerror(-got) if got < 0 else f'at {got}'}")
    return fd
