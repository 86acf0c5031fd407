"""Attributes of mappings beyond their protection, and the process-wide settings that
give new mappings theirs: what /proc/PID/smaps shows as VmFlags, saved at dump and
set again at restore.  Dump and restore side by side.

Every mnemonic VmFlags can show (Linux 6.18, fs/proc/task_mmu.c), and what a
restore does with it.  Restored: the restored VMA shows it as the original did.
Harmless: it may differ, and nothing the job can do tells (or it is incr's own).
Refused: the checkpoint fails with one line naming the PID and the mapping.

  ==========  ===================================  ==========================================
  VmFlags     what it is                           restore
  ==========  ===================================  ==========================================
  rd wr ex    protection                           restored (mmap, then mprotect)
  sh ms       shared mapping                       restored with the mapping's kind
  mr me       may read / may exec                  restored: they follow from the mapping and
                                                   the mount, as at the original mmap
  mw          may write                            restored: private mappings always have it;
                                                   a read-only shared file mapping made from
                                                   a writable descriptor is mapped from one
  gd          MAP_GROWSDOWN                        restored
  ac          commit charge (VM_ACCOUNT)           restored: a private VMA without it is
                                                   mapped without write permission and its
                                                   pages written through /proc/PID/mem; an
                                                   anonymous read-only VMA that has it gets
                                                   the anon_vma that keeps it (one page
                                                   written and dropped) before mprotect
  nr          MAP_NORESERVE                        restored
  lo lf       mlock, MAP_LOCKED, mlock2(ONFAULT)   restored after the pages are written and the
                                                   rlimits set (Locked: matches: the pages
                                                   present are the ones restored)
  dc wf dd    MADV_DONTFORK, WIPEONFORK, DONTDUMP  restored
  hg nh       MADV_HUGEPAGE, NOHUGEPAGE            restored before the pages are written
  mg          MADV_MERGEABLE (KSM)                 restored, with PR_SET_MEMORY_MERGE
  sr rr       MADV_SEQUENTIAL, MADV_RANDOM         restored
  dp          MAP_DROPPABLE                        restored as a droppable mapping; its pages
                                                   are never saved (see below)
  gu          guard regions were installed         restored: the guard pages (PAGEMAP_SCAN
                                                   PAGE_IS_GUARD) are installed again after
                                                   their neighbours are written; a VMA whose
                                                   guards were removed keeps the mark
  sl          mseal()                              restored, last
  uw          userfaultfd write-protect            harmless: incr's own dirty tracker; the
                                                   restored job has none until the next pass
  sd          soft-dirty                           harmless: a new VMA is all soft-dirty, so
                                                   the next soft-dirty pass takes it whole
  um ui       userfaultfd missing / minor          refused: the job's own userfaultfd
  ht          hugetlb                              refused
  pf io mm    PFN, I/O, mixed maps (devices)       refused ([vdso] and [vvar] excepted: the
  de ar sf    no expand, PAT, MAP_SYNC (DAX)       kernel maps those in every process)
  ss          x86 shadow stack                     refused
  bt mt       arm64 BTI, MTE                       refused (not on x86-64)
  (other)     a mnemonic incr does not know        refused
  ==========  ===================================  ==========================================

MAP_DROPPABLE memory may be emptied by the kernel at any moment (it holds caches
such as the vDSO getrandom() state, which must never be replayed): a restored
droppable mapping is empty, a state the kernel could have produced at the
instant of the checkpoint, so the job must already cope with it.  Its pages are
neither read nor stored: restoring them would resurrect random state into
every copy restored from one checkpoint.

Process-wide: PR_SET_THP_DISABLE (with PR_THP_DISABLE_EXCEPT_ADVISED) and
PR_SET_MEMORY_MERGE through injected prctl()s, and mlockall(MCL_FUTURE), which
/proc does not show: a one-page probe mapping at dump time tells (VmLck grows
by its page, populated unless MCL_ONFAULT).
"""

from __future__ import annotations

import errno
import mmap
import os
from functools import cache

from incr._native import ffi
from incr.proto import image_pb2

from . import leftovers, proc
from . import ptrace as pt
from .errors import RemoteSyscallFailed, Unsupported
from .pagemap import Pagemap, has_pagemap_scan
from .remote import RemoteProcess
from .tracee import Tracee

Vma = image_pb2.Vma
PAGE = pt.PAGE_SIZE
PROT_READ, PROT_WRITE = 1, 2
MAP_PRIVATE, MAP_ANONYMOUS, MAP_DROPPABLE, MAP_NORESERVE = 0x02, 0x20, 0x08, 0x4000
MADV_RANDOM, MADV_SEQUENTIAL, MADV_DONTNEED = 1, 2, 4
MADV_DONTFORK, MADV_MERGEABLE, MADV_UNMERGEABLE, MADV_HUGEPAGE, MADV_NOHUGEPAGE = 10, 12, 13, 14, 15
MADV_DONTDUMP, MADV_WIPEONFORK, MADV_POPULATE_WRITE = 16, 18, 23
MADV_GUARD_INSTALL, MADV_GUARD_REMOVE = 102, 103
MLOCK_ONFAULT = 1
MCL_FUTURE, MCL_ONFAULT = 2, 4
PR_SET_THP_DISABLE, PR_GET_THP_DISABLE = 41, 42
PR_SET_MEMORY_MERGE, PR_GET_MEMORY_MERGE = 67, 68
PAGE_IS_GUARD = 1 << 8          # PAGEMAP_SCAN category (Linux >= 6.14)
PM_PRESENT = 1 << 63

# mnemonic -> Advice bit, madvise() advice that sets it
_ADVICE = {
    "dc": (Vma.DONTFORK, MADV_DONTFORK),
    "wf": (Vma.WIPEONFORK, MADV_WIPEONFORK),
    "hg": (Vma.HUGEPAGE, MADV_HUGEPAGE),
    "nh": (Vma.NOHUGEPAGE, MADV_NOHUGEPAGE),
    "dd": (Vma.DONTDUMP, MADV_DONTDUMP),
    "mg": (Vma.MERGEABLE, MADV_MERGEABLE),
    "sr": (Vma.SEQUENTIAL, MADV_SEQUENTIAL),
    "rr": (Vma.RANDOM, MADV_RANDOM),
}
_BEFORE_FILL = Vma.HUGEPAGE | Vma.NOHUGEPAGE     # decides what the fill's page faults allocate
_PROCESS_WIDE = Vma.MERGEABLE                     # set with PR_SET_MEMORY_MERGE, see restore()
# Shown by what the mapping is, restored with it (and the mnemonics handled below).
_FOLLOW = frozenset({"rd", "wr", "ex", "sh", "mr", "mw", "me", "ms", "gd", "ac", "nr", "lo", "lf", "dp", "gu",
                     "sl"})
_HARMLESS = frozenset({"uw", "sd"})
_REFUSED = {
    "um": "it is registered with a userfaultfd of the job's own (missing pages)",
    "ui": "it is registered with a userfaultfd of the job's own (minor faults)",
    "ht": "hugetlb mappings are not supported yet",
    "pf": "PFN mappings (of a device) are not supported",
    "io": "I/O memory mappings are not supported",
    "mm": "mixed mappings (of a device) are not supported",
    "de": "a mapping the kernel does not let grow (of a device or driver) is not supported",
    "ar": "a mapping with PAT attributes (of a device) is not supported",
    "sf": "MAP_SYNC (DAX) mappings are not supported",
    "ss": "shadow stacks are not supported yet",
    "bt": "arm64 BTI mappings are not supported",
    "mt": "arm64 MTE mappings are not supported",
}
# Droppable memory has these by its nature: nothing to set on top.
_DROPPABLE_IMPLIES = frozenset({"nr", "wf", "dd", "dp"})


# ---------------------------------------------------------------- dump

def is_droppable(flags: frozenset[str]) -> bool:
    return "dp" in flags


def describe(pid: int, vma: image_pb2.Vma, flags: frozenset[str], where: str) -> None:
    """Record in `vma` what its VmFlags say beyond its kind and protection; refuse what a restore
    could not give back (the table above)."""
    for mnemonic in sorted(flags - _FOLLOW - _HARMLESS - set(_ADVICE)):
        why = _REFUSED.get(mnemonic, "incr does not know this attribute, so it cannot restore it")
        raise Unsupported(pid, where, f"VmFlags shows {mnemonic!r}: {why}")
    own = flags - _DROPPABLE_IMPLIES if vma.kind == Vma.DROPPABLE else flags
    vma.advice = sum(bit for mnemonic, (bit, _) in _ADVICE.items() if mnemonic in own)
    if "lo" in flags:
        vma.lock = Vma.LOCKED_ON_FAULT if "lf" in flags else Vma.LOCKED
    vma.growsdown = "gd" in flags
    vma.sealed = "sl" in flags
    vma.guarded = "gu" in flags
    if vma.kind in (Vma.ANON, Vma.FILE_PRIVATE):
        vma.noreserve = "nr" in flags
        vma.unaccounted = "ac" not in flags and "nr" not in flags
    elif vma.kind in (Vma.FILE_SHARED, Vma.SHMEM):
        vma.noreserve = "nr" in flags
        vma.may_write = "mw" in flags


@cache
def guard_detection() -> str:
    """How guard regions are found on this kernel: "marked" (VmFlags "gu" marks the VMAs that
    may hold some, PAGEMAP_SCAN finds them), "scan" (no mark: every VMA is scanned), or "none"
    (no guard regions, Linux < 6.13).  Probed once on a page of incr's own."""
    buf = mmap.mmap(-1, 2 * PAGE)
    try:
        addr = int(ffi.cast("uintptr_t", ffi.from_buffer(buf)))
        try:
            buf.madvise(MADV_GUARD_INSTALL, PAGE, PAGE)
        except OSError:
            return "none"
        if not has_pagemap_scan():
            return "none"         # (guard regions came after PAGEMAP_SCAN: not reached)
        with Pagemap(os.getpid()) as pm:
            try:
                found = pm.scan(addr, addr + 2 * PAGE, category_anyof_mask=PAGE_IS_GUARD, return_mask=PAGE_IS_GUARD)
            except OSError:
                return "unknown"  # Linux 6.13: guard regions but no PAGE_IS_GUARD to find them
        if found != [(addr + PAGE, addr + 2 * PAGE, PAGE_IS_GUARD)]:
            return "unknown"
        own = proc.vm_flags(os.getpid())
        holder = max(r for r in own if r[0] <= addr)     # (it may have merged with a neighbour)
        return "marked" if "gu" in own[holder] else "scan"
    finally:
        buf.close()


def add_guards(pid: int, vmas: list[image_pb2.Vma]) -> None:
    """The guard regions of each VMA that may hold some (Vma.guards)."""
    how = guard_detection()
    if how == "none":
        return
    candidates = [v for v in vmas if v.kind not in (Vma.VDSO, Vma.VVAR, Vma.VVAR_VCLOCK)
                  and (v.guarded or how != "marked")]
    if not candidates:
        return
    if how == "unknown":
        raise Unsupported(pid, "guard regions", "this kernel (Linux 6.13) has guard regions but cannot show where "
                          "they are (PAGEMAP_SCAN PAGE_IS_GUARD: Linux >= 6.14)")
    with Pagemap(pid) as pm:
        for vma in candidates:
            for start, end, _ in pm.scan(vma.start, vma.end, category_anyof_mask=PAGE_IS_GUARD,
                                         return_mask=PAGE_IS_GUARD):
                vma.guards.add(first=(start - vma.start) // PAGE, count=(end - start) // PAGE)


def dump_process(tracee: Tracee, image: image_pb2.ProcessImage) -> None:
    """The process-wide settings: THP disabled, KSM for every mapping, mlockall() futures."""
    image.thp_disable = tracee.call("prctl", PR_GET_THP_DISABLE, 0, 0, 0, 0)
    merge = tracee.syscall("prctl", PR_GET_MEMORY_MERGE, 0, 0, 0, 0)
    if merge == -errno.EINVAL:
        merge = 0                 # a kernel without KSM
    elif merge < 0:
        raise RemoteSyscallFailed(tracee.pid, "prctl(PR_GET_MEMORY_MERGE)", -merge)
    image.merge_any = bool(merge)
    image.lock_future = _lock_future(tracee)


def _lock_future(tracee: Tracee) -> int:
    """The mlockall() flags new mappings get (mm->def_flags, which /proc does not show): map a
    page and see whether it is locked (VmLck grows), and populated (not MCL_ONFAULT).  The page
    is noted in the tracee's journal while it exists (engine/leftovers.py)."""
    pid = tracee.pid
    before = _vm_lck_kb(pid)
    try:
        with leftovers.temporary_mapping(tracee, tracee.journal, pid, PAGE, PROT_READ) as addr:
            if _vm_lck_kb(pid) <= before:
                return 0
            return MCL_FUTURE | (0 if _present(pid, addr) else MCL_ONFAULT)
    except RemoteSyscallFailed as exc:
        why = "at its locked-memory limit" if exc.errno == errno.EAGAIN else os.strerror(exc.errno)
        raise Unsupported(pid, "mlockall(MCL_FUTURE)", f"cannot tell whether new mappings are locked: a probe "
                          f"mapping failed ({why})") from None


def _vm_lck_kb(pid: int) -> int:
    return int(proc.status(pid)["VmLck"].split()[0])


def _present(pid: int, addr: int) -> bool:
    fd = os.open(f"/proc/{pid}/pagemap", os.O_RDONLY | os.O_CLOEXEC)
    try:
        return bool(int.from_bytes(os.pread(fd, 8, addr // PAGE * 8), "little") & PM_PRESENT)
    finally:
        os.close(fd)


# ---------------------------------------------------------------- restore

def map_flags(vma: image_pb2.Vma) -> int:
    """mmap() flags beyond the mapping's kind."""
    return MAP_NORESERVE if vma.noreserve else 0


def writable_while_filled(vma: image_pb2.Vma) -> bool:
    """Whether the VMA may be mapped writable while its pages are written: not when that would
    charge it a commit it did not have ("ac"; its pages then go through /proc/PID/mem)."""
    return not (vma.unaccounted and not vma.prot & PROT_WRITE)


def before_fill(stub: RemoteProcess, vma: image_pb2.Vma) -> None:
    """Set on a VMA just mapped, before its pages are written."""
    for bit, advice in _ADVICE.values():
        if vma.advice & bit & _BEFORE_FILL:
            _advise(stub, vma, advice)
    if vma.guarded:
        # The kernel's "gu" mark stays after MADV_GUARD_REMOVE: set it with a guard page that
        # is gone before anything is written.
        _advise(stub, vma, MADV_GUARD_INSTALL, vma.start, PAGE)
        _advise(stub, vma, MADV_GUARD_REMOVE, vma.start, PAGE)
    if vma.kind == Vma.ANON and not vma.unaccounted and not vma.noreserve and not vma.prot & PROT_WRITE:
        # mprotect() to read-only takes the commit charge off an anonymous VMA that never held a
        # page (no anon_vma); this one had it: give it an anon_vma with a page written and dropped.
        _advise(stub, vma, MADV_POPULATE_WRITE, vma.start, PAGE)
        _advise(stub, vma, MADV_DONTNEED, vma.start, PAGE)


def after_fill(stub: RemoteProcess, vma: image_pb2.Vma) -> None:
    """Set once the VMA's pages are written: guard pages (which would drop what is written
    under them), and the advice that does not shape the pages."""
    for span in vma.guards:
        _advise(stub, vma, MADV_GUARD_INSTALL, vma.start + span.first * PAGE, span.count * PAGE)
    for bit, advice in _ADVICE.values():
        if vma.advice & bit & ~(_BEFORE_FILL | _PROCESS_WIDE):
            _advise(stub, vma, advice)


def _advise(stub: RemoteProcess, vma: image_pb2.Vma, advice: int, start: int = 0, length: int = 0) -> None:
    stub.call("madvise", start or vma.start, length or vma.end - vma.start, advice)


def restore(stub: RemoteProcess, image: image_pb2.ProcessImage) -> None:
    """What must come after every VMA is mapped, filled and protected, and the process's rlimits
    are set (the job's own mlock() calls were checked against them): KSM, locks, THP, seals
    (after which nothing can change the sealed VMAs), and the mlockall() futures last (each
    mapping after them is locked: the job's own ones only)."""
    vmas = [v for v in image.vmas if v.kind not in (Vma.VDSO, Vma.VVAR, Vma.VVAR_VCLOCK)]
    _restore_merge(stub, image.merge_any, vmas)
    for vma in vmas:
        if vma.lock:
            _lock(stub, vma)
    stub.call("prctl", PR_SET_THP_DISABLE, image.thp_disable & 1, image.thp_disable & ~1, 0, 0)
    for vma in vmas:
        if vma.sealed:
            stub.call("mseal", vma.start, vma.end - vma.start, 0)
    if image.lock_future:
        stub.call("mlockall", image.lock_future)


def _restore_merge(stub: RemoteProcess, merge_any: bool, vmas: list[image_pb2.Vma]) -> None:
    """PR_SET_MEMORY_MERGE (it marks every VMA mergeable), then each VMA as it was."""
    current = stub.syscall("prctl", PR_GET_MEMORY_MERGE, 0, 0, 0, 0)
    if current >= 0 and bool(current) != merge_any:
        stub.call("prctl", PR_SET_MEMORY_MERGE, int(merge_any), 0, 0, 0)
    for vma in vmas:
        if vma.advice & Vma.MERGEABLE:
            _advise(stub, vma, MADV_MERGEABLE)
        elif merge_any:
            _advise(stub, vma, MADV_UNMERGEABLE)


def _lock(stub: RemoteProcess, vma: image_pb2.Vma) -> None:
    length = vma.end - vma.start
    if vma.lock == Vma.LOCKED_ON_FAULT:
        stub.call("mlock2", vma.start, length, MLOCK_ONFAULT)
        return
    ret = stub.syscall("mlock", vma.start, length)
    # With guard pages the kernel locks the VMA, then fails to fault the guard pages in: the
    # job's own mlock() met the same ENOMEM (a guard cannot be installed in a locked VMA).
    if ret < 0 and not (ret == -errno.ENOMEM and vma.guards):
        raise RemoteSyscallFailed(stub.pid, "mlock", -ret)
