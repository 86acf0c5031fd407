"""The audit login uid and session id (/proc/PID/loginuid, /proc/PID/sessionid).

A process gets both from its parent at fork.  Writing a login uid (a process may write only its
own, and once set only with CAP_AUDIT_CONTROL) also gives it a session id: a fresh one from a
kernel counter, or none with the unset uid 4294967295.  No one can set a session id.  So:

* a job with no login uid (a system service's, a batch system's) can always be brought back as
  it was: restore writes the unset uid if the restorer has one;
* a job in incr's own audit session comes back in the session of the restore, the same one
  when restored from there;
* any other (the job, or its launcher, wrote a login uid) cannot: its session id would be a new
  one.  The checkpoint refuses it.

A job restored from another login session than the one it was checkpointed in joins the
restorer's audit session, as it gets the restorer's terminal, and restore says so: giving it
back its login uid would give it a new session id anyway, and the incr supervising it from that
session could no longer checkpoint it.
"""

from __future__ import annotations

import logging
import os

from incr.proto import image_pb2

from .errors import ProcessNotFound, RemoteSyscallFailed, RestoreError, Unsupported
from .remote import RemoteProcess

log = logging.getLogger(__name__)

UNSET = 0xFFFFFFFF
AT_FDCWD = -100


def _read(path: str) -> image_pb2.AuditIds | None:
    try:
        with open(f"{path}/loginuid", encoding="ascii") as f:
            loginuid = int(f.read())
        with open(f"{path}/sessionid", encoding="ascii") as f:
            sessionid = int(f.read())
    except (FileNotFoundError, ProcessLookupError):
        if not os.path.exists(path):
            raise ProcessNotFound(int(os.path.basename(path))) from None
        return None                  # a kernel without audit: nothing to keep
    return image_pb2.AuditIds(loginuid=loginuid, sessionid=sessionid)


def dump(pid: int) -> image_pb2.AuditIds | None:
    return _read(f"/proc/{pid}")


def describe(ids: image_pb2.AuditIds | None) -> str:
    if ids is None:
        return "no audit"
    uid = "unset" if ids.loginuid == UNSET else str(ids.loginuid)
    session = "none" if ids.sessionid == UNSET else str(ids.sessionid)
    return f"audit session {session} (login uid {uid})"


def check(pid: int, tids: list[int]) -> None:
    """Refuses a job in an audit session other than incr's (but none), or whose threads differ."""
    ids = dump(pid)
    mine = _read("/proc/thread-self")
    if ids != mine and not (ids is not None and ids.loginuid == UNSET and ids.sessionid == UNSET):
        raise Unsupported(pid, "audit session", f"it runs in {describe(ids)}, incr in {describe(mine)}: the kernel "
                          "gives a new session id whenever a login uid is set, so a restore could not give it back; "
                          "run incr from the job's own login session")
    for tid in tids:
        if (theirs := _read(f"/proc/{tid}")) != ids:
            raise Unsupported(pid, f"thread {tid} audit session", f"it runs in {describe(theirs)}, "
                              f"its process in {describe(ids)}; threads in audit sessions of their own are not "
                              "supported")


def restore(target: RemoteProcess, ids: image_pb2.AuditIds) -> None:
    """In the main thread of a stub before it clones the other threads (they inherit its ids)."""
    now = dump(target.pid)
    if now is None or now == ids:
        return
    if ids.loginuid == UNSET:
        _write_loginuid(target, UNSET)          # none again: exactly as it was
        return
    log.warning("PID %d ran in %s, which the kernel cannot give back; it continues in this restore's %s",
                target.vpid, describe(ids), describe(now))


def _write_loginuid(target: RemoteProcess, loginuid: int) -> None:
    # Only the process itself may write its own.
    text = str(loginuid).encode()
    try:
        fd = target.call("openat", AT_FDCWD, target.put(b"/proc/self/loginuid\0"), os.O_WRONLY, 0)
        try:
            target.call("write", fd, target.put(text), len(text))
        finally:
            target.call("close", fd)
    except RemoteSyscallFailed as exc:
        raise RestoreError(f"cannot restore PID {target.vpid}: it had no audit login uid, and writing the unset "
                           f"one failed: {exc} (it needs CAP_AUDIT_CONTROL and no loginuid_immutable); restore "
                           "from a shell with no login uid (a system service's)") from None
