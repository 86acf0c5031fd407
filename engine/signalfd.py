"""signalfd: its signal mask, from fdinfo; recreated with signalfd4."""

from __future__ import annotations

import os
import struct

from incr.proto import image_pb2

from .remote import RemoteProcess


def dump(info: dict[str, str]) -> image_pb2.SignalfdState:
    return image_pb2.SignalfdState(mask=int(info["sigmask"], 16))


def restore(target: RemoteProcess, state: image_pb2.SignalfdState, flags: int) -> int:
    return target.call("signalfd4", -1, target.put(struct.pack("<Q", state.mask)), 8,
                       flags & (os.O_NONBLOCK | os.O_CLOEXEC))
