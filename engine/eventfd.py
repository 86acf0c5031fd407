"""eventfd: the counter and semaphore mode, from fdinfo; recreated with eventfd2."""

from __future__ import annotations

import os
import struct

from incr.proto import image_pb2

from .pipes import stolen
from .remote import RemoteProcess

EFD_SEMAPHORE = 1


def dump(info: dict[str, str]) -> image_pb2.EventfdState:
    return image_pb2.EventfdState(count=int(info.get("eventfd-count", "0"), 16),
                                  semaphore=info.get("eventfd-semaphore", "0").strip() == "1")


def restore(target: RemoteProcess, state: image_pb2.EventfdState, flags: int) -> int:
    fd = target.call("eventfd2", 0, (flags & (os.O_NONBLOCK | os.O_CLOEXEC)) |
                     (EFD_SEMAPHORE if state.semaphore else 0))
    if state.count:            # eventfd2 takes 32 bits; the counter has 64
        with stolen(target.pid, fd) as mine:
            os.write(mine, struct.pack("<Q", state.count))
    return fd
