"""epoll: its watched descriptors, events and user data, from fdinfo; recreated
with epoll_create1 + epoll_ctl(ADD), after every other descriptor of the process.

A one-shot watch (EPOLLONESHOT) that has fired is disarmed: the kernel keeps
only its flag bits (fdinfo shows e.g. 40000000), which no epoll_ctl can set (ADD
and MOD always add EPOLLERR|EPOLLHUP).  It is restored the way it came to be:
added first, to the new instance alone, with every event, while its file is
ready for one, and fired by an epoll_wait of incr's own.  A file ready for
nothing is made ready for the while when it is an empty pipe (a byte written
through an end incr opens through /proc, read off again); any other is refused
at checkpoint.  The restored watch list is read back and must be the dumped one.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import struct

from incr.proto import image_pb2

from . import proc
from . import ptrace as pt
from .errors import EngineError, RestoreError, Unsupported
from .pipes import queued, stolen
from .remote import RemoteProcess

EPOLL_CTL_ADD = 1
F_GETFD, FD_CLOEXEC, F_DUPFD_CLOEXEC = 1, 1, 1030
EPOLLONESHOT = 1 << 30
# EP_PRIVATE_BITS: what a fired one-shot watch keeps (EPOLLWAKEUP, EPOLLONESHOT, EPOLLET, EPOLLEXCLUSIVE).
PRIVATE_BITS = (1 << 29) | EPOLLONESHOT | (1 << 31) | (1 << 28)
# Every event a file can be ready for (EPOLLIN, PRI, OUT, RDNORM, RDBAND, WRNORM, WRBAND, MSG, RDHUP).
ANY_EVENT = 0x1 | 0x2 | 0x4 | 0x40 | 0x80 | 0x100 | 0x200 | 0x400 | 0x2000
_TFD = re.compile(r"tfd:\s*(\d+)\s+events:\s*([0-9a-f]+)\s+data:\s*([0-9a-f]+).*\bino:([0-9a-f]+)\s+sdev:([0-9a-f]+)")
_EVENT = struct.Struct("<IQ")           # struct epoll_event (packed on x86_64)


def disarmed(w: image_pb2.EpollWatch) -> bool:
    """A one-shot watch that fired and waits to be re-armed (EPOLL_CTL_MOD)."""
    return bool(w.events & EPOLLONESHOT) and not w.events & ~PRIVATE_BITS


def dump(pid: int, fd: int, lines: list[str]) -> image_pb2.EpollState:
    state = image_pb2.EpollState()
    for tfd, events, data, ino in _watches(lines):
        # The watch is on a file, not a number: the number must still name that file.
        try:
            alive = os.stat(f"/proc/{pid}/fd/{tfd}").st_ino == ino and pt.kcmp_epoll_target(pid, tfd, pid, fd, tfd) == 0
        except OSError:
            alive = False
        watch = image_pb2.EpollWatch(fd=tfd, events=events, data=data)
        if not alive:
            via = _holder(pid, fd, tfd)
            if via is None:
                raise Unsupported(pid, f"fd {fd} (epoll)", f"it watches a file no longer open as fd {tfd} nor as any "
                                                           "other descriptor of the process")
            watch.via = via
        if disarmed(watch) and not _ready(pid, tfd) and not _empty_pipe_reader(pid, tfd):
            raise Unsupported(pid, f"fd {fd} (epoll)", f"its fired one-shot watch of fd {tfd} cannot be restored "
                              "disarmed while that file is ready for no event")
        state.watches.append(watch)
    return state


def _holder(pid: int, epfd: int, tfd: int) -> int | None:
    """A descriptor of `pid` that is the file epoll `epfd` watches as the number `tfd`, since closed."""
    for n in proc.fds(pid):
        if n != tfd:
            with contextlib.suppress(OSError, EngineError):
                if pt.kcmp_epoll_target(pid, n, pid, epfd, tfd) == 0:
                    return n
    return None


def _watches(lines: list[str]) -> list[tuple[int, int, int, int]]:
    """(target fd, events, data, inode) of each watch fdinfo lists."""
    out = []
    for line in lines:
        m = _TFD.search(line)
        if m:
            out.append((int(m.group(1)), int(m.group(2), 16), int(m.group(3), 16), int(m.group(4), 16)))
    return out


def _ready(pid: int, fd: int) -> bool:
    """Whether fd `fd` of `pid` is ready for any event now (poll: nothing is consumed)."""
    with stolen(pid, fd) as mine:
        poller = select.poll()
        poller.register(mine, ANY_EVENT)
        return bool(poller.poll(0))


def _empty_pipe_reader(pid: int, fd: int) -> bool:
    link = proc.readlink(pid, f"fd/{fd}")
    if not link.startswith("pipe:") or int(proc.fdinfo(pid, fd)["flags"], 8) & os.O_ACCMODE != os.O_RDONLY:
        return False
    with stolen(pid, fd) as mine:
        return queued(mine) == 0


def nesting(files: list[image_pb2.OpenFile], fds: list[image_pb2.Fd]) -> dict[int, int]:
    """Each epoll description's id -> how deep it nests epolls it watches (0: it watches none): an
    epoll is created after those it watches, by depth (the kernel allows no loop)."""
    by_id = {f.id: f for f in files}
    file_at = {d.fd: d.file for d in fds}
    depth: dict[int, int] = {}

    def of(fid: int) -> int:
        if fid not in depth:
            depth[fid] = 0                  # (a loop, were there one, ends here)
            inner = [file_at[w.fd] for w in by_id[fid].epoll.watches
                     if w.fd in file_at and by_id[file_at[w.fd]].kind == image_pb2.OpenFile.EPOLL]
            depth[fid] = 1 + max(map(of, inner)) if inner else 0
        return depth[fid]

    return {f.id: of(f.id) for f in files if f.kind == image_pb2.OpenFile.EPOLL}


def restore(target: RemoteProcess, state: image_pb2.EpollState, flags: int) -> int:
    fd = target.call("epoll_create1", flags & os.O_CLOEXEC)
    lent = {w.fd for w in state.watches if w.HasField("via")}
    if fd in lent:                       # (a number _add lends a watched file for a moment)
        moved = target.call("fcntl", fd, F_DUPFD_CLOEXEC, max(lent) + 1)
        target.call("close", fd)
        fd = moved
    fired = [w for w in state.watches if disarmed(w)]
    for w in fired:                      # alone in the instance: only they can fire
        _add(target, fd, w, w.events | ANY_EVENT)
    if fired:
        _fire(target, fd, fired)
    for w in state.watches:
        if not disarmed(w):
            _add(target, fd, w, w.events)
    got = sorted(_watches(proc.fdinfo_lines(target.pid, fd)))
    want = sorted((w.fd, w.events, w.data) for w in state.watches)
    if [g[:3] for g in got] != want:
        raise RestoreError(f"cannot restore an epoll instance of PID {target.pid}: its watches came back as "
                           f"{_show(g[:3] for g in got)}, not {_show(want)}")
    return fd


def _add(target: RemoteProcess, epfd: int, w: image_pb2.EpollWatch, events: int) -> None:
    """The watch `w` added with `events`: through its number, which for one closed since (`via`) is
    made for the moment to name the file again (what holds the number now waits elsewhere)."""
    event = target.put(_EVENT.pack(events, w.data))
    if not w.HasField("via"):
        target.call("epoll_ctl", epfd, EPOLL_CTL_ADD, w.fd, event)
        return
    cloexec = target.syscall("fcntl", w.fd, F_GETFD)
    parked = target.call("fcntl", w.fd, F_DUPFD_CLOEXEC, 0) if cloexec >= 0 else -1
    target.call("dup2", w.via, w.fd)
    try:
        target.call("epoll_ctl", epfd, EPOLL_CTL_ADD, w.fd, event)
    finally:
        if parked >= 0:
            target.call("dup3", parked, w.fd, os.O_CLOEXEC if cloexec & FD_CLOEXEC else 0)
            target.call("close", parked)
        else:
            target.call("close", w.fd)


def _fire(target: RemoteProcess, epfd: int, watches: list[image_pb2.EpollWatch]) -> None:
    """Every one of `watches` (one-shot, the instance's only ones) fires once: disarmed."""
    with stolen(target.pid, epfd) as ep:
        poller = select.epoll.fromfd(os.dup(ep))        # (it closes the descriptor it is given)
        try:
            poller.poll(0, maxevents=len(watches))
            for tfd in _still_armed(target.pid, epfd):
                _ready_pipe_for_a_moment(target.pid, tfd, poller)
        finally:
            poller.close()
    if armed := _still_armed(target.pid, epfd):
        raise RestoreError(f"cannot restore the fired one-shot epoll watch of fd {armed[0]} of PID {target.pid}: "
                           "its file is ready for no event")


def _still_armed(pid: int, epfd: int) -> list[int]:
    return [tfd for tfd, events, _, _ in _watches(proc.fdinfo_lines(pid, epfd)) if events & ~PRIVATE_BITS]


def _ready_pipe_for_a_moment(pid: int, tfd: int, poller: select.epoll) -> None:
    """An empty pipe's read end `tfd` of `pid`: one byte in, the watch fired, the byte out."""
    writer = os.open(f"/proc/{pid}/fd/{tfd}", os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        os.write(writer, b"\0")
    finally:
        os.close(writer)
    poller.poll(0, maxevents=1)
    with stolen(pid, tfd) as reader:
        if os.read(reader, 1) != b"\0" or queued(reader):
            raise RestoreError(f"cannot restore a one-shot epoll watch of fd {tfd} of PID {pid}: its pipe changed")


def _show(watches: object) -> str:
    return "; ".join(f"fd {t} events {e:x} data {d:x}" for t, e, d in watches)  # type: ignore[attr-defined]
