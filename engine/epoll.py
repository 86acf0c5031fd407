"""epoll: its watched descriptors, events and user data, from fdinfo; recreated
with epoll_create1 + epoll_ctl(ADD), after every other descriptor of the process."""

from __future__ import annotations

import os
import re
import struct

from incr.proto import image_pb2

from .errors import Unsupported
from .remote import RemoteProcess

EPOLL_CTL_ADD = 1
_TFD = re.compile(r"tfd:\s*(\d+)\s+events:\s*([0-9a-f]+)\s+data:\s*([0-9a-f]+).*\bino:([0-9a-f]+)\s+sdev:([0-9a-f]+)")


def dump(pid: int, fd: int, lines: list[str]) -> image_pb2.EpollState:
    state = image_pb2.EpollState()
    for line in lines:
        m = _TFD.search(line)
        if not m:
            continue
        tfd, events, data, ino = int(m.group(1)), int(m.group(2), 16), int(m.group(3), 16), int(m.group(4), 16)
        # The watch is on a file, not a number: the number must still name that file.
        try:
            alive = os.stat(f"/proc/{pid}/fd/{tfd}").st_ino == ino
        except OSError:
            alive = False
        if not alive:
            raise Unsupported(pid, f"fd {fd} (epoll)", f"it watches a file no longer open as fd {tfd}")
        state.watches.append(image_pb2.EpollWatch(fd=tfd, events=events, data=data))
    return state


def restore(target: RemoteProcess, state: image_pb2.EpollState, flags: int) -> int:
    fd = target.call("epoll_create1", flags & os.O_CLOEXEC)
    for w in state.watches:
        target.call("epoll_ctl", fd, EPOLL_CTL_ADD, w.fd, target.put(struct.pack("<IQ", w.events, w.data)))
    return fd
