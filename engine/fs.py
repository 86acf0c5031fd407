"""Filesystem context: working directory, root, umask.  Dump and restore.  A working directory
removed meanwhile (it is empty then) is made again and removed once every process has it (ghost.py).

A process's root directory (chroot) is read as incr sees it (/proc/PID/root), and so are every
path the image holds of that process's files, which the restore opens before it chroots the
process again: late (restore_root), after every descriptor is in place and the last path the stub
opens itself, before its threads exist (they share it) and before its ids drop the privilege.
Refused: a chroot'ed process holding a Unix socket bound to a path (the name it bound is relative
to its root, which the restore's bind would not be)."""

from __future__ import annotations

import os

from incr.proto import image_pb2

from . import ghost, proc
from .errors import RestoreError, Unsupported
from .remote import RemoteProcess


def dump(pid: int, status: dict[str, str]) -> image_pb2.FsImage:
    cwd = proc.readlink(pid, "cwd")
    root = proc.readlink(pid, "root")
    if root.endswith(ghost.DELETED):
        raise Unsupported(pid, f"root directory {root}", "its root directory was deleted; not supported")
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
    if fs.root and not os.path.isdir(fs.root):
        raise RestoreError(f"cannot restore: the job's root directory {fs.root} (chroot) does not exist")


def check_chroot_sockets(image: image_pb2.TreeImage) -> None:
    """Refuses a chroot'ed process that holds a Unix socket bound to a path."""
    named = {s.ino: s.name for s in image.unix_sockets if s.name and not s.name.startswith(b"\0")}
    for p in image.processes:
        if p.zombie or p.fs.root in ("", "/"):
            continue
        files = {f.id: f for f in p.files}
        for d in p.fds:
            f = files.get(d.file)
            if f is not None and f.kind == image_pb2.OpenFile.UNIX and f.socket in named:
                raise Unsupported(p.pid, f"fd {d.fd} (socket bound to {os.fsdecode(named[f.socket])})",
                                  f"a Unix socket bound to a path inside its root directory {p.fs.root} (chroot); "
                                  "not supported")


def restore_root(target: RemoteProcess, fs: image_pb2.FsImage) -> None:
    """chroot() again, unless the process has that root already (it shares it with one restored
    before: CLONE_FS); its working directory, set before, stays."""
    if fs.root in ("", "/") or os.readlink(f"/proc/{target.pid}/root") == fs.root:
        return
    target.call("chroot", target.put(os.fsencode(fs.root) + b"\0"))


def restore(target: RemoteProcess, fs: image_pb2.FsImage, names: ghost.Names) -> None:
    """`names`: where a removed working directory is made again (once for the whole tree)."""
    cwd = names.node(fs.cwd_removed) if fs.HasField("cwd_removed") else fs.cwd
    target.call("chdir", target.put(os.fsencode(cwd) + b"\0"))
    target.call("umask", fs.umask)
