"""Filesystem context: working directory, root, umask.  Dump and restore.  A working directory
removed meanwhile (it is empty then) is made again and removed once every process has it (ghost.py)."""

from __future__ import annotations

import os

from incr.proto import image_pb2

from . import ghost, proc
from .errors import RestoreError, Unsupported
from .remote import RemoteProcess


def dump(pid: int, status: dict[str, str]) -> image_pb2.FsImage:
    cwd = proc.readlink(pid, "cwd")
    root = proc.readlink(pid, "root")
    if root != "/":
        raise Unsupported(pid, f"root directory {root}", "chroot'ed processes are not supported yet")
    image = image_pb2.FsImage(cwd=cwd, root=root, umask=int(status.get("Umask", "0022"), 8))
    if cwd.endswith(ghost.DELETED):
        gone = ghost.removed_node(cwd, os.stat(f"/proc/{pid}/cwd"))
        if gone is None:
            raise Unsupported(pid, f"working directory {cwd}", "it was deleted and is not empty (or not a "
                                                                "directory)")
        image.cwd = gone.name
        image.cwd_removed.CopyFrom(gone)
    return image


def preflight(fs: image_pb2.FsImage) -> None:
    if fs.HasField("cwd_removed"):
        ghost.preflight_node(fs.cwd_removed)
    elif not os.path.isdir(fs.cwd):
        raise RestoreError(f"cannot restore: the job's working directory {fs.cwd} does not exist")


def restore(target: RemoteProcess, fs: image_pb2.FsImage, names: ghost.Names) -> None:
    """`names`: where a removed working directory is made again (once for the whole tree)."""
    cwd = names.node(fs.cwd_removed) if fs.HasField("cwd_removed") else fs.cwd
    target.call("chdir", target.put(os.fsencode(cwd) + b"\0"))
    target.call("umask", fs.umask)
