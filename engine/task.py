"""Per-process and per-thread attributes with no better home: names (comm),
personality, nice values, CPU affinity, OOM score adjustment.

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


def dump(pid: int, image: image_pb2.ProcessImage) -> None:
    image.personality = dump_personality(pid)
    image.oom_score_adj = _oom_score_adj(pid)


def dump_thread(pid: int, thread: image_pb2.ThreadImage) -> None:
    tid = thread.tid
    st = proc.stat(tid)                      # /proc/TID works for any thread of the group
    thread.comm = st.comm
    thread.nice = st[19]
    thread.cpu_affinity.extend(sorted(os.sched_getaffinity(tid)))


def restore(target: RemoteProcess, image: image_pb2.ProcessImage) -> None:
    pid = target.pid
    if image.personality != dump_personality(pid):
        target.call("personality", image.personality)
    try:
        with open(f"/proc/{pid}/oom_score_adj", "w", encoding="ascii") as f:
            f.write(str(image.oom_score_adj))
    except PermissionError:        # lowering it needs CAP_SYS_RESOURCE
        log.warning("PID %d: cannot set oom_score_adj back to %d (no CAP_SYS_RESOURCE)", pid, image.oom_score_adj)


def set_name(target: RemoteProcess, comm: str) -> None:
    """The name of the thread `target` drives (what ps shows; 15 bytes at most)."""
    target.call("prctl", PR_SET_NAME, target.put(comm.encode()[:15] + b"\0"), 0, 0, 0)


def restore_thread(target: RemoteProcess, tid: int, thread: image_pb2.ThreadImage) -> None:
    """In the thread `target` drives: its name; from outside: nice value and affinity."""
    set_name(target, thread.comm)
    os.setpriority(os.PRIO_PROCESS, tid, thread.nice)
    if thread.cpu_affinity:
        wanted = set(thread.cpu_affinity)
        usable = wanted & os.sched_getaffinity(0)
        if usable != wanted:
            log.warning("thread %d: CPUs %s are not available here; running on %s", tid,
                        sorted(wanted - usable), sorted(usable) or "any")
        if usable:
            os.sched_setaffinity(tid, usable)
