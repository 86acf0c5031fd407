"""Ghost files: regular files a job holds or maps after every name of them was removed
(open then unlink, the scratch-file idiom; O_TMPFILE, as Python's tempfile.TemporaryFile).

Their data exists nowhere but in the job, so the checkpoint keeps it.  Dump: such a file
(no link left, outside /dev/shm and memfds, which are shm.py's) is recorded as a shared
object of kind GHOST: its old name, size, mode and owner; its contents are read whole while
the tree is frozen (holes skipped, SEEK_DATA) and stored as a shared object's are, through
the page store: deduplicated, compressed, and only what changed since the last checkpoint.
A file larger than the ghost limit refuses the checkpoint, naming it (`--ghost-limit`).

Restore: the file is made again under its old name (a name taken since gets one of incr's
beside it), with its mode and owner, and only the pages the checkpoint holds are written, so
holes stay holes; every process that held it opens it by path as it did (flags, offset), or
maps it again (shared, or private with its copied-on-write pages over it); once all have it,
the name is removed again.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import secrets
import stat
from pathlib import Path

from incr.faults import fault_point
from incr.proto import image_pb2

from .errors import RestoreError, Unsupported

Shm = image_pb2.ShmImage
DELETED = " (deleted)"
#: The largest ghost file a checkpoint stores by default (--ghost-limit changes it): its contents
#: are copied while the job is frozen.
DEFAULT_LIMIT = 1 << 30
O_TMPFILE = 0o20000000 | os.O_DIRECTORY      # as open(2) and F_GETFL show it


def made_as_tmpfile(flags: int) -> bool:
    """Whether a description's flags say it was opened with O_TMPFILE (it made its file)."""
    return flags & O_TMPFILE == O_TMPFILE


def classify(key: str, path: str, st: os.stat_result) -> image_pb2.ShmImage | None:
    """The ghost file behind `path` (a /proc link's target) and `st`, or None if it still has a name."""
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 0 or not path.endswith(DELETED) \
            or not path.startswith("/"):
        return None
    return Shm(key=key, kind=Shm.GHOST, name=path.removesuffix(DELETED), size=st.st_size,
               mode=stat.S_IMODE(st.st_mode), uid=st.st_uid, gid=st.st_gid)


def removed_node(path: str, st: os.stat_result) -> image_pb2.GhostNode | None:
    """The removed directory or FIFO behind `path` (a /proc link's target) and `st`, or None if it
    still has a name (or is something else)."""
    if not (stat.S_ISDIR(st.st_mode) or stat.S_ISFIFO(st.st_mode)) or st.st_nlink != 0 \
            or not path.endswith(DELETED) or not path.startswith("/"):
        return None
    return image_pb2.GhostNode(key=f"{st.st_dev}:{st.st_ino}", name=path.removesuffix(DELETED),
                               mode=stat.S_IMODE(st.st_mode), uid=st.st_uid, gid=st.st_gid,
                               fifo=stat.S_ISFIFO(st.st_mode))


def preflight_node(d: image_pb2.GhostNode) -> None:
    """Refuse before anything is created when the directory a removed node is to be made in is gone."""
    parent = os.path.dirname(d.name)
    if not os.path.isdir(parent):
        raise RestoreError(f"cannot restore: directory {parent} does not exist, where the removed "
                           f"{'FIFO' if d.fifo else 'directory'} {d.name} the job held is to be made again; "
                           "create it first")


def check_limit(pid: int, what: str, obj: image_pb2.ShmImage, limit: int | None) -> None:
    """Refuse a ghost file over `limit` bytes (None: no limit checked here)."""
    if limit is None or obj.kind != Shm.GHOST or obj.size <= limit:
        return
    need = -(-obj.size // (1 << 20))
    raise Unsupported(pid, what, f"the deleted file is {obj.size} bytes, over the limit of {limit} bytes for "
                                 f"deleted files, whose contents the checkpoint stores; to store it, "
                                 f"checkpoint with --ghost-limit {need}M")


def preflight(objects: list[image_pb2.ShmImage]) -> None:
    """Refuse before anything is created when the directory a ghost file is to be made in is gone."""
    for o in objects:
        if o.kind == Shm.GHOST and not os.path.isdir(os.path.dirname(o.name)):
            raise RestoreError(f"cannot restore: directory {os.path.dirname(o.name)} does not exist, where the "
                               f"deleted file {o.name} the job held is to be made again; create it first")


def made_again(o: image_pb2.ShmImage, fd: int, path: str) -> None:
    """A ghost file just created at `path` as `fd` gets its owner and mode back."""
    try:
        os.fchown(fd, o.uid, o.gid)
        os.fchmod(fd, o.mode)
    except OSError as exc:
        raise RestoreError(f"cannot give {path} (the deleted file {o.name} made again) its owner "
                           f"{o.uid}:{o.gid} and mode {o.mode:o}: {exc.strerror}") from None


# ---------------------------------------------------------------- names given for a moment

RENAME_NOREPLACE = 1
_libc = ctypes.CDLL(None, use_errno=True)


class Names:
    """The names a restore gives files only until every process of the job holds them (ghost files,
    /dev/shm objects the job had unlinked), made so that a restore killed at any instant leaves
    none behind: each is first made under a name of incr's own, noted durably in `journal` before
    it exists and again with its inode once it does, then renamed to the name wanted if that is
    free (never over another file).  The next restore sweeps what a killed one noted (sweep()).
    `journal` None: no notes (a caller that cannot be killed half-way, tests)."""

    def __init__(self, journal: Path | None) -> None:
        self.journal = journal
        self.notes: dict[str, str] = {}          # temporary name -> its note line
        self.made: list[str] = []                # final names, removed by remove_all()
        self.nodes: dict[str, str] = {}          # GhostNode.key -> the directory or FIFO made for it

    def create(self, name: str, mode: int) -> tuple[str, int]:
        """A new file, named `name` if that is free (else a name of incr's beside it): its name and a
        read-write descriptor of it."""
        tmp = self._temporary(name)
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        except OSError as exc:
            self._forget(tmp)
            raise RestoreError(f"cannot re-create {name} (deleted at the checkpoint) in {os.path.dirname(name)}: "
                               f"{exc.strerror}") from None
        return self._named(tmp, name, os.fstat(fd)), fd

    def node(self, d: image_pb2.GhostNode) -> str:
        """The directory or FIFO made again for removed `d` (once for the tree): a directory empty,
        with its mode and owner, named as it was if that is free."""
        if d.key not in self.nodes:
            tmp = self._temporary(d.name)
            try:
                if d.fifo:
                    os.mkfifo(tmp, 0o600)
                else:
                    os.mkdir(tmp, 0o700)
                os.chown(tmp, d.uid, d.gid)
                os.chmod(tmp, d.mode)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.rmdir(tmp)
                self._forget(tmp)
                raise RestoreError(f"cannot re-create {'FIFO' if d.fifo else 'directory'} {d.name} (removed at "
                                   f"the checkpoint): {exc.strerror}") from None
            self.nodes[d.key] = self._named(tmp, d.name, os.stat(tmp))
        return self.nodes[d.key]

    def _temporary(self, name: str) -> str:
        """A fresh name of incr's beside `name`, noted before anything has it."""
        tmp = os.path.join(os.path.dirname(name), f".incr-{os.getpid()}-{secrets.token_hex(6)}")
        self._note(tmp, f"{tmp}\t{name}")
        return tmp

    def _named(self, tmp: str, name: str, st: os.stat_result) -> str:
        """What was made as `tmp`, noted with its inode, renamed to `name` if that is free."""
        self._note(tmp, f"{tmp}\t{name}\t{st.st_dev}\t{st.st_ino}")
        final = name if _rename_noreplace(tmp, name) else tmp
        self.made.append(final)
        fault_point("ghost-named")
        return final

    def remove_all(self) -> None:
        """Every file or directory made loses its name (each process holds it by now, or the restore
        failed)."""
        for path in self.made:
            _remove(path)
        self.made.clear()
        self.nodes.clear()
        for tmp in list(self.notes):
            self._forget(tmp)

    def _note(self, tmp: str, line: str) -> None:
        self.notes[tmp] = line
        self._write()

    def _forget(self, tmp: str) -> None:
        self.notes.pop(tmp, None)
        self._write()

    def _write(self) -> None:
        if self.journal is None:
            return
        if not self.notes:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.journal)
            return
        self.journal.parent.mkdir(parents=True, exist_ok=True)
        part = self.journal.with_name(self.journal.name + ".part")
        with open(part, "w", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in self.notes.values()))
            f.flush()
            os.fsync(f.fileno())
        os.replace(part, self.journal)


def sweep(journals: Path) -> None:
    """Remove the names a killed restore left (Names): every journal in `journals` whose writer is
    gone.  A temporary name is incr's own; the wanted name only if it is still the file incr made."""
    with contextlib.suppress(FileNotFoundError), os.scandir(journals) as entries:
        for entry in entries:
            pid = entry.name.split(".", 1)[0]
            if not pid.isdigit() or (os.path.exists(f"/proc/{pid}") and int(pid) != os.getpid()):
                continue
            with contextlib.suppress(OSError):
                text = Path(entry.path).read_text(encoding="utf-8")
                for line in text.splitlines():
                    _sweep_note(line.split("\t"))
                os.unlink(entry.path)


def _sweep_note(fields: list[str]) -> None:
    _remove(fields[0])
    if len(fields) == 4:
        with contextlib.suppress(OSError):
            st = os.stat(fields[1], follow_symlinks=False)
            if (st.st_dev, st.st_ino) == (int(fields[2]), int(fields[3])):
                _remove(fields[1])


def _remove(path: str) -> None:
    """Unlink a file, or remove an (empty) directory; one gone already, or no longer empty, stays so."""
    try:
        os.unlink(path)
    except IsADirectoryError:
        with contextlib.suppress(OSError):
            os.rmdir(path)
    except FileNotFoundError:
        pass


def _rename_noreplace(old: str, new: str) -> bool:
    """rename(2) that never replaces a file: whether `new` was free (and is now `old`)."""
    if _libc.renameat2(-100, os.fsencode(old), -100, os.fsencode(new), RENAME_NOREPLACE) == 0:
        return True
    err = ctypes.get_errno()
    if err == errno.EEXIST:
        return False
    raise RestoreError(f"cannot name {new} (a deleted file made again): {os.strerror(err)}")
