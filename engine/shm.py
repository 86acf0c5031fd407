"""Shared memory objects: MAP_SHARED|MAP_ANONYMOUS regions, memfds, /dev/shm files,
System V segments.  Dump and restore.

Dump: a shared mapping is identified by its object (device and inode of
/proc/PID/map_files/...), each object recorded once for the whole tree and
its contents read whole through that link (pages other processes touched
included), while the tree is frozen.  Restore: the object is created once, in
the first process that maps or holds it (an injected memfd_create, or the
/dev/shm file), filled from the checkpoint, and handed to the others with
pidfd_getfd: they map it MAP_SHARED again.  An anonymous shared region comes
back as a memfd (its maps line then reads /memfd:..., the sharing is the same).
A System V segment is re-created with its id by incr (in the job's IPC
namespace when the restore gave it one) and attached by an injected shmat.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import stat
import struct
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass

from incr.proto import image_pb2

from . import fown, ghost
from .errors import EngineError, RestoreError, Unsupported
from .holders import Holder, transfer
from .pipes import stolen
from .remote import RemoteProcess

Shm = image_pb2.ShmImage
F_GET_SEALS, F_ADD_SEALS = 1034, 1033
SHM_DEST, SHM_RDONLY, IPC_CREAT, IPC_EXCL, IPC_RMID, IPC_STAT = 0o1000, 0o10000, 0o1000, 0o2000, 0, 2
CLONE_NEWIPC = 0x08000000
# struct shmid_ds (x86_64, 112 bytes): shm_perm.__key, shm_segsz at 48, shm_cpid at 80
_SHMID_DS, _SHMID_DS_SIZE = struct.Struct("<i44xQ24xi4xQ"), 112     # key, size, creator, attachments
MFD_CLOEXEC, MFD_ALLOW_SEALING = 1, 2
_DELETED = " (deleted)"


def classify(pid: int, path: str, st: os.stat_result, where: str) -> image_pb2.ShmImage | None:
    """The shared memory object behind a shared mapping or a descriptor, or None for an ordinary file.
    A regular file with no name left is one too: a ghost file (ghost.py), kept like a memfd."""
    key = f"{st.st_dev}:{st.st_ino}"
    if path.startswith("/SYSV"):
        return _sysv(pid, path, st, where)
    if path == "/dev/zero" + _DELETED:
        return Shm(key=key, kind=Shm.ANON, name="incr-shared-anon", size=st.st_size)
    if path.startswith("/memfd:") and path.endswith(_DELETED):
        return Shm(key=key, kind=Shm.MEMFD, name=path[len("/memfd:"):-len(_DELETED)], size=st.st_size)
    if path.startswith("/dev/shm/") and stat.S_ISREG(st.st_mode):
        obj = Shm(key=key, kind=Shm.DEVSHM, name=path, size=st.st_size, mode=stat.S_IMODE(st.st_mode))
        if path.endswith(_DELETED):
            opened_as = path.removesuffix(_DELETED)
            if st.st_nlink == 0:
                obj.name, obj.unlinked = opened_as, True
            elif (now := _name_of(st, os.path.dirname(opened_as))) is not None:
                obj.name, obj.alias = now, opened_as
            else:
                return None               # linked somewhere else: refused as a deleted file
        return obj
    return ghost.classify(key, path, st)


def _name_of(st: os.stat_result, directory: str) -> str | None:
    """The name in `directory` of the file `st` (which the job opened under a name since removed)."""
    with contextlib.suppress(OSError), os.scandir(directory) as entries:
        for e in entries:
            with contextlib.suppress(OSError):
                if e.inode() == st.st_ino and e.stat(follow_symlinks=False).st_dev == st.st_dev:
                    return e.path
    return None


def _sysv(pid: int, path: str, st: os.stat_result, where: str) -> image_pb2.ShmImage:
    shmid = st.st_ino                      # the kernel numbers a segment's file with its id
    with open("/proc/sysvipc/shm", encoding="ascii") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if int(fields[1]) == shmid:
                perms = int(fields[2], 8)
                return Shm(key=f"sysv:{shmid}", kind=Shm.SYSV, name=path, size=int(fields[3]), shmid=shmid,
                           ipc_key=int(path[len("/SYSV"):len("/SYSV") + 8], 16), mode=perms & 0o777,
                           destroyed=bool(perms & SHM_DEST))
    raise Unsupported(pid, where, f"System V segment {shmid} is not in /proc/sysvipc/shm")


def seals(link: str) -> int:
    fd = os.open(link, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return max(fcntl.fcntl(fd, F_GET_SEALS), 0)
    except OSError:
        return 0
    finally:
        os.close(fd)


def read_object(obj: image_pb2.ShmImage, link: str, out: memoryview) -> None:
    """The whole object into `out`: through `link`, or, for a System V segment (whose file cannot
    be read), by attaching it in incr."""
    if obj.kind != Shm.SYSV:
        read_into(link, obj.size, out)
        return
    addr = _libc.shmat(obj.shmid, None, SHM_RDONLY)
    if addr in (None, ctypes.c_void_p(-1).value):
        raise EngineError(f"cannot read System V segment {obj.shmid}: {os.strerror(ctypes.get_errno())}")
    try:
        ctypes.memmove(ctypes.c_void_p(ctypes.addressof(ctypes.c_char.from_buffer(out))), addr, obj.size)
    finally:
        _libc.shmdt(ctypes.c_void_p(addr))


def read_into(link: str, size: int, out: memoryview) -> None:
    """The whole object behind `link` (/proc/PID/map_files/... or /proc/PID/fd/N) into `out`."""
    fd = os.open(link, os.O_RDONLY | os.O_CLOEXEC)
    try:
        for start, end in _data_extents(fd, size):
            pos = start
            while pos < end:
                got = os.preadv(fd, [out[pos:end]], pos)
                if got <= 0:
                    return                # truncated meanwhile: the rest reads as zeros
                pos += got
    finally:
        os.close(fd)


def _data_extents(fd: int, size: int) -> Iterator[tuple[int, int]]:
    """[start, end) of the parts of the first `size` bytes of `fd` that hold data: holes (a sparse
    file's, a tmpfs file's never-written pages) read as zeros, and `out` is zero already."""
    pos = 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
            end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        except OSError as exc:
            if exc.errno == errno.ENXIO:          # no data past pos
                return
            if exc.errno != errno.EINVAL:
                raise
            start, end = pos, size                # a file system without SEEK_DATA: read it all
        if start >= size:
            return
        yield start, end
        pos = end


def links(processes: Iterable[image_pb2.ProcessImage]) -> dict[str, str]:
    """For every shared memory object of the tree, a /proc link to read it through."""
    out: dict[str, str] = {}
    for p in processes:
        for v in p.vmas:
            if v.shm:                     # SHMEM, or a private mapping of a ghost file
                out.setdefault(v.shm, f"/proc/{p.pid}/map_files/{v.start:x}-{v.end:x}")
        for f in p.files:
            if f.kind == image_pb2.OpenFile.SHMEM:
                fd = next(d.fd for d in p.fds if d.file == f.id)
                out.setdefault(f.shm, f"/proc/{p.pid}/fd/{fd}")
    return out


# ---------------------------------------------------------------- restore

PageReader = Callable[[str], Iterable[tuple[int, memoryview]]]


def uses_sysv(objects: Iterable[image_pb2.ShmImage]) -> bool:
    return any(o.kind == Shm.SYSV for o in objects)


def preflight(objects: Iterable[image_pb2.ShmImage], *, own_ipc_namespace: bool, job: Collection[int] = ()) -> None:
    """Refuses what would fail half-way: a missing /dev/shm directory; a System V id taken here
    by another segment (unless the job gets an IPC namespace of its own, where ids are free).
    `job`: the PIDs of the tree being restored (the creators its own segments name)."""
    objects = list(objects)
    ghost.preflight(objects)
    for o in objects:
        if o.kind == Shm.DEVSHM and not os.path.isdir(os.path.dirname(o.name)):
            raise RestoreError(f"cannot restore: {os.path.dirname(o.name)} does not exist for {o.name}")
        if o.kind == Shm.SYSV and not own_ipc_namespace:
            seg = _segment(o.shmid)
            if seg is not None and not _reusable(o, seg, job):
                raise RestoreError(
                    f"cannot restore: System V segment id {o.shmid} is in use here (key {seg.key:#x}, "
                    f"{seg.size} bytes, created by PID {seg.creator}); remove it (ipcrm -m {o.shmid}) "
                    "or restore with --new-pidns")


@dataclass
class _Segment:
    key: int
    size: int
    creator: int
    attached: int


def _segment(shmid: int) -> _Segment | None:
    """The System V segment with id `shmid` in our IPC namespace, if there is one."""
    buf = ctypes.create_string_buffer(_SHMID_DS_SIZE)
    if _libc.shmctl(shmid, IPC_STAT, buf) != 0:
        return None
    return _Segment(*_SHMID_DS.unpack_from(buf.raw))


def _reusable(o: image_pb2.ShmImage, seg: _Segment, job: Collection[int]) -> bool:
    """A segment that outlived the job (SysV segments do): the job's own, found by key and size --
    or, a private one (IPC_PRIVATE: no key), by its id, size, a creator of the job and no one
    attached (`checkpoint --kill` leaves the job's private segments so, if it did not remove them)."""
    if o.destroyed or seg.size != o.size:
        return False
    if o.ipc_key:
        return seg.key == o.ipc_key
    return seg.key == 0 and seg.creator in job and seg.attached == 0


class ShmInstaller:
    """Creates each object once and gives every process that needs it a descriptor of it.
    `ipc_of`: a PID whose IPC namespace the System V segments belong in (0: ours)."""

    def __init__(self, objects: list[image_pb2.ShmImage], pages: PageReader, ipc_of: int = 0,
                 job: Collection[int] = (), names: ghost.Names | None = None) -> None:
        self.objects = {o.key: o for o in objects}
        self.pages = pages
        self.ipc_of = ipc_of
        self.job = job
        self.holders: dict[str, tuple[int, int]] = {}
        self.keepers: list[tuple[RemoteProcess, int]] = []
        self.created: list[int] = []        # System V ids made by this restore
        self.paths: dict[str, str] = {}     # /dev/shm objects made, by key
        self.descriptions: dict[int, Holder] = {}   # description id -> where a ghost's O_TMPFILE one waits
        self.names = names or ghost.Names(None)     # names given until every process has the file

    @contextlib.contextmanager
    def _job_ipc(self) -> Iterator[None]:
        """This thread in the job's IPC namespace meanwhile (setns is per thread)."""
        if not self.ipc_of:
            yield
            return
        own = os.open("/proc/thread-self/ns/ipc", os.O_RDONLY | os.O_CLOEXEC)
        job = os.open(f"/proc/{self.ipc_of}/ns/ipc", os.O_RDONLY | os.O_CLOEXEC)
        try:
            _enter_ipc(job, "the job's")
            try:
                yield
            finally:
                _enter_ipc(own, "incr's")
        finally:
            os.close(own)
            os.close(job)

    def attach(self, target: RemoteProcess, key: str, addr: int, writable: bool) -> None:
        """Attach System V segment `key` in `target` at `addr` (an injected shmat)."""
        o = self.objects[key]
        if key not in self.holders:
            with self._job_ipc():
                if _sysv_create(o, self.pages(key), self.job):
                    self.created.append(o.shmid)
            self.holders[key] = (0, 0)
        got = target.call("shmat", o.shmid, addr, 0 if writable else SHM_RDONLY)
        if got != addr:
            raise RestoreError(f"cannot attach System V segment {o.shmid} at {addr:#x}: got {got:#x}")

    def fd_in(self, target: RemoteProcess, key: str, keep_at: int) -> int:
        """A new descriptor of object `key` in `target` (the caller closes it)."""
        o = self.objects[key]
        if (path := self.path_of(key)) is not None:
            return target.call("openat", -100, target.put(os.fsencode(path) + b"\0"), os.O_RDWR | os.O_CLOEXEC, 0)
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
        self.holders[key] = (target.vpid, kept)
        return fd

    def make_tmpfiles(self, target: RemoteProcess, files: Iterable[image_pb2.OpenFile], keep_at: int) -> None:
        """A ghost file the job made with O_TMPFILE is made so again, in the first process holding the
        description that made it, before that process's memory: only that description shows O_TMPFILE
        in F_GETFL, and the job's other descriptions and mappings of the file came from it.  Those of
        the restore come from it too (fd_in); the description waits at `keep_at` and up for
        files.Installer (`descriptions`)."""
        for f in files:
            o = self.objects.get(f.shm)
            if f.kind != image_pb2.OpenFile.SHMEM or o is None or o.kind != Shm.GHOST \
                    or not ghost.made_as_tmpfile(f.flags) or f.shm in self.holders or f.shm in self.paths:
                continue
            directory = target.put(os.fsencode(os.path.dirname(o.name)) + b"\0")
            fd = target.call("openat", -100, directory, f.flags & ~fown.NOT_REOPENED, o.mode)
            with stolen(target.pid, fd) as mine:
                ghost.made_again(o, mine, o.name)
                os.ftruncate(mine, o.size)
                self._fill(mine, o)
            kept = target.call("fcntl", fd, 1030, keep_at)         # F_DUPFD_CLOEXEC
            target.call("close", fd)
            self.keepers.append((target, kept))
            self.holders[f.shm] = (target.vpid, kept)
            self.descriptions[f.id] = Holder(target.vpid, kept)

    def path_of(self, key: str) -> str | None:
        """Where a /dev/shm object of the job is to be opened by its processes (made on first use), or
        None for objects handed over by descriptor.  An object the job had unlinked is made under its
        old name (so that maps shows that name, "(deleted)"; a name taken since gets one of incr's),
        opened by path as the job opened it (O_NOFOLLOW and all), and unlinked once all have it; one
        the job opened under a name since removed (`alias`) likewise, linked to its present name.  A
        ghost file (ghost.py) likewise, in its own directory, with its owner."""
        o = self.objects[key]
        if o.kind not in (Shm.DEVSHM, Shm.GHOST) or (o.kind == Shm.GHOST and key in self.holders):
            return None                 # (a ghost made with O_TMPFILE has no name: handed over by descriptor)
        if key not in self.paths:
            if o.kind == Shm.GHOST:
                path, fd = self.names.create(o.name, 0o600)
                try:
                    ghost.made_again(o, fd, path)
                    os.ftruncate(fd, o.size)
                    self._fill(fd, o)
                finally:
                    os.close(fd)
            elif o.unlinked or o.alias:
                path, fd = self.names.create(o.alias or o.name, o.mode or 0o600)
                try:
                    os.ftruncate(fd, o.size)
                    self._fill(fd, o)
                finally:
                    os.close(fd)
                if o.alias:                 # its present name: the job's own object, made anew
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(o.name)
                    os.link(path, o.name)
            else:
                path = o.name
                self._fill_devshm(o)
            self.paths[key] = path
        return self.paths[key]

    def _unlink(self) -> None:
        self.names.remove_all()

    def _fill(self, fd: int, o: image_pb2.ShmImage) -> None:
        for offset, data in self.pages(o.key):
            n = min(len(data), o.size - offset)      # the last page is partly beyond the end: not written
            if n > 0:
                os.pwrite(fd, data[:n], offset)

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
        self._unlink()
        with self._job_ipc():
            for o in self.objects.values():
                if o.kind == Shm.SYSV and o.destroyed and o.key in self.holders:
                    _libc.shmctl(o.shmid, IPC_RMID, None)    # removed once every process has it attached

    def abandon(self) -> None:
        """The restore failed: the System V segments it made go (the job's processes are killed)."""
        self._unlink()
        with self._job_ipc():
            for shmid in self.created:
                _libc.shmctl(shmid, IPC_RMID, None)
        self.created.clear()


_libc = ctypes.CDLL(None, use_errno=True)
_libc.shmat.restype = ctypes.c_void_p
_libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
_libc.shmdt.argtypes = [ctypes.c_void_p]


def _enter_ipc(ns_fd: int, whose: str) -> None:
    if _libc.setns(ns_fd, CLONE_NEWIPC) != 0:
        raise RestoreError(f"cannot enter {whose} IPC namespace: {os.strerror(ctypes.get_errno())}")


def _sysv_create(o: image_pb2.ShmImage, pages: Iterable[tuple[int, memoryview]], job: Collection[int]) -> bool:
    """The segment with the dumped id (via /proc/sys/kernel/shm_next_id), filled from the checkpoint;
    whether it was created.  A segment still there with that id, key and size (SysV segments
    outlive their processes) is reused."""
    seg = _segment(o.shmid)
    created = seg is None or not _reusable(o, seg, job)
    if created:
        with open("/proc/sys/kernel/shm_next_id", "w", encoding="ascii") as f:
            f.write(str(o.shmid))
        key = 0 if o.destroyed else o.ipc_key
        got = _libc.shmget(key, o.size, IPC_CREAT | IPC_EXCL | o.mode)   # the kernel resets next_id
        if got != o.shmid:
            err = os.strerror(ctypes.get_errno()) if got < 0 else f"id {got}"
            if got >= 0:
                _libc.shmctl(got, IPC_RMID, None)
            raise RestoreError(f"cannot re-create System V segment {o.shmid} (key {o.ipc_key:#x}): {err}")
    try:
        _sysv_fill(o, pages)
    except BaseException:
        if created:
            _libc.shmctl(o.shmid, IPC_RMID, None)
        raise
    return created


def _sysv_fill(o: image_pb2.ShmImage, pages: Iterable[tuple[int, memoryview]]) -> None:
    addr = _libc.shmat(o.shmid, None, 0)
    if addr in (None, ctypes.c_void_p(-1).value):
        raise RestoreError(f"cannot attach System V segment {o.shmid}: {os.strerror(ctypes.get_errno())}")
    try:
        ctypes.memset(addr, 0, o.size)
        for offset, data in pages:
            n = min(len(data), o.size - offset)
            if n > 0:
                ctypes.memmove(addr + offset, bytes(data[:n]), n)
    finally:
        _libc.shmdt(ctypes.c_void_p(addr))
