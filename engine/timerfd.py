"""timerfd: clock, time left, interval and unread expirations, from fdinfo;
recreated with timerfd_create + timerfd_settime, ticks with TFD_IOC_SET_TICKS."""

from __future__ import annotations

import fcntl
import logging
import os
import re
import struct

from incr.proto import image_pb2

from .pipes import stolen
from .remote import RemoteProcess

log = logging.getLogger(__name__)

TFD_IOC_SET_TICKS = 0x40085400
_PAIR = re.compile(r"\((\d+),\s*(\d+)\)")


def _ns(text: str) -> int:
    m = _PAIR.search(text)
    return int(m.group(1)) * 1_000_000_000 + int(m.group(2)) if m else 0


def dump(info: dict[str, str]) -> image_pb2.TimerfdState:
    return image_pb2.TimerfdState(clockid=int(info["clockid"]), ticks=int(info.get("ticks", "0")),
                                  settime_flags=int(info.get("settime flags", "0"), 8),
                                  value_ns=_ns(info.get("it_value", "")), interval_ns=_ns(info.get("it_interval", "")))


def restore(target: RemoteProcess, state: image_pb2.TimerfdState, flags: int) -> int:
    fd = target.call("timerfd_create", state.clockid, flags & (os.O_NONBLOCK | os.O_CLOEXEC))
    if state.value_ns or state.interval_ns:
        # The time left is relative: the timer resumes where it was, whatever the wall clock did.
        spec = struct.pack("<4q", *divmod(state.interval_ns, 1_000_000_000), *divmod(state.value_ns, 1_000_000_000))
        target.call("timerfd_settime", fd, 0, target.put(spec), 0)
    if state.ticks:
        with stolen(target.pid, fd) as mine:
            try:
                fcntl.ioctl(mine, TFD_IOC_SET_TICKS, struct.pack("<Q", state.ticks))
            except OSError as exc:
                log.warning("timerfd: %d unread expirations lost (TFD_IOC_SET_TICKS: %s)", state.ticks, exc.strerror)
    return fd
