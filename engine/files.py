"""Open files: the descriptor table and the open file descriptions behind it.

Supported: regular files and directories (reopened by path at the dumped
offset, flags and close-on-exec), /dev/null|zero|full|random|urandom, and
descriptors that share one open file description (kcmp) stay shared.  A
terminal or pipe on fd 0-2 that leads outside the job is the launcher's
stdio: the restored process gets `incr restore`'s own instead.

Writable regular files that grew after the checkpoint (the job kept writing
its output) are truncated back to their size at checkpoint time on restore, so
that the job's later writes land where they did the first time.
"""

from __future__ import annotations

import logging
import os
import stat
from collections import defaultdict

from incr.proto import image_pb2

from . import proc
from . import ptrace as pt
from .errors import RestoreError, Unsupported
from .remote import RemoteProcess

log = logging.getLogger(__name__)

OpenFile = image_pb2.OpenFile
STDIO = (0, 1, 2)
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
TTY_MAJORS = {4, 5, 136, 137, 138, 139, 140, 141, 142, 143}
O_CLOEXEC = 0o2000000
O_ACCMODE = 0o3
_NOT_REOPENED = os.O_CREAT | os.O_TRUNC | os.O_EXCL | os.O_NOCTTY
AT_FDCWD = -100
F_SETFD, FD_CLOEXEC = 2, 1


def file_id(st: os.stat_result) -> image_pb2.FileId:
    return image_pb2.FileId(dev=st.st_dev, ino=st.st_ino, size=st.st_size, mtime_ns=st.st_mtime_ns,
                            mode=st.st_mode)


def same_file(st: os.stat_result, path: str) -> bool:
    try:
        other = os.stat(path)
    except OSError:
        return False
    return (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino)


def check_unchanged(path: str, fid: image_pb2.FileId, what: str) -> None:
    """Refuse to restore onto a file that is gone or was modified since the checkpoint."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise RestoreError(f"cannot restore: {what} {path} is not accessible ({exc.strerror})") from None
    if st.st_size != fid.size or st.st_mtime_ns != fid.mtime_ns:
        raise RestoreError(f"cannot restore: {what} {path} changed since the checkpoint (size or "
                           "modification time differ); put the original back first")


def writable(flags: int) -> bool:
    return flags & O_ACCMODE in (os.O_WRONLY, os.O_RDWR)


# ---------------------------------------------------------------- dump

def dump(pid: int, skip: set[int]) -> tuple[list[image_pb2.OpenFile], list[image_pb2.Fd]]:
    """The descriptor table of a frozen process, but `skip`; Unsupported names the first fd incr
    cannot restore."""
    numbers = [fd for fd in proc.fds(pid) if fd not in skip]
    links = {fd: proc.readlink(pid, f"fd/{fd}") for fd in numbers}
    stats = {fd: os.stat(f"/proc/{pid}/fd/{fd}") for fd in numbers}
    pipe_users: dict[str, list[int]] = defaultdict(list)
    for fd, link in links.items():
        if link.startswith("pipe:"):
            pipe_users[link].append(fd)

    files: list[image_pb2.OpenFile] = []
    fds: list[image_pb2.Fd] = []
    by_inode: dict[tuple[int, int], list[tuple[int, image_pb2.OpenFile]]] = defaultdict(list)
    for fd in numbers:
        info = proc.fdinfo(pid, fd)
        flags = int(info["flags"], 8)
        desc = _describe(pid, fd, links[fd], stats[fd], flags, int(info.get("pos", "0")), pipe_users)
        key = (stats[fd].st_dev, stats[fd].st_ino)
        shared = next((f for other, f in by_inode[key] if pt.kcmp_files(pid, other, pid, fd) == 0), None)
        if shared is None:
            desc.id = len(files)
            files.append(desc)
            by_inode[key].append((fd, desc))
            shared = desc
        fds.append(image_pb2.Fd(fd=fd, file=shared.id, cloexec=bool(flags & O_CLOEXEC)))
    return files, fds


def _describe(pid: int, fd: int, link: str, st: os.stat_result, flags: int, pos: int,
              pipe_users: dict[str, list[int]]) -> image_pb2.OpenFile:
    what = f"fd {fd} ({link})"
    mode = st.st_mode
    base = OpenFile(path=link, flags=flags & ~O_CLOEXEC, pos=pos)
    if link.startswith(("socket:", "anon_inode:")) or stat.S_ISSOCK(mode):
        kind = link.split(":", 1)[1].strip("[]") if ":" in link else "socket"
        noun = "sockets" if link.startswith("socket:") else f"{kind} descriptors"
        raise Unsupported(pid, what, f"{noun} are not supported yet")
    if stat.S_ISFIFO(mode):
        if not link.startswith("pipe:"):
            raise Unsupported(pid, what, "named FIFOs are not supported yet")
        if fd in STDIO and len(pipe_users[link]) == sum(1 for u in pipe_users[link] if u in STDIO) \
                and not _pipe_both_ends(pid, pipe_users[link]):
            base.kind = OpenFile.INHERIT_STDIO
            base.what = link
            return base
        peers = _holders(link, exclude=pid)
        where = f"its other end is held by {', '.join(peers)}" if peers else "it is a pipe to itself"
        raise Unsupported(pid, what, f"{where}; pipes are not supported yet")
    if stat.S_ISCHR(mode):
        if link in DEVICES:
            base.kind = OpenFile.CHAR_DEVICE
            return base
        if os.major(st.st_rdev) in TTY_MAJORS and fd in STDIO:
            base.kind = OpenFile.INHERIT_STDIO
            base.what = link
            return base
        raise Unsupported(pid, what, "this character device is not supported yet")
    if stat.S_ISDIR(mode) or stat.S_ISREG(mode):
        if link.endswith(" (deleted)") or not same_file(st, link):
            raise Unsupported(pid, what, "the file was deleted or replaced while open; "
                                         "unlinked files are not supported yet")
        base.kind = OpenFile.DIRECTORY if stat.S_ISDIR(mode) else OpenFile.REGULAR
        base.file.CopyFrom(file_id(st))
        return base
    raise Unsupported(pid, what, "this kind of file is not supported yet")


def _holders(link: str, exclude: int) -> list[str]:
    """Processes (other than `exclude`) with an fd on the same pipe; slow, for error messages only."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == exclude:
            continue
        try:
            if any(os.readlink(f"/proc/{entry}/fd/{fd}") == link for fd in os.listdir(f"/proc/{entry}/fd")):
                found.append(proc.describe(int(entry)))
        except OSError:
            continue
    return found[:3]


def _pipe_both_ends(pid: int, fds: list[int]) -> bool:
    modes = {int(proc.fdinfo(pid, fd)["flags"], 8) & O_ACCMODE for fd in fds}
    return os.O_RDONLY in modes and os.O_WRONLY in modes


# ---------------------------------------------------------------- restore

def preflight(files: list[image_pb2.OpenFile]) -> None:
    """Refuse before anything is created when a file the job had open is missing or shrank."""
    sizes: dict[str, tuple[int, bool]] = {}
    for f in files:
        if f.kind not in (OpenFile.REGULAR, OpenFile.DIRECTORY):
            continue
        try:
            st = os.stat(f.path)
        except OSError as exc:
            raise RestoreError(f"cannot restore: {f.path}, open in the job, is not accessible "
                               f"({exc.strerror}); put it back first") from None
        if stat.S_IFMT(st.st_mode) != stat.S_IFMT(f.file.mode):
            raise RestoreError(f"cannot restore: {f.path} is no longer a "
                               f"{'directory' if f.kind == OpenFile.DIRECTORY else 'regular file'}")
        if f.kind == OpenFile.REGULAR:
            old = sizes.get(f.path, (f.file.size, False))
            sizes[f.path] = (f.file.size, old[1] or writable(f.flags))
    for path, (size, is_written) in sizes.items():
        now = os.stat(path).st_size
        if now < size:
            raise RestoreError(f"cannot restore: {path} is shorter than at the checkpoint ({now} < {size} "
                               "bytes); data the job had written is gone")
        if now != size and not is_written:
            raise RestoreError(f"cannot restore: {path}, read by the job, changed size since the "
                               f"checkpoint ({size} -> {now} bytes); put the original back first")


def restore(target: RemoteProcess, files: list[image_pb2.OpenFile], fds: list[image_pb2.Fd]) -> None:
    """Rebuild the descriptor table in the stub, which holds only restore's own fds 0-2."""
    by_file: dict[int, list[image_pb2.Fd]] = defaultdict(list)
    for fd in fds:
        by_file[fd.file].append(fd)
    inherited = {fd.fd for fd in fds if files[fd.file].kind == OpenFile.INHERIT_STDIO}
    for n in STDIO:
        if n not in inherited:
            target.syscall("close", n)          # EBADF is fine: restore's own fd n may be closed
    for f in files:
        users = sorted(by_file[f.id], key=lambda d: d.fd)
        if f.kind == OpenFile.INHERIT_STDIO:
            for d in users:
                target.syscall("fcntl", d.fd, F_SETFD, FD_CLOEXEC if d.cloexec else 0)
            continue
        if f.kind == OpenFile.REGULAR and writable(f.flags):
            now = os.stat(f.path).st_size
            if now > f.file.size:
                log.warning("%s: truncated from %d to %d bytes, its size at the checkpoint (the job writes "
                            "the rest again)", f.path, now, f.file.size)
                os.truncate(f.path, f.file.size)
        tmp = target.call("openat", AT_FDCWD, target.put(os.fsencode(f.path) + b"\0"),
                          f.flags & ~_NOT_REOPENED, 0)
        if f.kind in (OpenFile.REGULAR, OpenFile.DIRECTORY) and f.pos:
            target.call("lseek", tmp, f.pos, os.SEEK_SET)
        for d in users:
            if d.fd == tmp:
                target.call("fcntl", tmp, F_SETFD, FD_CLOEXEC if d.cloexec else 0)
            else:
                target.call("dup3", tmp, d.fd, O_CLOEXEC if d.cloexec else 0)
        if tmp not in {d.fd for d in users}:
            target.call("close", tmp)
