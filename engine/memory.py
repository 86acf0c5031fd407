"""Memory: VMAs and their pages.  Dump and restore side by side.

Dump records every VMA and copies, while the job is frozen, only pages that
hold data of the job's own: present or swapped pages of anonymous mappings,
and the copied-on-write pages of private file mappings (the others are the
file's and come back by mapping the file again).  Pages known to be the zero
page are recorded as zero without being read.
"""

from __future__ import annotations

import bisect
import contextlib
import mmap
import os
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from incr.proto import image_pb2

from . import aio, ghost, proc, shm, vmflags
from . import ptrace as pt
from .errors import RestoreError, Unsupported
from .files import check_unchanged, file_id, same_file
from .pagemap import (
    PAGE_IS_PFNZERO,
    PM_RUN_FILE,
    PM_RUN_PRESENT,
    Pagemap,
    has_pagemap_scan,
    held_regions,
    pagemap_runs,
)
from .procmem import read_proc_mem_into
from .remote import RemoteProcess

PAGE = pt.PAGE_SIZE
PROT_READ, PROT_WRITE, PROT_EXEC = 1, 2, 4
MAP_SHARED, MAP_PRIVATE, MAP_DROPPABLE, MAP_FIXED, MAP_ANONYMOUS, MAP_GROWSDOWN = 0x01, 0x02, 0x08, 0x10, 0x20, 0x0100
MREMAP_MAYMOVE, MREMAP_FIXED = 1, 2
PR_SET_VMA, PR_SET_VMA_ANON_NAME = 0x53564D41, 0

Vma = image_pb2.Vma
_SPECIAL_KINDS = {"[vdso]": Vma.VDSO, "[vvar]": Vma.VVAR, "[vvar_vclock]": Vma.VVAR_VCLOCK}


def _prot(perms: str) -> int:
    return ((PROT_READ if perms[0] == "r" else 0) | (PROT_WRITE if perms[1] == "w" else 0)
            | (PROT_EXEC if perms[2] == "x" else 0))


def is_special(vma: image_pb2.Vma) -> bool:
    return vma.kind in (Vma.VDSO, Vma.VVAR, Vma.VVAR_VCLOCK)


# ---------------------------------------------------------------- dump

def dump_vmas(pid: int, known_flags: proc.VmFlags | None = None,
              ghost_limit: int | None = None) -> list[image_pb2.Vma]:
    """The VMAs of a frozen process; raises Unsupported naming any mapping incr cannot restore
    (a deleted file over `ghost_limit` bytes among them: ghost.py; None: not checked).

    `known_flags`: the VmFlags of its mappings read a moment ago (smaps costs a page walk, ~10 ms
    per GiB resident, which a frozen job would feel); read again here if a mapping is not in it."""
    out = []
    maps = proc.maps(pid)
    flags = known_flags if known_flags is not None and all((m.start, m.end) in known_flags for m in maps
                                                           if m.path != "[vsyscall]") else proc.vm_flags(pid)
    for m in maps:
        where = f"mapping {m.start:#x}-{m.end:#x} {m.path or '(anonymous)'}"
        if m.path == "[vsyscall]":
            continue                          # fixed by the kernel, the same in every process
        vma = Vma(start=m.start, end=m.end, prot=_prot(m.perms))
        if m.path in _SPECIAL_KINDS:
            vma.kind = _SPECIAL_KINDS[m.path]
            vma.name = m.path
        elif m.path == aio.PATH and m.shared:
            aio.dump(pid, vma, where)
            out.append(vma)
            continue
        elif m.shared and m.path and (obj := _shm_object(pid, m, where)) is not None:
            vma.kind = Vma.SHMEM
            vma.name = m.path
            vma.pgoff = m.offset
            vma.shm = obj.key
            ghost.check_limit(pid, where, obj, ghost_limit)
            if obj.kind == image_pb2.ShmImage.SYSV and (m.offset or m.size < obj.size):
                raise Unsupported(pid, where, "a System V segment attached in part is not supported yet")
        elif not m.is_file:
            if m.shared:
                raise Unsupported(pid, where, "this shared anonymous memory is not supported yet")
            vma.kind = Vma.DROPPABLE if vmflags.is_droppable(flags.get((m.start, m.end), frozenset())) else Vma.ANON
            vma.name = m.path
        elif m.path.endswith(ghost.DELETED) and not m.shared \
                and (obj := _shm_object(pid, m, where)) is not None and obj.kind == image_pb2.ShmImage.GHOST:
            ghost.check_limit(pid, where, obj, ghost_limit)
            vma.kind = Vma.FILE_PRIVATE                 # mapped again from the ghost file, made first
            vma.name = m.path
            vma.pgoff = m.offset
            vma.shm = obj.key
        else:
            if m.path.endswith(ghost.DELETED) or not m.path.startswith("/"):
                kind = "shared memory" if m.shared else "a deleted or unnamed file"
                raise Unsupported(pid, where, f"{kind} is not supported yet")
            try:
                st = os.stat(f"/proc/{pid}/map_files/{m.start:x}-{m.end:x}")
            except FileNotFoundError:
                raise Unsupported(pid, where, "the mapped file cannot be reached") from None
            if not same_file(st, m.path):
                raise Unsupported(pid, where, "the path no longer names the mapped file (replaced?)")
            if not os.path.isfile(m.path):
                raise Unsupported(pid, where, "mappings of devices are not supported yet")
            vma.kind = Vma.FILE_SHARED if m.shared else Vma.FILE_PRIVATE
            vma.name = m.path
            vma.pgoff = m.offset
            vma.file.CopyFrom(file_id(st))
        if not is_special(vma):
            vmflags.describe(pid, vma, flags.get((m.start, m.end), frozenset()), where)
        out.append(vma)
    vmflags.add_guards(pid, out)
    return out


def _shm_object(pid: int, m: proc.MapsEntry, where: str) -> image_pb2.ShmImage | None:
    try:
        st = os.stat(f"/proc/{pid}/map_files/{m.start:x}-{m.end:x}")
    except FileNotFoundError:
        raise Unsupported(pid, where, "the mapped object cannot be reached") from None
    return shm.classify(pid, m.path, st, where)


@dataclass
class PageRun:
    """`count` pages of VMA `vma` from page `first` (relative to its start)."""

    vma: int
    first: int
    count: int
    offset: int          # byte offset in MemoryCopy.buffer, or -1: zero pages, not read


@dataclass
class MemoryCopy:
    """Pages copied while the job was frozen, ready to be hashed after the thaw."""

    runs: list[PageRun]
    buffer: mmap.mmap | None
    bytes_copied: int

    def close(self) -> None:
        if self.buffer is not None:
            # A view of it may still live (in an exception's traceback): then it is unmapped with the last one.
            with contextlib.suppress(BufferError):
                self.buffer.close()
            self.buffer = None


def plan_pages(pid: int, vmas: list[image_pb2.Vma], only: set[int] | None = None) -> list[PageRun]:
    """The pages worth copying (of the VMAs whose indices are in `only`, if given): present or
    swapped anonymous pages, copied-on-write pages of private file mappings."""
    runs: list[PageRun] = []
    offset = 0
    for i, vma, start, end, zero in _held_pages(pid, vmas, only):
        count = (end - start) // PAGE
        if zero:
            if vma.kind == Vma.ANON:
                continue         # read-faulted zero pages: fresh anonymous memory reads the same
            runs.append(PageRun(i, (start - vma.start) // PAGE, count, -1))
        else:
            runs.append(PageRun(i, (start - vma.start) // PAGE, count, offset))
            offset += count * PAGE
    return runs


def _held_pages(pid: int, vmas: list[image_pb2.Vma],
                only: set[int] | None) -> Iterator[tuple[int, image_pb2.Vma, int, int, bool]]:
    """(vma index, vma, start, end, known zero) for the pages holding the job's own data:
    PAGEMAP_SCAN where the kernel has it, else /proc/PID/pagemap."""
    wanted = [(i, v) for i, v in enumerate(vmas) if v.kind in (Vma.ANON, Vma.FILE_PRIVATE)
              and (only is None or i in only)]
    if has_pagemap_scan():
        with Pagemap(pid) as pm:
            for i, vma in wanted:
                regions = held_regions(pm, vma.start, vma.end, file_backed=vma.kind == Vma.FILE_PRIVATE,
                                       return_mask=PAGE_IS_PFNZERO)
                for start, end, cats in regions:
                    yield i, vma, start, end, bool(cats & PAGE_IS_PFNZERO)
        return
    fd = os.open(f"/proc/{pid}/pagemap", os.O_RDONLY | os.O_CLOEXEC)
    try:
        for i, vma in wanted:
            for start, end, flags in pagemap_runs(fd, vma.start, vma.end):
                if flags & PM_RUN_PRESENT and not (vma.kind == Vma.FILE_PRIVATE and flags & PM_RUN_FILE):
                    yield i, vma, start, end, False
    finally:
        os.close(fd)


def allocate_buffer(nbytes: int) -> mmap.mmap:
    """A page buffer with every page already faulted in.

    Faulting the buffer's pages during the copy made a frozen copy of 700 MiB
    take 1.2-2.4 s instead of 0.08-0.11 s (measured here): allocate before
    freezing, from an estimate.
    """
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | mmap.MAP_POPULATE
    return mmap.mmap(-1, max(nbytes, PAGE), flags=flags)


def planned_bytes(runs: list[PageRun]) -> int:
    return sum(r.count for r in runs if r.offset >= 0) * PAGE


def split_runs(runs: list[PageRun], most: int) -> list[PageRun]:
    """Runs of at most `most` pages (zero runs, which copy nothing, stay whole)."""
    out = []
    for run in runs:
        if run.offset < 0 or run.count <= most:
            out.append(run)
            continue
        for first in range(run.first, run.first + run.count, most):
            count = min(most, run.first + run.count - first)
            out.append(PageRun(run.vma, first, count, run.offset + (first - run.first) * PAGE))
    return out


def batches(runs: list[PageRun], most: int, *, from_zero: bool = True) -> Iterator[list[PageRun]]:
    """The runs regrouped into batches of at most `most` copied pages, each batch's offsets from
    0: each one copies into the same buffer of `most` pages (`from_zero` False: the offsets stay
    the runs' own, for a buffer already holding them all)."""
    batch: list[PageRun] = []
    offset = 0
    for run in split_runs(runs, most):
        if run.offset >= 0 and offset + run.count * PAGE > most * PAGE:
            yield batch
            batch, offset = [], 0
        batch.append(run if not from_zero or run.offset < 0 else PageRun(run.vma, run.first, run.count, offset))
        offset += run.count * PAGE if run.offset >= 0 else 0
    if batch:
        yield batch


def unmap_buffer(buffer: mmap.mmap) -> None:
    """Unmap a page buffer; on an error path a view of it may still live in the exception's traceback:
    then it is unmapped with the last view (closing it now would raise BufferError over the error)."""
    with contextlib.suppress(BufferError):
        buffer.close()


def copy_pages(pid: int, vmas: list[image_pb2.Vma], runs: list[PageRun],
               buffer: mmap.mmap | None = None) -> MemoryCopy:
    """Copy the planned pages into one buffer (`buffer` when it is large enough):
    process_vm_readv, or /proc/PID/mem for unreadable VMAs."""
    total = planned_bytes(runs)
    if buffer is not None and len(buffer) >= total:
        buf: mmap.mmap | None = buffer
    else:
        if buffer is not None:
            buffer.close()
        buf = allocate_buffer(total) if total else None
    view = memoryview(buf) if buf is not None else memoryview(b"")
    batch: list[tuple[int, int]] = []      # readable ranges landing contiguously at batch_at
    batch_at = batch_len = 0
    try:
        for run in runs:
            if run.offset < 0:
                continue
            vma = vmas[run.vma]
            rng = (vma.start + run.first * PAGE, run.count * PAGE)
            if not vma.prot & PROT_READ:
                read_proc_mem_into(pid, [rng], view[run.offset:run.offset + rng[1]])
                continue
            if batch and batch_at + batch_len != run.offset:
                pt.vm_read_into(pid, batch, view[batch_at:batch_at + batch_len])
                batch = []
            if not batch:
                batch_at, batch_len = run.offset, 0
            batch.append(rng)
            batch_len += rng[1]
        if batch:
            pt.vm_read_into(pid, batch, view[batch_at:batch_at + batch_len])
    finally:
        view.release()
    return MemoryCopy(runs=runs, buffer=buf, bytes_copied=total)


# ---------------------------------------------------------------- restore

class PageSource(Protocol):
    """Where restore gets page contents."""

    def fill(self, vmas: list[image_pb2.Vma]) -> Iterable[tuple[list[tuple[int, int]], memoryview]]:
        """The held pages of `vmas` as batches of (address, length) ranges and their contents,
        concatenated."""
        ...


def preflight(vmas: Iterable[image_pb2.Vma], written: Collection[tuple[int, int]] = ()) -> None:
    """Refuse before anything is created when a mapped file is gone or changed -- or, for one the job
    writes (`written`: files.written_by_job), gone, replaced or shorter than the mapping needs."""
    for vma in vmas:
        if vma.kind not in (Vma.FILE_PRIVATE, Vma.FILE_SHARED) or vma.shm:    # (a ghost file is made anew)
            continue
        if (vma.file.dev, vma.file.ino) not in written:
            check_unchanged(vma.name, vma.file, "mapped file")
            continue
        try:
            st = os.stat(vma.name)
        except OSError as exc:
            raise RestoreError(f"cannot restore: mapped file {vma.name} is not accessible ({exc.strerror}); "
                               "put it back first") from None
        if st.st_ino != vma.file.ino or st.st_size < vma.file.size:
            raise RestoreError(f"cannot restore: mapped file {vma.name}, which the job writes, was replaced or "
                               f"shortened since the checkpoint ({st.st_size} bytes, was {vma.file.size})")


def writes_files(vmas: Iterable[image_pb2.Vma]) -> Iterator[tuple[int, int]]:
    """The files (device, inode at the checkpoint) that writable shared mappings write into."""
    return ((vma.file.dev, vma.file.ino) for vma in vmas if _writes_file(vma))


def _writes_file(vma: image_pb2.Vma) -> bool:
    return vma.kind == Vma.FILE_SHARED and bool(vma.prot & PROT_WRITE)


def flush_written_files(processes: Iterable[image_pb2.ProcessImage]) -> None:
    """fsync each file a writable shared mapping of the job writes: the checkpoint stores none of its
    data, which must survive the node as the checkpoint does.  A mapping gone meanwhile is passed over."""
    done: set[tuple[int, int]] = set()
    for p in processes:
        for vma in p.vmas:
            key = (vma.file.dev, vma.file.ino)
            if not _writes_file(vma) or key in done:
                continue
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                fd = os.open(f"/proc/{p.pid}/map_files/{vma.start:x}-{vma.end:x}", os.O_RDONLY | os.O_CLOEXEC)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
                done.add(key)


def overlaps(start: int, end: int, ranges: Iterable[tuple[int, int]]) -> bool:
    return any(start < e and s < end for s, e in ranges)


def clear_stub(stub: RemoteProcess, keep: tuple[int, int]) -> list[proc.MapsEntry]:
    """Unmap everything the stub inherited except `keep` and the kernel's special mappings."""
    specials = []
    for m in proc.maps(stub.pid):
        if m.path in _SPECIAL_KINDS or m.path == "[vsyscall]":
            specials.append(m)
        elif (m.start, m.end) != keep and not (keep[0] <= m.start and m.end <= keep[1]):
            stub.call("munmap", m.start, m.size)
    return specials


def move_specials(stub: RemoteProcess, specials: list[proc.MapsEntry], vmas: list[image_pb2.Vma],
                  free_at: int) -> None:
    """mremap [vvar], [vvar_vclock] and [vdso] to their dumped addresses, all of them.

    Moving only [vdso] crashes the process: its code finds [vvar] at a fixed
    distance.  A target that overlaps a stub special is reached via `free_at`.
    """
    wanted = {v.kind: v for v in vmas if is_special(v)}
    current = {_SPECIAL_KINDS[m.path]: m for m in specials if m.path in _SPECIAL_KINDS}
    if set(wanted) != set(current):
        raise RestoreError("cannot restore: this kernel's vdso layout differs from the checkpoint's "
                           "(restore on the kernel the checkpoint was taken on)")
    spans = [(m.start, m.end) for m in current.values()]
    for kind, m in current.items():
        if wanted[kind].end - wanted[kind].start != m.size:
            raise RestoreError("cannot restore: this kernel's vdso differs in size from the checkpoint's "
                               "(restore on the kernel the checkpoint was taken on)")
    positions = {kind: m.start for kind, m in current.items()}
    if any(overlaps(v.start, v.end, spans) and positions[k] != v.start for k, v in wanted.items()):
        for kind, m in current.items():
            stub.call("mremap", positions[kind], m.size, m.size, MREMAP_MAYMOVE | MREMAP_FIXED, free_at)
            positions[kind] = free_at
            free_at += m.size
    for kind, v in wanted.items():
        if positions[kind] != v.start:
            stub.call("mremap", positions[kind], v.end - v.start, v.end - v.start,
                      MREMAP_MAYMOVE | MREMAP_FIXED, v.start)


def map_and_fill(stub: RemoteProcess, vmas: list[image_pb2.Vma], source: PageSource,
                 shared: shm.ShmInstaller | None = None, keep_at: int = 512) -> int:
    """Create every dumped VMA at its address and fill it; returns bytes written.
    Shared memory objects come from `shared` (created once for the whole tree).
    (Locks, seals and KSM come later: vmflags.restore.)"""
    written = 0
    file_fds: dict[tuple[str, bool], int] = {}
    filled: list[tuple[image_pb2.Vma, int]] = []            # (VMA, its protection while being filled)
    try:
        for vma in vmas:
            if is_special(vma):
                continue
            if vma.kind == Vma.SHMEM:
                _map_shared_memory(stub, vma, shared, keep_at)
                continue
            if vma.kind == Vma.AIO:
                aio.restore(stub, vma)
                continue
            fill_prot = _map(stub, vma, file_fds, shared, keep_at)
            vmflags.before_fill(stub, vma)
            filled.append((vma, fill_prot))
        # Every VMA first, then the pages.
        forced = _Forced(stub.pid, [(v.start, v.end) for v, prot in filled if not prot & PROT_WRITE])
        try:
            for ranges, data in source.fill([vma for vma, _ in filled if vma.kind != Vma.DROPPABLE]):
                forced.write(ranges, data)
                written += len(data)
        finally:
            forced.close()
        for vma, fill_prot in filled:
            vmflags.after_fill(stub, vma)
            length = vma.end - vma.start
            if fill_prot != vma.prot:
                stub.call("mprotect", vma.start, length, vma.prot)
            if vma.kind in (Vma.ANON, Vma.DROPPABLE) and vma.name.startswith("[anon:"):
                name = vma.name[len("[anon:"):-1].encode() + b"\0"
                stub.call("prctl", PR_SET_VMA, PR_SET_VMA_ANON_NAME, vma.start, length, stub.put(name))
    finally:
        for fd in file_fds.values():
            stub.call("close", fd)
    return written


def _map_shared_memory(stub: RemoteProcess, vma: image_pb2.Vma, shared: shm.ShmInstaller | None,
                       keep_at: int) -> None:
    if shared is None:
        raise RestoreError(f"cannot map shared memory {vma.name}: no object to map")
    if vma.shm.startswith("sysv:"):
        shared.attach(stub, vma.shm, vma.start, bool(vma.prot & PROT_WRITE))
    else:
        fd = shared.fd_in(stub, vma.shm, keep_at)
        if not vma.may_write and not vma.prot & PROT_WRITE:
            # Mapped from a read-only descriptor: without VM_MAYWRITE ("mw"), mprotect() may not
            # make it writable.  The same object, opened read-only.
            own = stub.put(f"/proc/self/fd/{fd}".encode() + b"\0")
            read_only = stub.call("openat", -100, own, os.O_RDONLY | os.O_CLOEXEC, 0)
            stub.call("close", fd)
            fd = read_only
        flags = MAP_SHARED | MAP_FIXED | vmflags.map_flags(vma)
        got = stub.call("mmap", vma.start, vma.end - vma.start, vma.prot, flags, fd, vma.pgoff)
        stub.call("close", fd)
        if got != vma.start:
            raise RestoreError(f"cannot map {vma.start:#x}-{vma.end:#x} {vma.name}: placed at {got:#x}")
    vmflags.before_fill(stub, vma)
    vmflags.after_fill(stub, vma)


def _map(stub: RemoteProcess, vma: image_pb2.Vma, file_fds: dict[tuple[str, bool], int],
         shared: shm.ShmInstaller | None, keep_at: int) -> int:
    """mmap() one private, droppable or shared-file VMA; returns the protection it has while filled.
    A private mapping of a ghost file maps the file `shared` made again."""
    if vma.kind == Vma.DROPPABLE:
        fill_prot = vma.prot                              # nothing to write into it
        flags, fd, off = MAP_DROPPABLE | MAP_ANONYMOUS | MAP_FIXED, -1, 0
    else:
        fill_prot = vma.prot | PROT_READ | PROT_WRITE if vmflags.writable_while_filled(vma) else vma.prot
        if vma.kind == Vma.ANON:
            flags, fd, off = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0
        else:
            writable = vma.kind == Vma.FILE_SHARED and vma.may_write
            if vma.shm:                      # a ghost file's (made first, by shm)
                if (vma.shm, False) not in file_fds:
                    file_fds[vma.shm, False] = _ghost_fd(stub, vma, shared, keep_at)
                fd = file_fds[vma.shm, False]
            else:
                if (vma.name, writable) not in file_fds:
                    mode = os.O_RDWR if writable else os.O_RDONLY
                    file_fds[vma.name, writable] = stub.call(
                        "openat", -100, stub.put(os.fsencode(vma.name) + b"\0"), mode | os.O_CLOEXEC, 0)
                fd = file_fds[vma.name, writable]
            off = vma.pgoff
            flags = (MAP_SHARED if vma.kind == Vma.FILE_SHARED else MAP_PRIVATE) | MAP_FIXED
            if vma.kind == Vma.FILE_SHARED:
                fill_prot = vma.prot
    flags |= (MAP_GROWSDOWN if vma.growsdown else 0) | vmflags.map_flags(vma)
    got = stub.call("mmap", vma.start, vma.end - vma.start, fill_prot, flags, fd, off)
    if got != vma.start:
        raise RestoreError(f"cannot map {vma.start:#x}-{vma.end:#x} {vma.name}: placed at {got:#x}")
    return fill_prot


def _ghost_fd(stub: RemoteProcess, vma: image_pb2.Vma, shared: shm.ShmInstaller | None, keep_at: int) -> int:
    if shared is None or vma.shm not in shared.objects:
        raise RestoreError(f"cannot map {vma.start:#x}-{vma.end:#x} {vma.name}: the deleted file is not in the "
                           "checkpoint")
    # Read-only: a mapping keeps its descriptor's open file, and one open for writing would keep the
    # file from being the process's executable again (PR_SET_MM_MAP: EACCES), as a deleted exe may be.
    fd = shared.fd_in(stub, vma.shm, keep_at)
    own = stub.put(f"/proc/self/fd/{fd}".encode() + b"\0")
    read_only = stub.call("openat", -100, own, os.O_RDONLY | os.O_CLOEXEC, 0)
    stub.call("close", fd)
    return read_only


class _Forced:
    """Writes pages into the stub: process_vm_writev, except into the `spans` mapped without
    write permission (to keep them free of a commit charge), reached through /proc/PID/mem."""

    def __init__(self, pid: int, spans: list[tuple[int, int]]) -> None:
        self.pid = pid
        self.spans = sorted(spans)
        self.starts = [s for s, _ in self.spans]
        self.fd = os.open(f"/proc/{pid}/mem", os.O_RDWR | os.O_CLOEXEC) if spans else -1

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def write(self, ranges: list[tuple[int, int]], data: memoryview) -> None:
        if not self.spans:
            pt.vm_write(self.pid, ranges, data)
            return
        batch: list[tuple[int, int]] = []       # writable pieces, contiguous in data from batch_at
        batch_at = pos = 0
        for addr, length, forced in self._pieces(ranges):
            if forced:
                if batch:
                    pt.vm_write(self.pid, batch, data[batch_at:pos])
                    batch = []
                self._pwrite(addr, data[pos:pos + length])
                batch_at = pos + length
            else:
                batch.append((addr, length))
            pos += length
        if batch:
            pt.vm_write(self.pid, batch, data[batch_at:pos])

    def _pieces(self, ranges: list[tuple[int, int]]) -> Iterator[tuple[int, int, bool]]:
        """`ranges` cut where they enter or leave a forced span: (address, length, forced)."""
        for addr, length in ranges:
            end = addr + length
            i = max(bisect.bisect_right(self.starts, addr) - 1, 0)
            while addr < end:
                while i < len(self.spans) and self.spans[i][1] <= addr:
                    i += 1
                if i < len(self.spans) and self.spans[i][0] <= addr:
                    cut = min(end, self.spans[i][1])
                    yield addr, cut - addr, True
                else:
                    cut = min(end, self.spans[i][0]) if i < len(self.spans) else end
                    yield addr, cut - addr, False
                addr = cut

    def _pwrite(self, addr: int, data: memoryview) -> None:
        done = 0
        while done < len(data):
            done += os.pwrite(self.fd, data[done:], addr + done)
