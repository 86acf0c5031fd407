"""Modes a program sets on itself with prctl() that /proc does not show: per thread the TSC mode
(PR_SET_TSC: whether rdtsc faults), the machine-check kill policy (PR_MCE_KILL) and the speculation
controls (PR_SET_SPECULATION_CTRL: store bypass, indirect branch); per process
memory-deny-write-execute (PR_SET_MDWE).

All are read by injection at dump and set by injection at restore.  The stub inherits incr's own
modes (fork copies them), so each thread's is set whatever it is.  A speculation control the kernel
does not let a task choose (no PR_SPEC_PRCTL bit: the system's mitigation mode) is the machine's,
not the job's, and is left as the restoring machine has it.  MDWE is set last, just before
the injection area goes: once on it refuses the stub's own mappings that gain PROT_EXEC; it cannot
be turned off again.
"""

from __future__ import annotations

import struct

from incr.proto import image_pb2

from .errors import RestoreError
from .remote import RemoteProcess
from .tracee import Tracee

PR_GET_TSC, PR_SET_TSC = 25, 26
PR_TSC_ENABLE = 1
PR_SET_MDWE, PR_GET_MDWE = 65, 66
PR_MCE_KILL, PR_MCE_KILL_GET, PR_MCE_KILL_SET, PR_MCE_KILL_DEFAULT = 33, 34, 1, 2
PR_GET_SPECULATION_CTRL, PR_SET_SPECULATION_CTRL = 52, 53
PR_SPEC_STORE_BYPASS, PR_SPEC_INDIRECT_BRANCH = 0, 1
PR_SPEC_PRCTL, PR_SPEC_ENABLE, PR_SPEC_DISABLE, PR_SPEC_FORCE_DISABLE, PR_SPEC_DISABLE_NOEXEC = 1, 2, 4, 8, 16
# The state a PR_SET_SPECULATION_CTRL argument gives, strongest first (FORCE_DISABLE reads DISABLE too).
_SPEC_STATES = (PR_SPEC_FORCE_DISABLE, PR_SPEC_DISABLE_NOEXEC, PR_SPEC_DISABLE, PR_SPEC_ENABLE)


def dump_thread(tracee: Tracee, thread: image_pb2.ThreadImage) -> None:
    with tracee.stack_scratch(8) as scratch:
        tracee.call("prctl", PR_GET_TSC, scratch.addr, 0, 0, 0)
        thread.tsc = struct.unpack("<i", tracee.read(scratch.addr, 4))[0]
    thread.mce_kill = tracee.call("prctl", PR_MCE_KILL_GET, 0, 0, 0, 0)
    thread.spec_store_bypass = _speculation(tracee, PR_SPEC_STORE_BYPASS)
    thread.spec_indirect_branch = _speculation(tracee, PR_SPEC_INDIRECT_BRANCH)


def _speculation(tracee: Tracee, which: int) -> int:
    got = tracee.syscall("prctl", PR_GET_SPECULATION_CTRL, which, 0, 0, 0)
    return max(got, 0)                     # ENODEV / EINVAL: no such control on this machine


def _chosen(spec: int) -> bool:
    """Whether a speculation control is the task's own choice (one a version-2 reader would drop)."""
    disabling = PR_SPEC_DISABLE | PR_SPEC_FORCE_DISABLE | PR_SPEC_DISABLE_NOEXEC
    return bool(spec & PR_SPEC_PRCTL) and bool(spec & disabling)


def dump_process(tracee: Tracee, image: image_pb2.ProcessImage) -> None:
    ret = tracee.syscall("prctl", PR_GET_MDWE, 0, 0, 0, 0)
    image.mdwe = max(ret, 0)                   # EINVAL before Linux 6.3: no MDWE there


def needs_version_3(image: image_pb2.TreeImage) -> bool:
    return any(p.mdwe for p in image.processes) or any(
        t.tsc not in (0, PR_TSC_ENABLE) or (t.HasField("mce_kill") and t.mce_kill != PR_MCE_KILL_DEFAULT)
        or _chosen(t.spec_store_bypass) or _chosen(t.spec_indirect_branch)
        for p in image.processes for t in p.threads)


def restore_thread(target: RemoteProcess, thread: image_pb2.ThreadImage) -> None:
    """In the thread `target` drives, which has incr's TSC mode (enabled).  0: an older image."""
    if thread.tsc not in (0, PR_TSC_ENABLE):
        target.call("prctl", PR_SET_TSC, thread.tsc, 0, 0, 0)
    if thread.HasField("mce_kill"):
        target.call("prctl", PR_MCE_KILL, PR_MCE_KILL_SET, thread.mce_kill, 0, 0)
    _restore_speculation(target, thread.tid, PR_SPEC_STORE_BYPASS, thread.spec_store_bypass)
    _restore_speculation(target, thread.tid, PR_SPEC_INDIRECT_BRANCH, thread.spec_indirect_branch)


def _restore_speculation(target: RemoteProcess, tid: int, which: int, dumped: int) -> None:
    if not dumped & PR_SPEC_PRCTL:
        return
    now = max(target.syscall("prctl", PR_GET_SPECULATION_CTRL, which, 0, 0, 0), 0)
    if now == dumped:
        return
    state = next((s for s in _SPEC_STATES if dumped & s), 0)
    got = target.syscall("prctl", PR_SET_SPECULATION_CTRL, which, state, 0, 0) if state else -1
    if got < 0 or max(target.syscall("prctl", PR_GET_SPECULATION_CTRL, which, 0, 0, 0), 0) != dumped:
        name = "store bypass" if which == PR_SPEC_STORE_BYPASS else "indirect branch"
        raise RestoreError(f"cannot restore TID {tid}: its speculation control ({name}) was "
                           f"{dumped:#x}, here it is {now:#x} and cannot be set so")


def restore_process(target: RemoteProcess, image: image_pb2.ProcessImage) -> None:
    """In the main thread, as its last injections but the unmapping of the injection area."""
    if image.mdwe:
        target.call("prctl", PR_SET_MDWE, image.mdwe, 0, 0, 0)
