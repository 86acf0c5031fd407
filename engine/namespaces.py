"""Namespaces: a restore creates the job's processes in incr's own namespaces (mount, network,
IPC, cgroup, time, user), so a job whose threads run in others (unshare(1), a container) would come
back with another network, mounts or clocks.  The checkpoint refuses it.

UTS namespaces (a host name of the job's own: unshare -u, a container's) come back.  Dump and
restore: a process whose threads all run in one that is not incr's records it (its id, host name
and domain name, read by a child of incr's that joins it); the restore's stub of each process,
before it forks its children, joins its parent's (by inheriting it), incr's or one the restore
made already for another process (setns through a pidfd of that stub), or makes it
(unshare(CLONE_NEWUTS), sethostname, setdomainname).  A thread in a UTS namespace other than its
process's is refused.

Compared with incr's own, per thread (a thread may unshare its network, UTS or IPC namespace), and
with what each thread gives its children (pid_for_children, time_for_children: unshare(CLONE_NEWPID)
or unshare(CLONE_NEWTIME) before a fork).  PID namespaces below incr's are refused before this
(dump.py); a job restored with --new-pidns runs in one, with an IPC namespace of its own.
"""

from __future__ import annotations

import ctypes
import os
from typing import NamedTuple

from incr.proto import image_pb2

from . import proc
from .errors import EngineError, ProcessNotFound, RestoreError, Unsupported
from .remote import RemoteProcess

CLONE_NEWUTS = 0x04000000

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
    leader_uts = _link(f"/proc/{pid}/ns/uts")
    for tid in proc.tasks(pid):
        try:
            own_kinds, for_children = differing(pid, tid, mine)
        except ProcessNotFound:
            if tid == pid:
                raise
            continue                    # a thread that exited meanwhile
        if tid == pid or _link(f"/proc/{pid}/task/{tid}/ns/uts") == leader_uts:
            own_kinds = [f for f in own_kinds if f.what != "UTS"]      # its process's: restored (dump_uts)
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


# -- UTS namespaces ------------------------------------------------------------------------------


def dump_uts(pid: int) -> image_pb2.UtsNamespace | None:
    """The UTS namespace process `pid` runs in, if it is not incr's (None: incr's)."""
    link = _link(f"/proc/{pid}/ns/uts")
    if not link or link == own()["uts"]:
        return None
    ident = os.stat(f"/proc/{pid}/ns/uts").st_ino
    hostname, domainname = _names_in(f"/proc/{pid}/ns/uts")
    return image_pb2.UtsNamespace(id=ident, hostname=hostname, domainname=domainname)


def _names_in(ns_path: str) -> tuple[bytes, bytes]:
    """The host and domain names of the UTS namespace at `ns_path`, read by a child of incr's that
    joins it (incr itself stays where it is)."""
    fd = os.open(ns_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        r, w = os.pipe()
        child = os.fork()
        if child == 0:                              # (only async-signal-safe work until _exit)
            try:
                os.close(r)
                if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWUTS) != 0:
                    os._exit(2)
                names = b"\0".join(_read_sys(n) for n in ("hostname", "domainname"))
                os.write(w, names)
                os._exit(0)
            except BaseException:
                os._exit(3)
        os.close(w)
        with os.fdopen(r, "rb") as f:
            raw = f.read()
        _, status = os.waitpid(child, 0)
    finally:
        os.close(fd)
    if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0 or raw.count(b"\0") != 1:
        raise EngineError(f"cannot read the host name of the UTS namespace {ns_path} (a child joining it "
                          f"ended with status {status:#x})")
    hostname, _, domainname = raw.partition(b"\0")
    return hostname, domainname


def _read_sys(name: str) -> bytes:
    with open(f"/proc/sys/kernel/{name}", "rb") as f:
        return f.read().removesuffix(b"\n")


def enter_uts(stub: RemoteProcess, want: image_pb2.UtsNamespace | None, inherited: int, made: dict[int, int],
              seen_as: int, *, incr_visible: bool = True) -> None:
    """Puts the just-forked `stub` (before its children) in the UTS namespace `want` (None: incr's):
    `inherited`, the id of the one it got from its parent (0: incr's); `made`: namespace id -> the
    PID (as the stubs see it) of the stub that made it in this restore; `seen_as`: this stub's PID
    as the stubs see it; `incr_visible`: whether they see incr (not from a new PID namespace)."""
    ident = want.id if want is not None else 0
    if ident == inherited:
        return
    if want is None:
        if not incr_visible:
            raise RestoreError(f"cannot restore PID {seen_as} in incr's UTS namespace, which its parent left, "
                               "inside a new PID namespace (--new-pidns); restore without it")
        _join(stub, os.getpid())
    elif ident in made:
        _join(stub, made[ident])
    else:
        stub.call("unshare", CLONE_NEWUTS)
        for call, name in (("sethostname", want.hostname), ("setdomainname", want.domainname)):
            stub.call(call, stub.put(name + b"\0"), len(name))
        made[ident] = seen_as


def _join(stub: RemoteProcess, pid: int) -> None:
    """setns(CLONE_NEWUTS) into the UTS namespace of process `pid`, through a pidfd."""
    fd = stub.call("pidfd_open", pid, 0)
    try:
        stub.call("setns", fd, CLONE_NEWUTS)
    finally:
        stub.call("close", fd)


def uses_uts(image: image_pb2.TreeImage) -> bool:
    return any(p.HasField("uts") for p in image.processes)
