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
from typing import NamedTuple

from . import proc
from .errors import ProcessNotFound, Unsupported

KINDS = {"mnt": "mount", "net": "network", "uts": "UTS", "ipc": "IPC", "cgroup": "cgroup", "time": "time",
         "user": "user"}
# what a thread's children get -> the namespace it is compared with (the thread's own)
FOR_CHILDREN = {"pid_for_children": "pid", "time_for_children": "time"}


class Found(NamedTuple):
    what: str          # "network"
    link: str          # the thread's: "net:[4026532301]"
    expected: str      # what it would be restored into


def _link(path: str) -> str:
    try:
        return os.readlink(path)
    except FileNotFoundError:
        if os.path.lexists(path):   # pid_for_children after unshare(CLONE_NEWPID), before the first child
            return f"{os.path.basename(path).split('_')[0]}:[new, empty]"
        return ""                   # a kernel without that kind: nothing to differ


def own() -> dict[str, str]:
    return {kind: _link(f"/proc/thread-self/ns/{kind}") for kind in KINDS}


def differing(pid: int, tid: int, mine: dict[str, str]) -> tuple[list[Found], list[Found]]:
    """The namespaces of thread `tid` of `pid` that are not `mine` (incr's), and those it gives its
    children that are not its own."""
    base = f"/proc/{pid}/task/{tid}/ns"
    if not os.path.exists(base):
        raise ProcessNotFound(tid)
    try:
        own_kinds = [Found(what, link, mine[kind]) for kind, what in KINDS.items()
                     if (link := _link(f"{base}/{kind}")) != mine[kind]]
        for_children = [Found("PID" if of == "pid" else KINDS[of], link, expected)
                        for kind, of in FOR_CHILDREN.items()
                        if (link := _link(f"{base}/{kind}")) and link != (expected := _link(f"{base}/{of}"))]
    except PermissionError:
        # A thread on its way out: the kernel denies its links before its /proc entry goes.
        if not os.path.exists(base) or _exiting(pid, tid):
            raise ProcessNotFound(tid) from None
        raise
    if not os.path.exists(base):    # it exited meanwhile: its links read as missing, not as different
        raise ProcessNotFound(tid)
    return own_kinds, for_children


def _exiting(pid: int, tid: int) -> bool:
    try:
        with open(f"/proc/{pid}/task/{tid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rpartition(")")[2].split()[0] in ("X", "Z")
    except OSError:
        return True


def check(pid: int) -> None:
    mine = own()
    for tid in proc.tasks(pid):
        try:
            own_kinds, for_children = differing(pid, tid, mine)
        except ProcessNotFound:
            if tid == pid:
                raise
            continue                    # a thread that exited meanwhile
        found = own_kinds or for_children
        if not found:
            continue
        kinds = " and ".join(f.what for f in found)
        noun = "namespace" if len(found) == 1 else "namespaces"
        article = "a " if len(found) == 1 else ""
        links = ", ".join(f.link for f in found)
        expected = ", ".join(f.expected for f in found)
        who = "it" if tid == pid else f"its thread {tid}"
        if own_kinds:
            what = f"{kinds} {noun} ({links})"
            why = f"{who} runs in {article}{kinds} {noun} of its own (incr's: {expected})"
        else:
            what = f"{kinds} {noun} for its children ({links})"
            why = (f"{who} unshared {'it' if len(found) == 1 else 'them'}: its children would run in {article}{kinds} "
                   f"{noun} of their own (its own: {expected})")
        raise Unsupported(pid, what, f"{why}; namespaces other than incr's are not supported yet")
