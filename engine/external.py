"""External descriptors: pipes and sockets that lead outside the job and are not its stdio (the
jobserver pipe `make -j` hands its recipes, a pipe a CI runner leaks into every child).

What is at their other end cannot be checkpointed, so by default such a descriptor refuses
the checkpoint in one line.  With `checkpoint --external` it is recorded instead as EXTERNAL
(what it was: "pipe:[123]", its access mode and status flags), with a warning, and the restore
must be told what each becomes, CRIU's --inherit-fd choice: `restore --external N:PATH` opens
PATH in its place (a FIFO, a file, a device; with the same access mode and status flags), and
`--external N:null` gives it /dev/null.  N is the descriptor's number in the job (PID/N where
two processes of the job number different external descriptions alike).  A restore that is not
told refuses in one line naming each, before anything is created.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from dataclasses import dataclass

from incr.proto import image_pb2

from . import fown
from .errors import RestoreError
from .remote import RemoteProcess

log = logging.getLogger(__name__)

OpenFile = image_pb2.OpenFile
NULL = "null"


def record(pid: int, fd: int, link: str, base: image_pb2.OpenFile, *, warn: bool) -> image_pb2.OpenFile:
    """Descriptor `fd` of `pid` (`link`: its /proc link), which leads outside the job, as EXTERNAL."""
    base.kind = OpenFile.EXTERNAL
    base.what = link
    if warn:
        log.warning("warning: PID %d fd %d (%s) leads outside the job: recorded as external; a restore gives it "
                    "what --external %d:PATH or --external %d:null says", pid, fd, link, fd, fd)
    return base


@dataclass(frozen=True)
class Choice:
    """One `--external [PID/]N:TARGET`: TARGET a path, or "null"."""

    fd: int
    target: str
    pid: int = 0           # 0: whichever process holds descriptor `fd`

    @classmethod
    def parse(cls, text: str) -> Choice:
        who, sep, target = text.partition(":")
        pid_text, slash, fd_text = who.rpartition("/")
        if not sep or not target or not fd_text.isdigit() or (slash and not pid_text.isdigit()):
            raise ValueError(f"cannot read --external {text!r}: use N:PATH or N:null (N: the descriptor number "
                             "in the job, PID/N to name the process too)")
        if target != NULL and not os.path.isabs(target):
            target = os.path.abspath(target)
        return cls(fd=int(fd_text), target=target, pid=int(pid_text) if slash else 0)

    @property
    def path(self) -> str:
        return "/dev/null" if self.target == NULL else self.target

    def __str__(self) -> str:
        return f"{self.pid}/{self.fd}:{self.target}" if self.pid else f"{self.fd}:{self.target}"


def resolve(tree: image_pb2.TreeImage, choices: list[Choice]) -> dict[int, str]:
    """For each EXTERNAL description of the tree, the path it is to be opened as (its id -> path);
    RestoreError, in one line, for a description no choice names, a choice that names none or two
    different ones, or a path that does not exist."""
    users: dict[int, list[tuple[int, int]]] = defaultdict(list)          # description id -> (pid, fd)
    what: dict[int, str] = {}
    for p in tree.processes:
        ext = {f.id: f for f in p.files if f.kind == OpenFile.EXTERNAL}
        for d in p.fds:
            if d.file in ext:
                users[d.file].append((p.pid, d.fd))
                what[d.file] = ext[d.file].what
    out: dict[int, str] = {}
    for c in choices:
        named = {i for i, held in users.items() if any(fd == c.fd and c.pid in (0, pid) for pid, fd in held)}
        if not named:
            known = ", ".join(f"{pid}/{fd}" for held in users.values() for pid, fd in held) or "none"
            raise RestoreError(f"cannot restore: --external {c}: no descriptor {c.fd}"
                               f"{f' of PID {c.pid}' if c.pid else ''} led outside the job at the checkpoint "
                               f"(those that did, PID/fd: {known})")
        if len(named) > 1:
            raise RestoreError(f"cannot restore: --external {c}: descriptor {c.fd} names different external "
                               f"descriptions in PIDs {', '.join(str(users[i][0][0]) for i in sorted(named))}; "
                               "say which with PID/N:TARGET")
        if c.target != NULL and not os.path.exists(c.target):
            raise RestoreError(f"cannot restore: --external {c}: {c.target} does not exist")
        for i in named:
            out.setdefault(i, c.path)
    missing = sorted(set(users) - set(out))
    if missing:
        held = "; ".join(f"PID {users[i][0][0]} fd {users[i][0][1]} ({what[i]})" for i in missing)
        fd = users[missing[0]][0][1]
        raise RestoreError(f"cannot restore: descriptors led outside the job at the checkpoint ({held}): say "
                           f"what each becomes, e.g. --external {fd}:PATH or --external {fd}:null")
    return out


def open_in(target: RemoteProcess, f: image_pb2.OpenFile, path: str) -> int:
    """A descriptor of `path` in `target` in place of external description `f`: its access mode, then
    its status flags (opened without blocking: a FIFO would wait for its other end)."""
    mode = f.flags & os.O_ACCMODE
    fd = target.syscall("openat", -100, target.put(os.fsencode(path) + b"\0"), mode | os.O_NONBLOCK | os.O_CLOEXEC, 0)
    if fd < 0:
        raise RestoreError(f"cannot restore {f.what} as {path} (--external): {os.strerror(-fd)}")
    err = target.syscall("fcntl", fd, fown.F_SETFL, f.flags & fown.SETFL_MASK)
    if err < 0:
        raise RestoreError(f"cannot restore {f.what} as {path} (--external): F_SETFL failed: {os.strerror(-err)}")
    return fd
