"""Per-process attributes with no better home: name (comm), personality,
nice value, CPU affinity, OOM score adjustment.

The restore stub inherited all of these from incr itself, so each is set
whatever its value."""

from __future__ import annotations

import logging
import os

from incr.proto import image_pb2

from . import proc
from .remote import RemoteProcess

log = logging.getLogger(__name__)

PR_SET_NAME = 15


def dump_personality(pid: int) -> int:
    with open(f"/proc/{pid}/personality", encoding="ascii") as f:
        return int(f.read(), 16)


def _oom_score_adj(pid: int) -> int:
    with open(f"/proc/{pid}/oom_score_adj", encoding="ascii") as f:
        return int(f.read())


def dump(pid: int, image: image_pb2.ProcessImage, stat: proc.Stat) -> None:
    image.personality = dump_personality(pid)
    image.nice = stat[19]
    image.cpu_affinity.extend(sorted(os.sched_getaffinity(pid)))
    image.oom_score_adj = _oom_score_adj(pid)


def restore(target: RemoteProcess, image: image_pb2.ProcessImage) -> None:
    pid = target.pid
    target.call("prctl", PR_SET_NAME, target.put(image.comm.encode()[:15] + b"\0"), 0, 0, 0)
    if image.personality != dump_personality(pid):
        target.call("personality", image.personality)
    os.setpriority(os.PRIO_PROCESS, pid, image.nice)
    try:
        with open(f"/proc/{pid}/oom_score_adj", "w", encoding="ascii") as f:
            f.write(str(image.oom_score_adj))
    except PermissionError:        # lowering it needs CAP_SYS_RESOURCE
        log.warning("PID %d: cannot set oom_score_adj back to %d (no CAP_SYS_RESOURCE)", pid, image.oom_score_adj)
    if image.cpu_affinity:
        wanted = set(image.cpu_affinity)
        usable = wanted & os.sched_getaffinity(0)
        if usable != wanted:
            log.warning("PID %d: CPUs %s are not available here; running on %s", pid,
                        sorted(wanted - usable), sorted(usable) or "any")
        if usable:
            os.sched_setaffinity(pid, usable)
