"""Timers: interval timers (setitimer) and POSIX timers (timer_create).  Dump and restore.

POSIX timers are listed by /proc/PID/timers (id, clock, signal, how they
notify); the time left is read by an injected timer_gettime.  They come back
with their ids, which the job holds as timer_t values: with
prctl(PR_TIMER_CREATE_RESTORE_IDS) where the kernel has it (Linux >= 6.16),
else by creating them in id order, filling gaps with timers deleted again.
"""

from __future__ import annotations

import re
import struct

from incr.proto import image_pb2

from . import proc
from .errors import RestoreError, Unsupported
from .remote import RemoteProcess
from .tracee import Tracee

_ITIMERVAL = struct.Struct("<qqqq")      # it_interval (sec, usec), it_value (sec, usec)
_ITIMERSPEC = struct.Struct("<qqqq")     # it_interval (sec, nsec), it_value (sec, nsec)
_SIGEVENT = struct.Struct("<QiiI44x")    # sigev_value, sigev_signo, sigev_notify, _tid (64 bytes)
ITIMERS = (0, 1, 2)                      # ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF
PR_TIMER_CREATE_RESTORE_IDS = 77
SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD, SIGEV_THREAD_ID = 0, 1, 2, 4
_NOTIFY = {"signal": SIGEV_SIGNAL, "none": SIGEV_NONE, "thread": SIGEV_THREAD}
_MAX_GAP = 4096
NS = 1_000_000_000


def check_posix_timers(pid: int) -> None:
    """Kept for the live pre-check: POSIX timers are supported (parsing fails loudly if /proc changes)."""
    _parse(proc.timers(pid))


def _parse(text: str) -> list[image_pb2.PosixTimer]:
    out = []
    for block in re.split(r"\n(?=ID:)", text.strip()):
        if not block:
            continue
        fields = dict(line.split(":", 1) for line in block.splitlines())
        signo, value = fields["signal"].strip().split("/")
        how, who = fields["notify"].strip().split("/")
        notify = _NOTIFY[how] | (SIGEV_THREAD_ID if who.startswith("tid") else 0)
        out.append(image_pb2.PosixTimer(id=int(fields["ID"]), clockid=int(fields["ClockID"]), signo=int(signo),
                                        value=int(value, 16), notify=notify,
                                        tid=int(who.split(".")[1]) if who.startswith("tid") else 0))
    return sorted(out, key=lambda t: t.id)


def dump(tracee: Tracee) -> tuple[list[image_pb2.ITimer], list[image_pb2.PosixTimer]]:
    itimers = []
    posix = _parse(proc.timers(tracee.pid))
    threads = set(proc.tasks(tracee.pid))
    for t in posix:
        if t.notify & SIGEV_THREAD_ID and t.tid not in threads:
            # (/proc shows 0 for a thread that has exited: the kernel signals no one then)
            raise Unsupported(tracee.pid, f"POSIX timer {t.id}", f"it signals thread {t.tid or '(exited)'}, "
                              "not a thread of the process; not supported")
    with tracee.stack_scratch(_ITIMERSPEC.size) as scratch:
        for which in ITIMERS:
            tracee.call("getitimer", which, scratch.addr)
            isec, iusec, vsec, vusec = _ITIMERVAL.unpack(tracee.read(scratch.addr, _ITIMERVAL.size))
            if vsec or vusec or isec or iusec:
                itimers.append(image_pb2.ITimer(which=which, interval_us=isec * 1_000_000 + iusec,
                                                value_us=vsec * 1_000_000 + vusec))
        for t in posix:
            tracee.call("timer_gettime", t.id, scratch.addr)
            isec, insec, vsec, vnsec = _ITIMERSPEC.unpack(tracee.read(scratch.addr, _ITIMERSPEC.size))
            t.interval_ns, t.value_ns = isec * NS + insec, vsec * NS + vnsec
    return itimers, posix


def restore(target: RemoteProcess, itimers: list[image_pb2.ITimer]) -> None:
    for t in itimers:
        # No time left but an interval: an ITIMER_REAL that fired, whose SIGALRM is pending (the
        # kernel re-arms it when the signal is dequeued; setitimer cannot say that).  It goes on one
        # interval from now: the pending SIGALRM, restored as it was, then comes first.
        value_us = t.value_us or t.interval_us
        _setitimer(target, t.which, t.interval_us, value_us)
        if t.which != ITIMERS[0]:
            # The kernel adds one tick to the value of a CPU-time itimer it sets (kernel/time/itimer.c):
            # each restore would make the job's timer a tick later.  What it added is read back (the
            # stub uses no CPU time meanwhile) and taken off again.
            extra = _getitimer_value(target, t.which) - value_us
            if 0 < extra < value_us:
                _setitimer(target, t.which, t.interval_us, value_us - extra)


def _setitimer(target: RemoteProcess, which: int, interval_us: int, value_us: int) -> None:
    raw = _ITIMERVAL.pack(*divmod(interval_us, 1_000_000), *divmod(value_us, 1_000_000))
    target.call("setitimer", which, target.put(raw), 0)


def _getitimer_value(target: RemoteProcess, which: int) -> int:
    at = target.put(bytes(_ITIMERVAL.size))
    target.call("getitimer", which, at)
    _, _, vsec, vusec = _ITIMERVAL.unpack(_read(target, at, _ITIMERVAL.size))
    return int(vsec * 1_000_000 + vusec)


def restore_posix(target: RemoteProcess, timers: list[image_pb2.PosixTimer]) -> None:
    """The POSIX timers of a process whose threads all exist already: a SIGEV_THREAD_ID timer's
    thread must be one of the caller's thread group when it is created."""
    if not timers:
        return
    by_id = target.syscall("prctl", PR_TIMER_CREATE_RESTORE_IDS, 1, 0, 0, 0) == 0
    spare: list[int] = []
    try:
        for t in timers:
            sev = target.put(_SIGEVENT.pack(t.value, t.signo, t.notify, t.tid))
            for _ in range(_MAX_GAP):
                idp = target.put(struct.pack("<i", t.id))       # the id wanted, when by_id
                target.call("timer_create", t.clockid, sev, idp)
                got = struct.unpack("<i", _read(target, idp, 4))[0]
                if got >= t.id:
                    break
                spare.append(got)        # ids handed out in order: fill the gap, delete later
            if got != t.id:
                raise RestoreError(f"cannot restore POSIX timer {t.id}: the kernel gave id {got}")
            if t.value_ns or t.interval_ns:
                spec = _ITIMERSPEC.pack(*divmod(t.interval_ns, NS), *divmod(t.value_ns, NS))
                target.call("timer_settime", t.id, 0, target.put(spec), 0)
        for tid in spare:
            target.call("timer_delete", tid)
    finally:
        if by_id:
            target.call("prctl", PR_TIMER_CREATE_RESTORE_IDS, 0, 0, 0, 0)


def _read(target: RemoteProcess, addr: int, size: int) -> bytes:
    from . import ptrace as pt

    buf = bytearray(size)
    pt.vm_read_into(target.pid, [(addr, size)], buf)
    return bytes(buf)
