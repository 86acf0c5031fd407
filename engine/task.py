"""Per-process attributes with no better home: name (comm) and personality."""

from __future__ import annotations

from incr.proto import image_pb2

from .remote import RemoteProcess

PR_SET_NAME = 15


def dump_personality(pid: int) -> int:
    with open(f"/proc/{pid}/personality", encoding="ascii") as f:
        return int(f.read(), 16)


def restore(target: RemoteProcess, image: image_pb2.ProcessImage) -> None:
    target.call("prctl", PR_SET_NAME, target.put(image.comm.encode()[:15] + b"\0"), 0, 0, 0)
    if image.personality != dump_personality(target.pid):
        target.call("personality", image.personality)
