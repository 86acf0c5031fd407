"""Scheduling of each thread: policy (SCHED_OTHER, BATCH, IDLE, FIFO, RR, DEADLINE) with its
flags (SCHED_RESET_ON_FORK), real-time priority, deadline parameters or custom time slice
(sched_getattr), the I/O priority (ioprio_get) and the timer slack (/proc/TID/timerslack_ns).
The nice value and the CPU affinity are task.py's.

All are read and set from outside, by TID (incr is root).  Restore sets them last, once every
thread of the process has its final registers and before any is let go: a SCHED_FIFO thread
stopped under ptrace runs nothing, so it cannot starve incr on a small machine.  The timer slack
follows the policy: the kernel forces it to 0 under a real-time policy and resets it to the
thread's default when leaving one.
"""

from __future__ import annotations

import ctypes
import os
import struct

from incr.proto import image_pb2

from .errors import RestoreError, Unsupported

SCHED_OTHER, SCHED_FIFO, SCHED_RR, SCHED_BATCH, SCHED_IDLE, SCHED_DEADLINE = 0, 1, 2, 3, 5, 6
SCHED_FLAG_RESET_ON_FORK, SCHED_FLAG_RECLAIM, SCHED_FLAG_DL_OVERRUN = 0x01, 0x02, 0x04
_KNOWN_FLAGS = SCHED_FLAG_RESET_ON_FORK | SCHED_FLAG_RECLAIM | SCHED_FLAG_DL_OVERRUN
_POLICIES = {SCHED_OTHER: "SCHED_OTHER", SCHED_FIFO: "SCHED_FIFO", SCHED_RR: "SCHED_RR", SCHED_BATCH: "SCHED_BATCH",
             SCHED_IDLE: "SCHED_IDLE", SCHED_DEADLINE: "SCHED_DEADLINE"}
_FAIR = (SCHED_OTHER, SCHED_BATCH, SCHED_IDLE)
_REAL_TIME = (SCHED_FIFO, SCHED_RR, SCHED_DEADLINE)
# struct sched_attr (SCHED_ATTR_SIZE_VER1): size, policy, flags, nice, priority, runtime, deadline, period,
# util_min, util_max
_ATTR = struct.Struct("<IIQiIQQQII")
_NR_SCHED_SETATTR, _NR_SCHED_GETATTR, _NR_IOPRIO_SET, _NR_IOPRIO_GET = 314, 315, 251, 252
IOPRIO_WHO_PROCESS = 1
UCLAMP_MAX = 1024

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _syscall(nr: int, *args: int | ctypes.Array[ctypes.c_char]) -> int:
    ret = int(_libc.syscall(nr, *args))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return ret


def getattr_of(tid: int) -> tuple[int, ...]:
    """sched_getattr(tid): the fields of _ATTR."""
    buf = ctypes.create_string_buffer(_ATTR.size)
    _syscall(_NR_SCHED_GETATTR, tid, buf, _ATTR.size, 0)
    return _ATTR.unpack(buf.raw)


def _timerslack(tid: int) -> int:
    with open(f"/proc/{tid}/timerslack_ns", encoding="ascii") as f:     # /proc/TID: that thread's
        return int(f.read())


def _default_slice() -> int:
    """The time slice of a fair thread that never chose one: incr's own (its thread's)."""
    return getattr_of(0)[5]


def dump_thread(pid: int, tid: int) -> image_pb2.Sched:
    try:
        _, policy, flags, _, priority, runtime, deadline, period, util_min, util_max = getattr_of(tid)
        ioprio = _syscall(_NR_IOPRIO_GET, IOPRIO_WHO_PROCESS, tid)
        slack = _timerslack(tid)
    except OSError as exc:
        raise Unsupported(pid, f"thread {tid} scheduling", f"cannot read it: {exc.strerror}") from None
    policy &= ~0x40000000                      # SCHED_RESET_ON_FORK as or'ed into the policy
    if policy not in _POLICIES:
        raise Unsupported(pid, f"thread {tid} scheduling", f"policy {policy} is not supported yet")
    if flags & ~_KNOWN_FLAGS:
        raise Unsupported(pid, f"thread {tid} scheduling", f"sched_getattr flags {flags:#x} are not supported yet")
    if (util_min, util_max) not in ((0, 0), (0, UCLAMP_MAX)):
        raise Unsupported(pid, f"thread {tid} scheduling", f"utilization clamps ({util_min}, {util_max}) are not "
                          "supported yet")
    if policy in _FAIR and runtime == _default_slice():
        runtime = 0                            # no slice of its own: the restoring kernel's default
    if policy not in (SCHED_DEADLINE, *_FAIR):
        runtime = deadline = period = 0
    return image_pb2.Sched(policy=policy, flags=flags, priority=priority, runtime=runtime, deadline=deadline,
                           period=period, ioprio=ioprio, timerslack_ns=slack)


def needs_version_3(image: image_pb2.TreeImage) -> bool:
    """Whether a version-2 reader, whose threads keep incr's own scheduling, would restore another."""
    mine = (SCHED_OTHER, 0, 0, 0, _syscall(_NR_IOPRIO_GET, IOPRIO_WHO_PROCESS, 0), _timerslack(os.getpid()))
    return any((s.policy, s.flags, s.priority, s.runtime, s.ioprio, s.timerslack_ns) != mine
               for p in image.processes for t in p.threads if t.HasField("sched") for s in [t.sched])


def describe(s: image_pb2.Sched) -> str:
    return f"{_POLICIES.get(s.policy, s.policy)} priority {s.priority}"


# ---------------------------------------------------------------- restore

def restore_thread(tid: int, thread: image_pb2.ThreadImage) -> None:
    """From outside, in the stopped thread `tid` (as incr sees it) restored from `thread`: the policy
    (with the nice value, which a fair policy sets too), then I/O priority and timer slack."""
    s = thread.sched
    try:
        attr = ctypes.create_string_buffer(_ATTR.pack(_ATTR.size, s.policy, s.flags, thread.nice, s.priority,
                                                      s.runtime, s.deadline, s.period, 0, 0))
        _syscall(_NR_SCHED_SETATTR, tid, attr, 0)
        if _syscall(_NR_IOPRIO_GET, IOPRIO_WHO_PROCESS, tid) != s.ioprio:
            _syscall(_NR_IOPRIO_SET, IOPRIO_WHO_PROCESS, tid, s.ioprio)
        if s.policy not in _REAL_TIME and _timerslack(tid) != s.timerslack_ns:
            with open(f"/proc/{tid}/timerslack_ns", "w", encoding="ascii") as f:
                f.write(str(s.timerslack_ns))
    except OSError as exc:
        raise RestoreError(f"cannot restore thread {thread.tid}'s scheduling ({describe(s)}, "
                           f"I/O priority {s.ioprio:#x}, "
                           f"timer slack {s.timerslack_ns} ns): {exc.strerror}") from None
