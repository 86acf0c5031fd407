"""What processes of a job share through clone(2) flags instead of holding copies:
the descriptor table (CLONE_FILES) and the filesystem context (CLONE_FS: working
directory, root, umask); memory (CLONE_VM) and signal handlers (CLONE_SIGHAND)
shared between processes are refused.  Dump and restore.

Dump: kcmp(2) orders tasks by each resource, so sorting the processes by it (n
log n calls) puts the ones that share it next to each other.  A process that
shares a resource with its parent records so (ProcessImage.files_of, fs_of);
sharing with any other process, or with one outside the job, is refused: a
restore recreates a sharing the way it arises, by cloning from the parent.
Threads share all of them (CLONE_THREAD needs them) unless one unshare(2)d its
table or its filesystem context: refused too.

Restore: the child's stub is cloned with CLONE_FILES / CLONE_FS (Stub.fork_child)
before anything is installed, so the two keep one table or context; the table
is then built once, by the parent (restore.py skips the child's).
"""

from __future__ import annotations

import functools
from collections.abc import Collection

from incr.proto import image_pb2

from . import proc
from . import ptrace as pt
from .errors import RestoreError, Unsupported

CLONE_FS, CLONE_FILES = 0x200, 0x400
# kcmp kind -> (what it is, the clone flag that shares it, the ProcessImage field recording it or "")
KINDS: dict[int, tuple[str, str, str]] = {
    pt.KCMP_FILES: ("descriptor table", "CLONE_FILES", "files_of"),
    pt.KCMP_FS: ("working directory, root and umask", "CLONE_FS", "fs_of"),
    pt.KCMP_SIGHAND: ("signal handlers", "CLONE_SIGHAND", ""),      # (needs CLONE_VM: named first)
    pt.KCMP_VM: ("memory", "CLONE_VM", ""),                         # vfork(), clone(CLONE_VM)
}
_OF_THREADS = (pt.KCMP_FILES, pt.KCMP_FS)     # what a thread can unshare


def dump(images: list[image_pb2.ProcessImage]) -> None:
    """Records in `images` (a frozen tree, parents first) which processes share a resource with
    their parent; raises Unsupported for any sharing a restore could not recreate."""
    alive = [p for p in images if not p.zombie]
    for p in alive:
        for t in p.threads[1:]:
            for kind in _OF_THREADS:
                if pt.kcmp(p.pid, t.tid, kind) != 0:
                    what, flag, _ = KINDS[kind]
                    raise Unsupported(p.pid, f"thread {t.tid}", f"it has a {what} of its own (unshare({flag})): "
                                      "not supported yet")
    for kind in KINDS:
        _outside(images[0], kind)
        for group in _groups(alive, kind):
            _record(group, kind)


def _outside(root: image_pb2.ProcessImage, kind: int) -> None:
    """Refuses a root that shares `kind` with its parent, outside the job."""
    if root.zombie or not root.ppid or not proc.exists(root.ppid):
        return
    try:
        shared = pt.kcmp(root.pid, root.ppid, kind) == 0
    except OSError:
        return                      # the parent is not ours to compare (another PID namespace)
    if shared:
        what, flag, _ = KINDS[kind]
        raise Unsupported(root.pid, what, f"shared ({flag}) with its parent {proc.describe(root.ppid)}, outside "
                          "the job: not supported")


def _groups(alive: list[image_pb2.ProcessImage], kind: int) -> list[list[image_pb2.ProcessImage]]:
    """The processes that share resource `kind`, in groups of two or more, each in tree order."""
    def order(a: image_pb2.ProcessImage, b: image_pb2.ProcessImage) -> int:
        return [0, -1, 1][pt.kcmp(a.pid, b.pid, kind)]

    ranked = sorted(alive, key=functools.cmp_to_key(order))
    groups: list[list[image_pb2.ProcessImage]] = []
    for p in ranked:
        if groups and pt.kcmp(groups[-1][0].pid, p.pid, kind) == 0:
            groups[-1].append(p)
        else:
            groups.append([p])
    position = {p.pid: i for i, p in enumerate(alive)}
    return [sorted(g, key=lambda p: position[p.pid]) for g in groups if len(g) > 1]


def _record(group: list[image_pb2.ProcessImage], kind: int) -> None:
    what, flag, field = KINDS[kind]
    members = {p.pid for p in group}
    for p in group[1:]:
        others = ", ".join(str(q.pid) for q in group if q.pid != p.pid)
        if not field:
            raise Unsupported(p.pid, what, f"shared ({flag}) with PID {others}: processes sharing their {what} "
                              "are not supported")
        if p.ppid not in members:
            raise Unsupported(p.pid, what, f"shared ({flag}) with PID {others}, not with its parent: only a "
                              "sharing with the parent can be restored")
        setattr(p, field, p.ppid)


def check_running(pid: int, job: Collection[int]) -> None:
    """Refuses, before anything is frozen, a process whose memory its parent shares: a vfork()ed
    child that has not exec'd yet (or a clone(CLONE_VM)).  A parent in vfork() waits in the kernel
    until that child execs or exits and cannot be stopped, so the freeze would wait as long."""
    ppid = proc.stat(pid).ppid
    if ppid in job and pt.kcmp(pid, ppid, pt.KCMP_VM) == 0:
        raise Unsupported(pid, "memory", f"shared (CLONE_VM) with its parent PID {ppid}: a vfork()ed child that "
                          "has not called exec yet, or a clone(CLONE_VM); not supported (its parent cannot be "
                          "frozen until it execs or exits)")


def needs_version_3(image: image_pb2.TreeImage) -> bool:
    return any(p.files_of or p.fs_of for p in image.processes)


# ---------------------------------------------------------------- restore

def clone_flags(p: image_pb2.ProcessImage) -> int:
    """The clone flags that give process `p`'s stub what it shares with its parent."""
    for of in (p.files_of, p.fs_of):
        if of and of != p.ppid:
            raise RestoreError(f"cannot restore PID {p.pid}: the image says it shares resources with PID {of}, "
                               "not its parent")
    return (CLONE_FILES if p.files_of else 0) | (CLONE_FS if p.fs_of else 0)
