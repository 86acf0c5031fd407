"""The audit login uid and session id (/proc/PID/loginuid, /proc/PID/sessionid).

A process gets both from its parent at fork.  Writing a login uid (a process may write only its
own, and once set only with CAP_AUDIT_CONTROL) also gives it a session id, a fresh one from a
kernel counter (or none with the unset uid 4294967295); no one can set a session id.  So a job
whose ids differ from incr's own cannot be brought back as it was: its session id would be new.
The checkpoint refuses it.  A restore run from another audit session (a later login) gives the job
back its login uid, and says that its session id is the restore's or a new one.
"""

from __future__ import annotations

import logging
import os

from incr.proto import image_pb2

from .errors import RemoteSyscallFailed, RestoreError, Unsupported
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
    except FileNotFoundError:        # a kernel without audit: nothing to keep
        return None
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
    """Refuses a job in an audit session other than incr's, or whose threads differ."""
    ids = dump(pid)
    mine = _read("/proc/thread-self")
    if ids != mine:
        raise Unsupported(pid, "audit session", f"it runs in {describe(ids)}, incr in {describe(mine)}: the kernel "
                          "gives a new session id whenever a login uid is set, so a restore could not give it back; "
                          "run incr from the job's own login session")
    for tid in tids:
        if _read(f"/proc/{tid}") != ids:
            raise Unsupported(pid, f"thread {tid} audit session", f"it runs in {describe(_read(f'/proc/{tid}'))}, "
                              f"its process in {describe(ids)}; threads in audit sessions of their own are not "
                              "supported")


def restore(target: RemoteProcess, ids: image_pb2.AuditIds) -> None:
    """In the main thread of a stub before it clones the other threads (they inherit its ids)."""
    now = dump(target.pid)
    if now is None or now == ids:
        return
    if now.loginuid != ids.loginuid:
        _write_loginuid(target, ids.loginuid)
        now = dump(target.pid)
    if now is not None and now.sessionid != ids.sessionid:
        log.warning("PID %d: its %s cannot be given back (the kernel assigns session ids); it continues "
                    "in audit session %s", target.vpid, describe(ids),
                    "none" if now.sessionid == UNSET else now.sessionid)


def _write_loginuid(target: RemoteProcess, loginuid: int) -> None:
    # Only the process itself may write its login uid.
    text = str(loginuid).encode()
    try:
        fd = target.call("openat", AT_FDCWD, target.put(b"/proc/self/loginuid\0"), os.O_WRONLY, 0)
        try:
            target.call("write", fd, target.put(text), len(text))
        finally:
            target.call("close", fd)
    except RemoteSyscallFailed as exc:
        raise RestoreError(f"cannot restore PID {target.vpid}: its audit login uid {loginuid}: {exc} (writing a "
                           "login uid once set needs CAP_AUDIT_CONTROL, and a kernel without "
                           "loginuid_immutable)") from None
