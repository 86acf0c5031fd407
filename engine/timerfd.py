"""timerfd: clock, time left, interval and unread expirations, from fdinfo;
recreated with timerfd_create + timerfd_settime, ticks with TFD_IOC_SET_TICKS.

A periodic timer that expired and was not read since is not running: the kernel
counts one expiration and forwards it by the periods missed only when it is
read.  fdinfo then shows one tick and no time left, which restored as such
would be a timer stopped for good with its missed periods lost.  So on a frozen
tree such a timer is read through a descriptor of incr's own (forwarding it:
all its expirations, and the time to the next) and its count written straight
back (TFD_IOC_SET_TICKS): the job reads what it would have, and the image has
the true count and time left.
"""

from __future__ import annotations

import ctypes
import fcntl
import functools
import logging
import os
import re
import struct

from incr.proto import image_pb2

from . import proc
from .errors import EngineError
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


def settle(images: list[image_pb2.ProcessImage]) -> None:
    """Every expired periodic timer of a frozen tree forwarded (see above), once per description."""
    done: dict[int, image_pb2.TimerfdState] = {}
    for p in images:
        for f in p.files:
            if f.kind != image_pb2.OpenFile.TIMERFD or not (f.timerfd.ticks and f.timerfd.interval_ns):
                continue
            if f.id not in done:
                fd = next(d.fd for d in p.fds if d.file == f.id)
                done[f.id] = _forward(p.pid, fd, f.timerfd)
            f.timerfd.CopyFrom(done[f.id])


def _forward(pid: int, fd: int, state: image_pb2.TimerfdState) -> image_pb2.TimerfdState:
    if not _can_set_ticks():
        log.warning("PID %d fd %d: an expired periodic timerfd is saved as it shows (TFD_IOC_SET_TICKS is "
                    "missing here): restored, it counts one expiration and stays stopped", pid, fd)
        return state
    with stolen(pid, fd) as mine:
        try:
            raw = os.read(mine, 8)          # it has ticks: never blocks
        except BlockingIOError:
            raise EngineError(f"PID {pid} fd {fd}: its timerfd emptied while the job was frozen") from None
        fcntl.ioctl(mine, TFD_IOC_SET_TICKS, raw)
    out = dump(proc.fdinfo(pid, fd))
    out.ticks = struct.unpack("<Q", raw)[0]
    return out


@functools.cache
def _can_set_ticks() -> bool:
    """Whether the kernel has TFD_IOC_SET_TICKS (CONFIG_CHECKPOINT_RESTORE), tried on a timerfd of our own."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.timerfd_create(1, os.O_CLOEXEC)          # CLOCK_MONOTONIC
    if fd < 0:
        return False
    try:
        fcntl.ioctl(fd, TFD_IOC_SET_TICKS, struct.pack("<Q", 1))
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def restore(target: RemoteProcess, state: image_pb2.TimerfdState, flags: int) -> int:
    fd = target.call("timerfd_create", state.clockid, flags & (os.O_NONBLOCK | os.O_CLOEXEC))
    if state.value_ns or state.interval_ns:
        # The time left is relative: the timer resumes where it was, whatever the wall clock did.
        # No time left with an interval (an image saved before settle() existed) would disarm it.
        value_ns = state.value_ns or 1
        spec = struct.pack("<4q", *divmod(state.interval_ns, 1_000_000_000), *divmod(value_ns, 1_000_000_000))
        target.call("timerfd_settime", fd, 0, target.put(spec), 0)
    if state.ticks:
        with stolen(target.pid, fd) as mine:
            try:
                fcntl.ioctl(mine, TFD_IOC_SET_TICKS, struct.pack("<Q", state.ticks))
            except OSError as exc:
                log.warning("timerfd: %d unread expirations lost (TFD_IOC_SET_TICKS: %s)", state.ticks, exc.strerror)
    return fd
