"""Job-control stops: a process stopped by SIGSTOP, SIGTSTP, SIGTTIN or SIGTTOU comes
back stopped by that signal, which its parent's waitpid(WUNTRACED) reports.

Dump: the freeze reads the signal from the trap that a seized, stopped process
reports (freeze.py: Frozen.stop_signal).

Restore: the stop is re-created while the process is still traced, so that none
of its threads runs an instruction first: the signal is delivered to the main
thread with PTRACE_SINGLESTEP and stops the whole group; the other threads enter
the stop as they are let go (PTRACE_DETACH of a thread of a stopped group puts it
in the stop).

The kernel discards SIGTSTP, SIGTTIN and SIGTTOU in an orphaned process group
(POSIX: no job-control shell could continue it) -- when ptrace delivers them too --
and a restored root often is in one (a session of its own).  Then two helpers link
the group for the instant of the stop: a child of the process in a group of its
own, and its child, which joins the process's group, so that a member of the group
has its parent in another group of the same session.  The latter leaves again by
setpgid(), which (unlike an exit) sends no SIGHUP to a group with a stopped
member, and both are reaped by their parents; made with no exit signal, their ends
signal no one.

The stop happens anew, and the kernel has a new report of it for the parent's
waitpid(WUNTRACED) and sends the parent SIGCHLD (CLD_STOPPED).  A parent in the job
that had collected the report before the checkpoint must not get it twice: the dump
asks the frozen parent, without consuming anything, whether a report is waiting
(waitid(WSTOPPED|WNOHANG|WNOWAIT): the group-stop report of a child traced by another
process -- incr -- is what its real parent sees, and neither incr's seizing nor its
detaching of a stopped child makes a new one), and the restore, which finishes
children before their parents, collects the new report in the parent when the
original had (an injected wait4) and drops the SIGCHLD before the parent's pending
signals come back from the image.  A stopped process of several threads completes
its stop only when they are let go, after its parent is finished, and at the dump no report
waiting cannot be told from a stop not yet complete: its stop is reported again (a known gap).
"""

from __future__ import annotations

import errno
import os
import signal
import struct

from incr.proto import image_pb2

from . import proc
from . import ptrace as pt
from .errors import ProcessNotFound, RestoreError
from .freeze import Frozen
from .remote import Stub
from .tracee import ALL_SIGNALS

_CLONE_ARGS = struct.Struct("<11Q")
WNOHANG, WUNTRACED, WALL, WNOWAIT = 1, 2, 0x40000000, 0x01000000
P_PID = 1
_SI_PID = struct.Struct("<16xi")              # siginfo_t: si_pid at 16 (x86_64)
SIGINFO_SIZE = 128


def dump_reports(images: list[image_pb2.ProcessImage], frozen: dict[int, Frozen]) -> None:
    """For each stopped process whose parent is in the tree: whether that parent had collected
    its stop report (asked in the frozen parent, consuming nothing)."""
    for p in images:
        if not p.stopped or p.zombie or p.ppid not in frozen:
            continue
        # Several threads: no report waiting may also be a stop not yet complete (a thread still on its
        # way into it when frozen), which the parent cannot have collected; it is taken for that.
        p.stop_reported = len(p.threads) == 1 and not _report_waiting(frozen[p.ppid], p.pid)


def _report_waiting(parent: Frozen, child: int) -> bool:
    tracee = parent.tracee()
    with tracee.stack_scratch(SIGINFO_SIZE) as scratch:
        tracee.write(scratch.addr, bytes(SIGINFO_SIZE))
        tracee.call("waitid", P_PID, child, scratch.addr, WUNTRACED | WNOHANG | WNOWAIT, 0)
        return int(_SI_PID.unpack(tracee.read(scratch.addr, _SI_PID.size))[0]) == child


def settle_reports(stub: Stub, children: list[image_pb2.ProcessImage]) -> None:
    """In a parent, before its own signals are restored: the reports of its stopped children's new
    stops collected where the original had collected them, and the SIGCHLD they sent dropped.
    `children`: its children in the tree, already finished (in their stop)."""
    stopped = [c for c in children if not c.zombie and c.stopped]
    for c in stopped:
        if c.stop_reported:
            got = stub.syscall("wait4", c.pid, 0, WUNTRACED | WNOHANG, 0)
            if got != c.pid:
                raise RestoreError(f"cannot restore PID {stub.vpid}: the new stop of its child {c.pid}, whose report "
                                   f"it had collected, is not there to collect (wait4: {got})")
    if stopped:
        stub.discard_pending(signal.SIGCHLD)


def stop_signal(image: image_pb2.ProcessImage) -> int:
    """The signal to stop the restored process with; 0: not stopped.  (Images before version 3: SIGSTOP.)"""
    if not image.stopped:
        return 0
    return image.stop_signal or signal.SIGSTOP


def newer_than_version_2(image: image_pb2.ProcessImage) -> bool:
    """A version-2 reader would stop it with SIGSTOP, and report the stop again."""
    return stop_signal(image) not in (0, signal.SIGSTOP) or image.stop_reported


def restore(stub: Stub, image: image_pb2.ProcessImage) -> None:
    """Puts a process that was stopped into its stop again; after every injection into its other
    threads (they would enter the stop), before its threads are let go."""
    sig = stop_signal(image)
    if not sig:
        return
    helpers = _link_group(stub) if sig != signal.SIGSTOP and group_orphaned(stub.pid) else []
    try:
        _stop(stub, sig)
    finally:
        _unlink_group(stub, helpers)


def _stop(stub: Stub, sig: int) -> None:
    tid = stub.pid
    mask = pt.get_sigmask(tid)
    pt.set_sigmask(tid, ALL_SIGNALS & ~(1 << (sig - 1)))     # the rest stay blocked until the final masks
    pt.singlestep(tid, sig)
    st = pt.wait(tid)
    pt.set_sigmask(tid, mask)
    if not _group_stop_trap(tid, st, sig):
        # E.g. discarded in an orphaned group: it comes back as a plain signal, which the next resume drops.
        raise RestoreError(f"cannot restore PID {stub.vpid}: it was stopped by {signal.Signals(sig).name}, which did "
                           f"not stop it again ({st.describe()}: no group stop)")


def _group_stop_trap(tid: int, st: pt.WaitStatus, sig: int) -> bool:
    """Whether `st` is the trap of a group stop by `sig`: PTRACE_EVENT_STOP for a seized tracee; a stop
    without siginfo otherwise (a signal-delivery-stop has one)."""
    if not st.stopped or st.stopsig != sig:
        return False
    if st.event == pt.PTRACE_EVENT_STOP:
        return True
    try:
        pt.get_siginfo(tid)
    except OSError as exc:
        return exc.errno == errno.EINVAL
    return False


def group_orphaned(pid: int) -> bool:
    """Whether pid's process group is orphaned: no member has its parent in another group of the
    same session (the kernel's test; a parent that is init does not count)."""
    me = proc.stat(pid)
    for other in _all_pids():
        try:
            st = proc.stat(other)
            if st.pgid != me.pgid or st.state in ("Z", "X") or st.ppid <= 1:
                continue
            parent = proc.stat(st.ppid)
        except ProcessNotFound:
            continue
        if parent.pgid != me.pgid and parent.sid == me.sid:
            return False
    return True


def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _link_group(stub: Stub) -> list[Stub]:
    """[inner, outer] helpers that make the stub's group not orphaned (see the module's comment)."""
    helpers: list[Stub] = []
    try:
        group = stub.call("getpgid", 0)                 # the job's numbering, as setpgid() wants
        helpers.append(_fork(stub))
        helpers[0].call("setpgid", 0, 0)
        helpers.insert(0, _fork(helpers[0]))
        helpers[0].call("setpgid", 0, group)
    except BaseException:
        _unlink_group(stub, helpers)
        raise
    return helpers


def _unlink_group(stub: Stub, helpers: list[Stub]) -> None:
    if not helpers:
        return
    try:
        if len(helpers) == 2:
            helpers[0].call("setpgid", 0, 0)          # out of the group before it ends: no SIGHUP
    finally:
        parents = [*helpers[1:], stub]
        for child, parent in zip(helpers, parents, strict=True):
            child.kill()
            parent.syscall("wait4", child.vpid, 0, WNOHANG | WALL, 0)


def _fork(parent: Stub) -> Stub:
    """A copy of `parent` with any PID and no exit signal, stopped under ptrace (TRACECLONE)."""
    vpid = parent.call("clone3", parent.put(_CLONE_ARGS.pack(*[0] * 11)), _CLONE_ARGS.size)
    pid = vpid if parent.vpid == parent.pid else proc.host_child(parent.pid, vpid)
    st = pt.wait(pid)
    if not st.stopped:
        raise RestoreError(f"cannot restore PID {parent.vpid}: a helper to re-create its stop {st.describe()}")
    return Stub.forked(pid, vpid, parent)
