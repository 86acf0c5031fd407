"""Credentials of each thread: user and group ids, supplementary groups, no_new_privs, and the
capabilities (caps.py).  All live in a thread's own credentials: a raw setresuid() or setgroups()
syscall (glibc's setuid() does it in every thread) changes one thread only, so each thread is
dumped from its own /proc/PID/task/TID/status and restored in itself.

Set last on restore (after them, a non-root job could not be rebuilt).
seccomp filters are engine/seccomp.py's (strict mode is refused here, before the freeze).
"""

from __future__ import annotations

import os
import struct

from incr.proto import image_pb2

from . import audit, caps, proc, seccomp
from .remote import RemoteProcess
from .tracee import Tracee

PR_SET_NO_NEW_PRIVS = 38


def _ids(status: dict[str, str]) -> image_pb2.Creds:
    return image_pb2.Creds(
        uids=[int(x) for x in status["Uid"].split()],
        gids=[int(x) for x in status["Gid"].split()],
        groups=[int(x) for x in status.get("Groups", "").split()],
        no_new_privs=status.get("NoNewPrivs", "0") == "1",
    )


def own() -> image_pb2.Creds:
    """incr's own ids (the restore stubs have them until they are switched)."""
    return _ids(proc.status(os.getpid()))


def dump(pid: int, status: dict[str, str]) -> image_pb2.Creds:
    """The process's (its leader's ids, as older images hold them) and its audit ids."""
    seccomp.check_mode(pid, status)
    audit.check(pid, proc.tasks(pid))
    creds = _ids(status)
    ids = audit.dump(pid)
    if ids is not None:
        creds.audit.CopyFrom(ids)
    return creds


def check_threads(pid: int, tids: list[int]) -> None:
    """What can be refused without injecting, on a running process (dump.check_supported)."""
    mine = caps.own()
    for tid in tids:
        status = proc.status(tid)              # /proc/TID: that thread's own credentials
        seccomp.check_mode(pid, status)
        caps.check(pid, tid, caps.from_status(status, 0), mine)


def dump_thread(tracee: Tracee) -> image_pb2.Creds:
    status = proc.status(tracee.tid)
    seccomp.check_mode(tracee.pid, status)
    creds = _ids(status)
    creds.caps.CopyFrom(caps.dump_thread(tracee, status))
    caps.check(tracee.pid, tracee.tid, creds.caps, caps.own())
    return creds


def needs_version_3(image: image_pb2.TreeImage) -> bool:
    """A version-2 reader gives every thread its process's ids, and capabilities only by its uids."""
    mine = caps.own()
    for p in image.processes:
        for t in p.threads:
            if not t.HasField("creds"):
                continue
            c = t.creds
            ids = (list(c.uids), list(c.gids), list(c.groups), c.no_new_privs)
            if ids != (list(p.creds.uids), list(p.creds.gids), list(p.creds.groups), p.creds.no_new_privs):
                return True
            if caps.needs_version_3(c.caps, 0 in c.uids[:3], mine):
                return True
    return False


# ---------------------------------------------------------------- restore

def restore_thread(target: RemoteProcess, tid: int, creds: image_pb2.Creds) -> None:
    """The credentials `creds` in the thread `target` drives (TID `tid` as incr sees it), which holds
    incr's own.  An image without capabilities (older than version 3) gets what setresuid() leaves."""
    status = proc.status(tid)
    now = _ids(status)
    switching = (list(creds.uids), list(creds.gids), list(creds.groups)) != \
        (list(now.uids), list(now.gids), list(now.groups))
    have_caps = caps.from_status(status, 0)
    if creds.HasField("caps"):
        have_caps.securebits = target.call("prctl", caps.PR_GET_SECUREBITS, 0, 0, 0, 0)
        caps.prepare(target, creds.caps, have_caps, switching_ids=switching)
    if creds.no_new_privs and not now.no_new_privs:
        target.call("prctl", PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    _switch_ids(target, creds, now)
    if creds.HasField("caps"):
        caps.finish(target, creds.caps, have_caps)


def _switch_ids(target: RemoteProcess, creds: image_pb2.Creds, now: image_pb2.Creds) -> None:
    # Raw syscalls: they change the calling thread only, which is what each thread needs.
    if list(creds.groups) != list(now.groups):
        raw = struct.pack(f"<{len(creds.groups)}I", *creds.groups)
        target.call("setgroups", len(creds.groups), target.put(raw) if raw else 0)
    if list(creds.gids) != list(now.gids):
        target.call("setresgid", *creds.gids[:3])
        target.call("setfsgid", creds.gids[3])
    if list(creds.uids) != list(now.uids):
        target.call("setresuid", *creds.uids[:3])
        target.call("setfsuid", creds.uids[3])
