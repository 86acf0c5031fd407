"""Filesystem context: working directory, root, umask.  Dump and restore."""

from __future__ import annotations

import os

from incr.proto import image_pb2

from . import proc
from .errors import RestoreError, Unsupported
from .remote import RemoteProcess


def dump(pid: int, status: dict[str, str]) -> image_pb2.FsImage:
    cwd = proc.readlink(pid, "cwd")
    root = proc.readlink(pid, "root")
    if cwd.endswith(" (deleted)"):
        raise Unsupported(pid, f"working directory {cwd}", "it was deleted")
    if root != "/":
        raise Unsupported(pid, f"root directory {root}", "chroot'ed processes are not supported yet")
    return image_pb2.FsImage(cwd=cwd, root=root, umask=int(status.get("Umask", "0022"), 8))


def preflight(fs: image_pb2.FsImage) -> None:
    if not os.path.isdir(fs.cwd):
        raise RestoreError(f"cannot restore: the job's working directory {fs.cwd} does not exist")


def restore(target: RemoteProcess, fs: image_pb2.FsImage) -> None:
    target.call("chdir", target.put(os.fsencode(fs.cwd) + b"\0"))
    target.call("umask", fs.umask)
