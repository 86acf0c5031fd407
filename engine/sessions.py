"""Processes of the job in a session that is neither their own nor their parent's: orphans of a
session.  Dump (a check) and restore (who forks them).

A child inherits its parent's session and group; setsid() makes a new session led by its caller.
A process whose session is neither its own nor its parent's was forked into it by a process that
has exited since, and came to its parent, a child subreaper, as an orphan: a double-forking
daemon under a subreaper, or a session whose leader exited while a process of it runs on.  The
restore does the same again: a process in that session forks the orphan and then exits, and the
kernel hands the orphan to the same subreaper.  That process is
* the session's leader itself, when it is a zombie child of the subreaper (it exited and was not
  reaped): its stub makes the session, forks the orphans, then ends as it ended (zombies.py);
* else, the leader gone altogether (reaped), a helper of incr with the leader's PID, forked by
  the subreaper's stub, which makes the session, forks the orphans, exits, and is reaped there.

Process groups the same way: a process in a group that is neither its own nor the one it is
forked in joins it (setpgid) once its leader is made, running or a zombie (made leading its
group before it ends); a group whose leader is gone is made by a helper with its PID, forked
by one of its members' stubs, which exits once they have joined, reaped there.

Refused at the checkpoint, in one line: any other way of being in another session (the parent
not a subreaper, the leader alive or a zombie elsewhere in the job), an orphan sharing its
descriptor table or file-system state with its parent (only a fork by the parent shares them),
and a process group whose leader is outside the job or has left it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from incr.proto import image_pb2

from . import proc
from .errors import Unsupported


def orphans(images: Iterable[image_pb2.ProcessImage]) -> dict[int, list[image_pb2.ProcessImage]]:
    """The orphans of each session (its leader's PID -> the processes, parents first), the root
    aside (restore gives it a session as it led one or not)."""
    listed = list(images)
    by_pid = {p.pid: p for p in listed}
    out: dict[int, list[image_pb2.ProcessImage]] = {}
    for p in listed[1:]:
        parent = by_pid.get(p.ppid)
        if parent is not None and p.sid not in (p.pid, parent.sid):
            out.setdefault(p.sid, []).append(p)
    return out


def check(images: list[image_pb2.ProcessImage]) -> None:
    """Refuses an orphan of a session the restore could not put it in again, and a process in a
    process group the restore could not put it in."""
    by_pid = {p.pid: p for p in images}
    tids = {t.tid for p in images for t in p.threads}
    orphaned = orphans(images)
    for sid, members in orphaned.items():
        for p in members:
            _check_one(p, sid, by_pid, tids)
    forked_by = {p.pid: sid for sid, members in orphaned.items() for p in members}
    for p in images[1:]:
        if not p.zombie:
            _check_group(p, images[0], by_pid, tids, forked_by.get(p.pid))


def _check_group(p: image_pb2.ProcessImage, root: image_pb2.ProcessImage,
                 by_pid: Mapping[int, image_pb2.ProcessImage], tids: set[int], orphan_of: int | None) -> None:
    """The group `p` gets: its own, the one it is forked in (its parent's; an orphan's, the
    session's), one whose leader (running, or a zombie) the restore makes in its session, or one
    whose leader is gone, made by a helper with its PID (group_helpers)."""
    inherited = orphan_of if orphan_of is not None else by_pid[p.ppid].pgid
    if p.pgid in (p.pid, inherited):
        return
    where = f"process group {p.pgid}"
    leader = by_pid.get(p.pgid)
    if leader is not None:
        if leader.pgid == leader.pid and leader.sid == p.sid:
            return
        raise Unsupported(p.pid, where, f"PID {p.pgid}, whose group it is, has left it since: not supported")
    if p.pgid == root.pgid or proc.exists(p.pgid):
        raise Unsupported(p.pid, where, "the process group's leader is outside the job, and its parent PID "
                          f"{p.ppid} is in another group: not supported")
    if p.pgid in tids:
        raise Unsupported(p.pid, where, "the process group's leader has exited, and a thread of the job has that "
                          "ID now: not supported")


def gone_groups(images: Iterable[image_pb2.ProcessImage]) -> dict[int, list[image_pb2.ProcessImage]]:
    """The process groups whose leader no process of the image is (it has exited and was reaped): its
    PID -> the running processes in it that cannot get it from their parent (checked at the dump)."""
    listed = list(images)
    by_pid = {p.pid: p for p in listed}
    orphan_of = {p.pid: sid for sid, members in orphans(listed).items() for p in members}
    out: dict[int, list[image_pb2.ProcessImage]] = {}
    for p in listed[1:]:
        inherited = orphan_of.get(p.pid, by_pid[p.ppid].pgid if p.ppid in by_pid else p.pgid)
        if not p.zombie and p.pgid not in (p.pid, inherited) and p.pgid not in by_pid:
            out.setdefault(p.pgid, []).append(p)
    return out


def _check_one(p: image_pb2.ProcessImage, sid: int, by_pid: Mapping[int, image_pb2.ProcessImage],
               tids: set[int]) -> None:
    parent = by_pid[p.ppid]
    where = f"session {sid}"
    if p.zombie:
        raise Unsupported(p.pid, where, f"it exited (a zombie) in session {sid}, which its parent PID {p.ppid} "
                          "is not in: not supported")
    if not parent.child_subreaper:
        raise Unsupported(p.pid, where, f"it is in session {sid}, which its parent PID {p.ppid} is not in, and "
                          "that parent is no child subreaper: not supported")
    if p.files_of or p.fs_of:
        raise Unsupported(p.pid, where, f"it shares its descriptor table or working directory with its parent "
                          f"PID {p.ppid} but is in session {sid}, which its parent is not in: not supported")
    leader = by_pid.get(sid)
    if leader is not None and not (leader.zombie and leader.ppid == p.ppid and leader.sid == sid):
        state = "a zombie" if leader.zombie else "running"
        raise Unsupported(p.pid, where, f"it is in session {sid}, whose leader ({state}) is not a zombie child of "
                          f"its parent PID {p.ppid}: not supported")
    if leader is None and sid in tids:
        raise Unsupported(p.pid, where, f"its session {sid} has exited, and a thread of the job has that ID now: "
                          "not supported")
