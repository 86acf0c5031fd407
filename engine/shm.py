"""Shared memory objects: MAP_SHARED|MAP_ANONYMOUS regions, memfds, /dev/shm files.
Dump and restore.

Dump: a shared mapping is identified by its object (device and inode of
/proc/PID/map_files/...), each object recorded once for the whole tree and
its contents read whole through that link (pages other processes touched
included), while the tree is frozen.  Restore: the object is created once, in
the first process that maps or holds it (an injected memfd_create, or the
/dev/shm file), filled from the checkpoint, and handed to the others with
pidfd_getfd: they map it MAP_SHARED again.  An anonymous shared region comes
back as a memfd (its maps line then reads /memfd:..., the sharing is the same).
"""

from __future__ import annotations

import fcntl
import os
import stat
from collections.abc import Callable, Iterable

from incr.proto import image_pb2

from .errors import RestoreError, Unsupported
from .pipes import stolen
from .remote import RemoteProcess

Shm = image_pb2.ShmImage
F_GET_SEALS, F_ADD_SEALS = 1034, 1033
MFD_CLOEXEC, MFD_ALLOW_SEALING = 1, 2
_DELETED = " (deleted)"


def classify(pid: int, path: str, st: os.stat_result, where: str) -> image_pb2.ShmImage | None:
    """The shared memory object behind a shared mapping or a descriptor, or None for an ordinary file."""
    key = f"{st.st_dev}:{st.st_ino}"
    if path.startswith("/SYSV"):
        raise Unsupported(pid, where, "System V shared memory is not supported yet")
    if path == "/dev/zero" + _DELETED:
        return Shm(key=key, kind=Shm.ANON, name="incr-shared-anon", size=st.st_size)
    if path.startswith("/memfd:") and path.endswith(_DELETED):
        return Shm(key=key, kind=Shm.MEMFD, name=path[len("/memfd:"):-len(_DELETED)], size=st.st_size)
    if path.startswith("/dev/shm/") and not path.endswith(_DELETED) and stat.S_ISREG(st.st_mode):
        return Shm(key=key, kind=Shm.DEVSHM, name=path, size=st.st_size, mode=stat.S_IMODE(st.st_mode))
    return None


def seals(link: str) -> int:
    fd = os.open(link, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return max(fcntl.fcntl(fd, F_GET_SEALS), 0)
    except OSError:
        return 0
    finally:
        os.close(fd)


def read_into(link: str, size: int, out: memoryview) -> None:
    """The whole object behind `link` (/proc/PID/map_files/... or /proc/PID/fd/N) into `out`."""
    fd = os.open(link, os.O_RDONLY | os.O_CLOEXEC)
    try:
        pos = 0
        while pos < size:
            got = os.preadv(fd, [out[pos:size]], pos)
            if got <= 0:
                break                     # truncated meanwhile: the rest reads as zeros
            pos += got
    finally:
        os.close(fd)


def links(processes: Iterable[image_pb2.ProcessImage]) -> dict[str, str]:
    """For every shared memory object of the tree, a /proc link to read it through."""
    out: dict[str, str] = {}
    for p in processes:
        for v in p.vmas:
            if v.kind == image_pb2.Vma.SHMEM:
                out.setdefault(v.shm, f"/proc/{p.pid}/map_files/{v.start:x}-{v.end:x}")
        for f in p.files:
            if f.kind == image_pb2.OpenFile.SHMEM:
                fd = next(d.fd for d in p.fds if d.file == f.id)
                out.setdefault(f.shm, f"/proc/{p.pid}/fd/{fd}")
    return out


# ---------------------------------------------------------------- restore

PageReader = Callable[[str], Iterable[tuple[int, memoryview]]]


class ShmInstaller:
    """Creates each object once and gives every process that needs it a descriptor of it."""

    def __init__(self, objects: list[image_pb2.ShmImage], pages: PageReader) -> None:
        self.objects = {o.key: o for o in objects}
        self.pages = pages
        self.holders: dict[str, tuple[int, int]] = {}
        self.keepers: list[tuple[RemoteProcess, int]] = []

    def preflight(self) -> None:
        for o in self.objects.values():
            if o.kind == Shm.DEVSHM and not os.path.isdir(os.path.dirname(o.name)):
                raise RestoreError(f"cannot restore: {os.path.dirname(o.name)} does not exist for {o.name}")

    def fd_in(self, target: RemoteProcess, key: str, keep_at: int) -> int:
        """A new descriptor of object `key` in `target` (the caller closes it)."""
        from .files import Holder, transfer

        o = self.objects[key]
        if o.kind == Shm.DEVSHM:
            if key not in self.holders:
                self._fill_devshm(o)
                self.holders[key] = (0, 0)
            return target.call("openat", -100, target.put(os.fsencode(o.name) + b"\0"), os.O_RDWR | os.O_CLOEXEC, 0)
        if key in self.holders:
            return transfer(target, Holder(*self.holders[key]))
        flags = MFD_CLOEXEC | (MFD_ALLOW_SEALING if o.seals else 0)
        fd = target.call("memfd_create", target.put(o.name.encode()[:249] + b"\0"), flags)
        target.call("ftruncate", fd, o.size)
        with stolen(target.pid, fd) as mine:
            self._fill(mine, o)
            if o.seals:
                fcntl.fcntl(mine, F_ADD_SEALS, o.seals)
        kept = target.call("fcntl", fd, 1030, keep_at)         # F_DUPFD_CLOEXEC: for later processes
        self.keepers.append((target, kept))
        self.holders[key] = (target.pid, kept)
        return fd

    def _fill(self, fd: int, o: image_pb2.ShmImage) -> None:
        for offset, data in self.pages(o.key):
            os.pwrite(fd, data, offset)

    def _fill_devshm(self, o: image_pb2.ShmImage) -> None:
        fd = os.open(o.name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, o.mode or 0o600)
        try:
            os.ftruncate(fd, 0)                 # pages not in the checkpoint are zero
            os.ftruncate(fd, o.size)
            self._fill(fd, o)
        finally:
            os.close(fd)

    def finish(self) -> None:
        for target, fd in self.keepers:
            target.call("close", fd)
        self.keepers.clear()

