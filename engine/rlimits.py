"""Resource limits, read and set from outside with prlimit(2)."""

from __future__ import annotations

import resource

from incr.proto import image_pb2

from .errors import RestoreError

RLIMIT_COUNT = 16   # RLIMIT_CPU .. RLIMIT_RTTIME


def dump(pid: int) -> list[image_pb2.Rlimit]:
    out = []
    for res in range(RLIMIT_COUNT):
        soft, hard = resource.prlimit(pid, res)
        out.append(image_pb2.Rlimit(resource=res, soft=soft, hard=hard))
    return out


def restore(pid: int, limits: list[image_pb2.Rlimit]) -> None:
    for lim in limits:
        try:
            resource.prlimit(pid, lim.resource, (lim.soft, lim.hard))
        except (OSError, ValueError) as exc:
            raise RestoreError(f"cannot restore resource limit {lim.resource} = ({lim.soft}, {lim.hard}): "
                               f"{exc}") from None
