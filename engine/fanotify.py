"""fanotify: a group's init flags and its marks.  Dump and restore.

Dump, from the description's fdinfo: the group's fanotify_init flags and event flags, and each
mark on an inode (its file found again from the file handle fdinfo shows, as inotify.py does),
with its mask, ignored mask and mark flags (FAN_MARK_IGNORED_SURV_MODIFY, FAN_MARK_EVICTABLE).
Refused: marks on a mount or a file system (not built: a mount's events come from every process
using it, so such a group rarely has an empty queue), and events queued but not read,
permission requests among them, which cannot be restored: a group holding any is refused,
naming how many bytes wait.

Restore: fanotify_init with those flags (O_NONBLOCK and O_CLOEXEC as the description's), then
fanotify_mark for each mark, oldest first, and, apart, for its ignored mask.
"""

from __future__ import annotations

import fcntl
import os
import re
import struct

from incr.proto import image_pb2

from .errors import RestoreError, Unsupported
from .inotify import file_of_handle
from .pipes import FIONREAD, stolen
from .remote import RemoteProcess

_GROUP = re.compile(r"fanotify flags:([0-9a-f]+) event-flags:([0-9a-f]+)")
_INODE = re.compile(r"fanotify ino:([0-9a-f]+) sdev:([0-9a-f]+) mflags:([0-9a-f]+) mask:([0-9a-f]+) "
                    r"ignored_mask:([0-9a-f]+) fhandle-bytes:([0-9a-f]+) fhandle-type:([0-9a-f]+) f_handle:([0-9a-f]+)")
FAN_MARK_ADD, FAN_MARK_IGNORED_MASK = 0x1, 0x20
FAN_CLOEXEC, FAN_NONBLOCK = 0x1, 0x2
AT_FDCWD = -100


def dump(pid: int, fd: int, lines: list[str]) -> image_pb2.FanotifyState:
    what = f"fd {fd} (fanotify)"
    with stolen(pid, fd) as mine:
        waiting = int(struct.unpack("i", fcntl.ioctl(mine, FIONREAD, b"\0\0\0\0"))[0])
    if waiting:
        raise Unsupported(pid, what, f"{waiting} bytes of events are queued unread; they cannot be restored "
                          "(checkpoint again once the job has read them)")
    state = image_pb2.FanotifyState()
    try:
        for line in lines:
            if m := _GROUP.search(line):
                state.flags, state.event_flags = int(m.group(1), 16), int(m.group(2), 16)
            elif m := _INODE.search(line):
                path = file_of_handle(int(m.group(2), 16), int(m.group(7), 16), bytes.fromhex(m.group(8)))
                state.marks.append(_mark(path, *m.group(3, 4, 5)))
            elif line.startswith("fanotify "):
                kind = "a mount" if "mnt_id:" in line else "a file system" if "sdev:" in line else "something"
                raise Unsupported(pid, what, f"a mark on {kind} ({line.strip()}); only marks on files and "
                                  "directories are supported")
    except OSError as exc:
        raise Unsupported(pid, what, f"a marked file or mount cannot be found ({exc})") from None
    return state


def _mark(path: str, mflags: str, mask: str, ignored: str) -> image_pb2.FanotifyMark:
    return image_pb2.FanotifyMark(path=path, mflags=int(mflags, 16), mask=int(mask, 16), ignored_mask=int(ignored, 16))


def restore(target: RemoteProcess, state: image_pb2.FanotifyState, flags: int) -> int:
    init = state.flags & ~(FAN_CLOEXEC | FAN_NONBLOCK)
    init |= (FAN_NONBLOCK if flags & os.O_NONBLOCK else 0) | (FAN_CLOEXEC if flags & 0o2000000 else 0)
    fd = target.call("fanotify_init", init, state.event_flags)
    for m in reversed(state.marks):           # (fdinfo lists the newest first)
        path = target.put(os.fsencode(m.path) + b"\0")
        how = FAN_MARK_ADD | m.mflags
        for extra, mask in ((0, m.mask), (FAN_MARK_IGNORED_MASK, m.ignored_mask)):
            if not mask:
                continue
            ret = target.syscall("fanotify_mark", fd, how | extra, mask, AT_FDCWD, path)
            if ret < 0:
                raise RestoreError(f"cannot restore the fanotify mark on {m.path}: {os.strerror(-ret)}")
    return fd
