"""Namespaces: a restore creates the job's processes in incr's own namespaces (mount, network, UTS,
IPC, cgroup, time, user), so a job whose threads run in others (unshare(1), a container) would come
back with another hostname, network, mounts or clocks.  The checkpoint refuses it.

Compared with incr's own, per thread (a thread may unshare its network, UTS or IPC namespace), and
with what each thread gives its children (pid_for_children, time_for_children: unshare(CLONE_NEWPID)
or unshare(CLONE_NEWTIME) before a fork).  PID namespaces below incr's are refused before this
(dump.py); a job restored with --new-pidns runs in one, with an IPC namespace of its own.
"""

from __future__ import annotations

import os

from . import proc
from .errors import ProcessNotFound, Unsupported

KINDS = {"mnt": "mount", "net": "network", "uts": "UTS", "ipc": "IPC", "cgroup": "cgroup", "time": "time",
         "user": "user"}
# what a thread's children get -> the namespace it is compared with (the thread's own)
FOR_CHILDREN = {"pid_for_children": "pid", "time_for_children": "time"}


def _link(path: str) -> str:
    try:
        return os.readlink(path)
    except FileNotFoundError:       # a kernel without that kind: nothing to differ
        return ""


def own() -> dict[str, str]:
    return {kind: _link(f"/proc/thread-self/ns/{kind}") for kind in KINDS}


def differing(pid: int, tid: int, mine: dict[str, str]) -> list[tuple[str, str, str]]:
    """The namespaces of thread `tid` of `pid` that are not `mine` (incr's): (what, its link, the link
    it should be), e.g. ("network", "net:[4026532301]", "net:[4026531840]")."""
    base = f"/proc/{pid}/task/{tid}/ns"
    if not os.path.exists(base):
        raise ProcessNotFound(tid)
    out = []
    for kind, what in KINDS.items():
        link = _link(f"{base}/{kind}")
        if link != mine[kind]:
            out.append((what, link, mine[kind]))
    for kind, of in FOR_CHILDREN.items():
        link, expected = _link(f"{base}/{kind}"), _link(f"{base}/{of}")
        if link and link != expected:           # unshared, no child yet: its children would run there
            out.append((f"{'PID' if of == 'pid' else of} (for its children)", link, expected))
    return out


def check(pid: int) -> None:
    mine = own()
    for tid in proc.tasks(pid):
        found = differing(pid, tid, mine)
        if not found:
            continue
        kinds = " and ".join(what for what, _, _ in found)
        noun = "namespace" if len(found) == 1 else "namespaces"
        who = "it runs" if tid == pid else f"its thread {tid} runs"
        article = "a " if len(found) == 1 else ""
        raise Unsupported(pid, f"{kinds} {noun} ({', '.join(link for _, link, _ in found)})",
                          f"{who} in {article}{kinds} {noun} of its own (incr's: "
                          f"{', '.join(ex for _, _, ex in found)}); namespaces other than incr's are not supported "
                          "yet")
