"""Interval timers (setitimer).  POSIX timers are refused until supported."""

from __future__ import annotations

import struct

from incr.proto import image_pb2

from . import proc
from .errors import Unsupported
from .remote import RemoteProcess
from .tracee import Tracee

_ITIMERVAL = struct.Struct("<qqqq")      # it_interval (sec, usec), it_value (sec, usec)
ITIMERS = (0, 1, 2)                      # ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF


def check_posix_timers(pid: int) -> None:
    if proc.timers(pid).strip():
        raise Unsupported(pid, "POSIX timers (timer_create)", "they are not supported yet")


def dump(tracee: Tracee) -> list[image_pb2.ITimer]:
    check_posix_timers(tracee.pid)
    out = []
    with tracee.stack_scratch(_ITIMERVAL.size) as scratch:
        for which in ITIMERS:
            tracee.call("getitimer", which, scratch.addr)
            isec, iusec, vsec, vusec = _ITIMERVAL.unpack(tracee.read(scratch.addr, _ITIMERVAL.size))
            if vsec or vusec:
                out.append(image_pb2.ITimer(which=which, interval_us=isec * 1_000_000 + iusec,
                                            value_us=vsec * 1_000_000 + vusec))
    return out


def restore(target: RemoteProcess, itimers: list[image_pb2.ITimer]) -> None:
    for t in itimers:
        raw = _ITIMERVAL.pack(*divmod(t.interval_us, 1_000_000), *divmod(t.value_us, 1_000_000))
        target.call("setitimer", t.which, target.put(raw), 0)
