"""Process-wide and per-thread switches of prctl(2) and membarrier(2) that nothing in
/proc shows: the parent-death signal (per thread), the child-subreaper flag, the
dumpable flag, membarrier registrations.  Read by injection into the frozen
process, set by injection into the restore stub.

The kernel's rules decide the order at restore:
* commit_creds() clears the calling thread's pdeath_signal and resets the mm's
  dumpable flag to fs.suid_dumpable whenever ids change, so both are set after the
  credential switch (restore_after_creds);
* PR_SET_CHILD_SUBREAPER marks every existing descendant as having a subreaper
  above it, so setting it once the children exist is enough;
* membarrier registrations belong to the mm, and fork() copies them: registered
  once, in the main thread, before the registers are set -- and after the process's
  children were forked from it, so that each gets its own and no more.

A parent-death signal is sent when the parent *thread* exits.  Restored children
are forked by their parent's main thread, so a child with such a signal whose
parent is another thread of its parent is refused (check_parent_threads).
"""

from __future__ import annotations

import errno
import os
import struct
from collections.abc import Sequence

from incr.proto import image_pb2

from . import proc
from .errors import RestoreError, Unsupported
from .freeze import Frozen
from .remote import RemoteProcess
from .tracee import Tracee

PR_SET_PDEATHSIG, PR_GET_PDEATHSIG = 1, 2
PR_GET_DUMPABLE, PR_SET_DUMPABLE = 3, 4
PR_SET_CHILD_SUBREAPER, PR_GET_CHILD_SUBREAPER = 36, 37
SUID_DUMP_USER = 1

MEMBARRIER_CMD_GET_REGISTRATIONS = 1 << 9
# MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, then ..._PRIVATE_EXPEDITED, _SYNC_CORE and _RSEQ; the
# command each makes usable is its bit halved.
MEMBARRIER_REGISTER = (1 << 2, 1 << 4, 1 << 6, 1 << 8)
_PRIVATE_REGISTER = MEMBARRIER_REGISTER[1:]
_INT = struct.Struct("<i")


def _get_int(tracee: Tracee, option: int) -> int:
    """prctl(option, &value): the int the kernel writes."""
    with tracee.stack_scratch(_INT.size) as scratch:
        tracee.call("prctl", option, scratch.addr, 0, 0, 0)
        return int(_INT.unpack(tracee.read(scratch.addr, _INT.size))[0])


def dump(frozen: Frozen, image: image_pb2.ProcessImage) -> None:
    """Each thread's parent-death signal, injected in that thread (image.threads dumped already),
    then the process-wide switches, injected in the thread-group leader."""
    for thread in image.threads:
        thread.pdeath_signal = _get_int(frozen.tracee(thread.tid), PR_GET_PDEATHSIG)
    tracee = frozen.tracee()
    image.child_subreaper = _get_int(tracee, PR_GET_CHILD_SUBREAPER) != 0
    dumpable = tracee.call("prctl", PR_GET_DUMPABLE, 0, 0, 0, 0)
    if dumpable != SUID_DUMP_USER and dumpable != 0:
        raise Unsupported(tracee.pid, "dumpable flag", f"it is {dumpable} (fs.suid_dumpable 'suidsafe' after a "
                          "change of ids), which prctl(PR_SET_DUMPABLE) cannot set back")
    image.dumpable = dumpable
    image.membarrier_registrations = _membarrier_registrations(tracee)


def _membarrier_registrations(tracee: Tracee) -> int:
    got = tracee.syscall("membarrier", MEMBARRIER_CMD_GET_REGISTRATIONS, 0, 0)
    if got >= 0 or got == -errno.ENOSYS:
        return max(got, 0)
    if got != -errno.EINVAL:
        raise Unsupported(tracee.pid, "membarrier registrations", f"cannot be read: {os.strerror(-got)}")
    # Before Linux 6.3: a private barrier succeeds only when registered (CRIU reads them so);
    # a global-expedited registration cannot be seen there.
    return sum(register for register in _PRIVATE_REGISTER if tracee.syscall("membarrier", register >> 1, 0, 0) == 0)


def check_parent_threads(processes: Sequence[image_pb2.ProcessImage]) -> None:
    """Refuses a child with a parent-death signal that a thread other than its parent's main thread forked."""
    in_tree = {p.pid for p in processes}
    for p in processes:
        if p.zombie or p.ppid not in in_tree or not any(t.pdeath_signal for t in p.threads):
            continue
        if p.pid in _children_of_thread(p.ppid, p.ppid):
            continue
        forker = next((t for t in proc.tasks(p.ppid) if p.pid in _children_of_thread(p.ppid, t)), 0)
        raise Unsupported(p.pid, "parent-death signal", f"its parent PID {p.ppid} forked it from its thread {forker}, "
                          "not its main thread; restored, it would be the main thread's child and get the signal "
                          "at another time")


def _children_of_thread(pid: int, tid: int) -> list[int]:
    """The processes thread `tid` of `pid` forked (their real parent is that thread)."""
    return [int(c) for c in proc.read_text(pid, f"task/{tid}/children").split()]


def restore(target: RemoteProcess, image: image_pb2.ProcessImage) -> None:
    """The subreaper flag and membarrier registrations, in the main thread, before the registers."""
    if image.child_subreaper:
        target.call("prctl", PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    for register in MEMBARRIER_REGISTER:
        if image.membarrier_registrations & register:
            target.call("membarrier", register, 0, 0)
    got = target.syscall("membarrier", MEMBARRIER_CMD_GET_REGISTRATIONS, 0, 0)
    if got >= 0 and got != image.membarrier_registrations:
        raise RestoreError(f"cannot restore PID {target.vpid}: membarrier registrations are {got:#x}, "
                           f"not {image.membarrier_registrations:#x}")


def restore_after_creds(targets: Sequence[RemoteProcess], image: image_pb2.ProcessImage) -> None:
    """Each thread's parent-death signal and the dumpable flag, which a change of ids resets."""
    for target, thread in zip(targets, image.threads, strict=True):
        if thread.pdeath_signal:
            target.call("prctl", PR_SET_PDEATHSIG, thread.pdeath_signal, 0, 0, 0)
    if image.HasField("dumpable"):
        targets[0].call("prctl", PR_SET_DUMPABLE, image.dumpable, 0, 0, 0)


def has_pdeath_signal(image: image_pb2.ProcessImage) -> bool:
    return any(t.pdeath_signal for t in image.threads)


def newer_than_version_2(image: image_pb2.ProcessImage) -> bool:
    """State a version-2 reader would drop: it restores none of these switches, and its
    credential switch leaves a job that is not root's non-dumpable."""
    not_root = any(image.creds.uids) or any(image.creds.gids)
    dumpable_differs = image.HasField("dumpable") and (image.dumpable != SUID_DUMP_USER or not_root)
    return (has_pdeath_signal(image) or image.child_subreaper or image.membarrier_registrations != 0
            or dumpable_differs)
