"""Credentials: user and group ids, supplementary groups, no_new_privs.

Set last on restore (after them, a non-root job could not be rebuilt).
Seccomp filters cannot be read back and are refused.
"""

from __future__ import annotations

import struct

from incr.proto import image_pb2

from .errors import Unsupported
from .remote import RemoteProcess

PR_SET_NO_NEW_PRIVS = 38


def dump(pid: int, status: dict[str, str]) -> image_pb2.Creds:
    if status.get("Seccomp", "0") != "0":
        raise Unsupported(pid, "seccomp filter", "processes under seccomp are not supported yet")
    return image_pb2.Creds(
        uids=[int(x) for x in status["Uid"].split()],
        gids=[int(x) for x in status["Gid"].split()],
        groups=[int(x) for x in status.get("Groups", "").split()],
        no_new_privs=status.get("NoNewPrivs", "0") == "1",
    )


def restore(target: RemoteProcess, creds: image_pb2.Creds, current: image_pb2.Creds) -> None:
    """`current` is the stub's (incr's) own credentials: only differences are injected."""
    if creds.no_new_privs:
        target.call("prctl", PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    if list(creds.groups) != list(current.groups):
        raw = struct.pack(f"<{len(creds.groups)}I", *creds.groups)
        target.call("setgroups", len(creds.groups), target.put(raw) if raw else 0)
    if list(creds.gids) != list(current.gids):
        target.call("setresgid", *creds.gids[:3])
        target.call("setfsgid", creds.gids[3])
    if list(creds.uids) != list(current.uids):
        target.call("setresuid", *creds.uids[:3])
        target.call("setfsuid", creds.uids[3])
