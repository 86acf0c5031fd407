"""inotify: its watches (path from the file handle fdinfo shows, mask); recreated
with inotify_init1 + inotify_add_watch in watch-descriptor order.  Events queued
but not read cannot be restored (nothing can put an event in a queue but the
event itself): an instance holding some is refused, naming how many bytes wait."""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import re
import struct

from incr.proto import image_pb2

from .errors import RestoreError, Unsupported
from .pipes import FIONREAD, stolen
from .remote import RemoteProcess

_WATCH = re.compile(r"inotify wd:(\d+) ino:([0-9a-f]+) sdev:([0-9a-f]+) mask:([0-9a-f]+) .*"
                    r"fhandle-bytes:([0-9a-f]+) fhandle-type:([0-9a-f]+) f_handle:([0-9a-f]+)")
_libc = ctypes.CDLL(None, use_errno=True)
IN_ATTRIB, IN_IGNORED = 0x4, 0x8000
INOTIFY_IOC_SETNEXTWD = 0x40044900      # _IOW('I', 0, __s32)
_SPARE_PATHS = ("/", "/dev", "/proc", "/sys", "/run", "/tmp")
_EVENT = struct.Struct("<iIII")           # struct inotify_event without a name: wd, mask, cookie, len


def _mount_of(dev: int) -> str:
    major, minor = dev >> 20, dev & 0xFFFFF
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if parts[2] == f"{major}:{minor}":
                return parts[4]
    raise FileNotFoundError(f"no mount for device {major}:{minor}")


def file_of_handle(dev: int, htype: int, handle: bytes) -> str:
    """The path of a file given its handle, through open_by_handle_at (CAP_DAC_READ_SEARCH)."""
    mount = os.open(_mount_of(dev), os.O_RDONLY | os.O_DIRECTORY)
    try:
        fh = struct.pack("<Ii", len(handle), htype) + handle
        fd = _libc.open_by_handle_at(mount, ctypes.c_char_p(fh), os.O_PATH)
        if fd < 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
        try:
            return os.readlink(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
    finally:
        os.close(mount)


def _queued(pid: int, fd: int) -> int:
    """Bytes of events waiting to be read (FIONREAD through a descriptor of incr's own: nothing is read)."""
    with stolen(pid, fd) as mine:
        return int(struct.unpack("i", fcntl.ioctl(mine, FIONREAD, b"\0\0\0\0"))[0])


def dump(pid: int, fd: int, lines: list[str]) -> image_pb2.InotifyState:
    waiting = _queued(pid, fd)
    if waiting:
        raise Unsupported(pid, f"fd {fd} (inotify)", f"{waiting} bytes of events are queued unread; they cannot "
                          "be restored (checkpoint again once the job has read them)")
    state = image_pb2.InotifyState()
    for line in lines:
        m = _WATCH.search(line)
        if not m:
            continue
        try:
            path = file_of_handle(int(m.group(3), 16), int(m.group(6), 16), bytes.fromhex(m.group(7)))
        except OSError as exc:
            raise Unsupported(pid, f"fd {fd} (inotify)", f"a watched file cannot be found ({exc})") from None
        state.watches.append(image_pb2.InotifyWatch(wd=int(m.group(1)), mask=int(m.group(4), 16), path=path))
    state.watches.sort(key=lambda w: w.wd)
    return state


def restore(target: RemoteProcess, state: image_pb2.InotifyState, flags: int) -> int:
    """The instance, each watch at its own descriptor; the kernel's cursor (the next descriptor it
    gives) ends one past the highest, the most a checkpoint can know of it (module docstring)."""
    fd = target.call("inotify_init1", flags & (os.O_NONBLOCK | os.O_CLOEXEC))
    with stolen(target.pid, fd) as mine:
        settable = True
        next_wd = 1
        for w in state.watches:
            if settable:
                settable = _set_next_wd(mine, w.wd)
            if not settable:
                _skip_to(target, fd, next_wd, w.wd, state)
            got = target.call("inotify_add_watch", fd, target.put(os.fsencode(w.path) + b"\0"), w.mask)
            next_wd = got + 1
            if got != w.wd:
                raise RestoreError(f"cannot restore the inotify watch of {w.path}: descriptor {got}, not {w.wd}")
    return fd


def _set_next_wd(mine: int, wd: int) -> bool:
    """The descriptor the instance gives next, set (INOTIFY_IOC_SETNEXTWD, kernels built with
    CONFIG_CHECKPOINT_RESTORE); False where the kernel has no such ioctl."""
    try:
        fcntl.ioctl(mine, INOTIFY_IOC_SETNEXTWD, wd)
    except OSError as exc:
        if exc.errno in (errno.ENOTTY, errno.EINVAL):
            return False
        raise
    return True


def _skip_to(target: RemoteProcess, fd: int, next_wd: int, wd: int, state: image_pb2.InotifyState) -> None:
    """Without the ioctl: descriptors next_wd .. wd-1 used up by watches added and removed again, on a
    directory the instance does not watch (adding one it watches would change that watch)."""
    watched = {w.path for w in state.watches}
    spare = next((p for p in _SPARE_PATHS if p not in watched), None)
    if spare is None:
        raise RestoreError("cannot restore an inotify instance: it watches every directory incr could use up "
                           "its free watch descriptors with")
    while next_wd < wd:
        gap = target.call("inotify_add_watch", fd, target.put(spare.encode() + b"\0"), IN_ATTRIB)
        target.call("inotify_rm_watch", fd, gap)
        _take_ignored(target.pid, fd, gap)
        next_wd = gap + 1


def _take_ignored(pid: int, fd: int, wd: int) -> None:
    """The IN_IGNORED event a removed gap watch queued, read off again: the job never had it."""
    with stolen(pid, fd) as mine:
        try:
            raw = os.read(mine, _EVENT.size)
        except BlockingIOError:
            raw = b""
    if len(raw) != _EVENT.size or _EVENT.unpack(raw)[:2] != (wd, IN_IGNORED):
        raise RestoreError(f"cannot restore an inotify instance: an event came while its watches were being "
                           f"re-created ({raw.hex() or 'none'}, not IN_IGNORED of watch {wd}); restore again")
