"""Ground truth for the dirty-page trackers: a target writes a known set of
pages; the tracker must report exactly that set, or a safe superset, and never
miss one, through every edge case DESIGN §3 lists.

Runs on this machine for uffd-wp and hash.  Soft-dirty needs a kernel with
CONFIG_MEM_SOFT_DIRTY: test_soft_dirty_in_a_vm runs this file's soft-dirty
cases inside a qemu guest booting Debian's own kernel (../shared/tools/
softdirty-vm.sh), and skips with the reason when that tool is absent.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from softdirty_vm import IN_GUEST, run_in_guest

from conftest import Procs
from incr import dirty
from incr._native import ffi
from incr.engine import memory
from incr.engine.freeze import freeze
from incr.engine.pagemap import (
    PAGE_IS_PRESENT,
    PAGE_IS_SWAPPED,
    PAGE_IS_WRITTEN,
    PM_SCAN_CHECK_WPASYNC,
    PM_SCAN_WP_MATCHING,
    Pagemap,
)

P = 4096
PROT_RW, MAP_PRIVATE_ANON, MAP_PRIVATE = 3, 0x22, 0x02
MADV_DONTNEED, MADV_HUGEPAGE = 4, 14
FEATURES = dirty.probe()


class Target:
    """A memops process driven over pipes (or FIFOs, for a forked child)."""

    def __init__(self, pid: int, send: Callable[[str], None], recv: Callable[[], str]) -> None:
        self.pid, self._send, self._recv = pid, send, recv

    def cmd(self, *args: object) -> int:
        self._send(" ".join(str(a) for a in args) + "\n")
        reply = self._recv()
        assert reply, "the target died"
        return int(reply)

    def mmap(self, pages: int) -> int:
        addr = self.cmd("mmap", pages * P, PROT_RW, MAP_PRIVATE_ANON)
        assert addr > 0
        return addr

    def write(self, addr: int, pages: int, byte: int = 0x5A) -> None:
        assert self.cmd("write", addr, pages, byte) == 0


@pytest.fixture
def target(cprog, procs: Procs) -> Target:
    p = procs.start([cprog("memops")], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert p.stdin is not None and p.stdout is not None
    stdin, stdout = p.stdin, p.stdout

    def send(line: str) -> None:
        stdin.write(line.encode())
        stdin.flush()

    return Target(p.pid, send, lambda: stdout.readline().decode())


def _trackers() -> Iterator[object]:
    for name in ("uffd-wp", "soft-dirty", "hash"):
        available = {"uffd-wp": FEATURES.uffd_wp, "soft-dirty": FEATURES.soft_dirty, "hash": True}[name]
        why = {"uffd-wp": FEATURES.uffd_wp_why, "soft-dirty": FEATURES.soft_dirty_why, "hash": ""}[name]
        marks = [] if available else [pytest.mark.skip(reason=f"{name} unavailable on this kernel: {why}"
                                                       + ("" if IN_GUEST else "; see test_soft_dirty_in_a_vm"))]
        yield pytest.param(name, marks=marks, id=name)


@pytest.fixture(params=list(_trackers()))
def tracker(request: pytest.FixtureRequest) -> Iterator[dirty.Tracker]:
    t = dirty.choose(request.param)
    yield t
    t.close()


def collect(tracker: dirty.Tracker, target: Target, *, frozen: bool = False) -> dict[str, set[int]]:
    """What the tracker reports, as absolute page addresses: "copy", "holes" (dropped), "absent"
    (not held, when it reports presence: at a freeze), "full" (VMAs to take whole)."""
    vmas = memory.dump_vmas(target.pid)
    if frozen:
        with freeze(target.pid) as fr:
            dirt = tracker.collect(vmas, fr)
    else:
        dirt = tracker.collect(vmas, None)
    copy: set[int] = set()
    holes: set[int] = set()
    absent: set[int] = set()
    full: set[int] = set()
    for vma in vmas:
        d = dirt.get(vma.start)
        if d is None:
            continue
        if d.full:
            full.update(range(vma.start, vma.end, P))
            continue
        for first, count in d.copy:
            copy.update(vma.start + (first + i) * P for i in range(count))
        for first, count in d.holes:
            holes.update(vma.start + (first + i) * P for i in range(count))
        if d.present is not None:
            held = {vma.start + (f + i) * P for f, c in d.present for i in range(c)}
            absent.update(p for p in range(vma.start, vma.end, P) if p not in held)
    return {"copy": copy, "holes": holes, "absent": absent, "full": full}


def pages(addr: int, *indices: int) -> set[int]:
    return {addr + i * P for i in indices}


def within(addrs: set[int], start: int, npages: int) -> set[int]:
    return {a for a in addrs if start <= a < start + npages * P}


def check(tracker: dirty.Tracker, got: dict[str, set[int]], start: int, npages: int, *, copy: set[int],
          holes: set[int] = frozenset(), zero_ok: set[int] = frozenset()) -> None:  # type: ignore[assignment]
    """Never a miss; exact for uffd-wp (but for `zero_ok`: untouched pages it may call dropped,
    which is safe: they are zero); soft-dirty and hash may report more."""
    reported_copy = within(got["copy"] | got["full"], start, npages)
    reported_holes = within(got["holes"] | got["absent"] | got["full"], start, npages)
    assert copy <= reported_copy, f"missed written pages {sorted(copy - reported_copy)}"
    assert holes <= reported_holes, f"missed dropped pages {sorted(holes - reported_holes)}"
    if tracker.name == "uffd-wp":        # exact, outside VMAs it reports whole (new to it)
        whole = within(got["full"], start, npages)
        assert within(got["copy"], start, npages) == copy - whole
        assert within(got["holes"], start, npages) - zero_ok <= holes


def start_tracking(tracker: dirty.Tracker, target: Target) -> None:
    tracker.start(target.pid, "/nonexistent-store")
    first = collect(tracker, target)            # arms; uffd-wp and hash: everything is new
    assert first["full"] or tracker.name == "soft-dirty"


def test_the_trackers_own_stops_of_the_job_are_counted(tracker: dirty.Tracker, target: Target) -> None:
    """A tracker stopping the job on its own (arming uffd-wp, a soft-dirty read and clear) is
    downtime the job feels: each such stop is in stops_ms, whose longest predump reports when it
    outlasts the freeze.  A collect in the caller's freeze is no stop of the tracker's."""
    tracker.start(target.pid, "/nonexistent-store")
    armed = len(tracker.stops_ms)
    assert armed == (1 if tracker.name == "uffd-wp" else 0)
    target.write(target.mmap(4), 4)
    collect(tracker, target)
    assert len(tracker.stops_ms) == armed + (1 if tracker.name == "soft-dirty" else 0)
    before = len(tracker.stops_ms)
    collect(tracker, target, frozen=True)
    assert len(tracker.stops_ms) == before
    assert all(ms > 0 for ms in tracker.stops_ms)


def test_written_pages_reported_exactly(tracker: dirty.Tracker, target: Target) -> None:
    a = target.mmap(64)
    target.write(a, 64)
    start_tracking(tracker, target)
    if tracker.name != "hash":
        check(tracker, collect(tracker, target), a, 64, copy=set())
    for i in (3, 4, 17, 63):
        target.write(a + i * P, 1, 0x11)
    check(tracker, collect(tracker, target), a, 64, copy=pages(a, 3, 4, 17, 63))
    if tracker.name != "hash":
        check(tracker, collect(tracker, target), a, 64, copy=set())


def test_madv_dontneed_pages_are_reported_as_dropped(tracker: dirty.Tracker, target: Target) -> None:
    a = target.mmap(64)
    target.write(a, 64)
    start_tracking(tracker, target)
    target.write(a + 2 * P, 1, 0x22)
    assert target.cmd("madvise", a + 10 * P, 2 * P, MADV_DONTNEED) == 0
    got = collect(tracker, target)
    check(tracker, got, a, 64, copy=pages(a, 2), holes=pages(a, 10, 11))


def test_new_moved_grown_and_unmapped_vmas(tracker: dirty.Tracker, target: Target) -> None:
    a = target.mmap(32)
    target.write(a, 32)
    gone = target.mmap(8)
    target.write(gone, 8)
    start_tracking(tracker, target)
    b = target.mmap(16)                                   # new VMA
    target.write(b + 5 * P, 1)
    spot = target.mmap(32)
    assert target.cmd("munmap", spot, 32 * P) == 0
    moved = target.cmd("mremap", a, 32 * P, 32 * P, spot)  # moved VMA, with its data
    assert moved == spot
    assert target.cmd("munmap", gone, 8 * P) == 0         # unmapped VMA
    got = collect(tracker, target)
    check(tracker, got, b, 16, copy=pages(b, 5))
    check(tracker, got, moved, 32, copy=pages(moved, *range(32)))
    assert not within(got["copy"] | got["full"], gone, 8)
    # grow in place: the new pages are reported when written
    c = target.mmap(64)
    assert target.cmd("munmap", c + 16 * P, 48 * P) == 0
    target.write(c, 16)
    collect(tracker, target)
    assert target.cmd("mremap", c, 16 * P, 32 * P, 0) == c
    target.write(c + 1 * P, 1, 0x33)
    target.write(c + 20 * P, 1, 0x33)
    # uffd-wp sees the grown part's untouched pages as written-and-absent: zero, as they are.
    check(tracker, collect(tracker, target), c, 32, copy=pages(c, 1, 20), zero_ok=pages(c, *range(16, 32)))


def test_mprotect_split(tracker: dirty.Tracker, target: Target) -> None:
    d = target.mmap(64)
    target.write(d, 64)
    start_tracking(tracker, target)
    target.write(d + 2 * P, 1, 0x44)
    assert target.cmd("mprotect", d + 16 * P, 16 * P, 1) == 0
    check(tracker, collect(tracker, target), d, 64, copy=pages(d, 2))
    assert target.cmd("mprotect", d + 16 * P, 16 * P, PROT_RW) == 0
    target.write(d + 20 * P, 1, 0x44)
    target.write(d + 40 * P, 1, 0x44)
    check(tracker, collect(tracker, target), d, 64, copy=pages(d, 20, 40))


def test_transparent_huge_pages_are_tracked_per_4k(tracker: dirty.Tracker, target: Target) -> None:
    raw = target.mmap(3 * 512)
    a = (raw + (2 << 20) - 1) & ~((2 << 20) - 1)
    assert target.cmd("madvise", a, 4 << 20, MADV_HUGEPAGE) == 0
    target.write(a, 1024)
    start_tracking(tracker, target)
    target.write(a + 3 * P, 1, 0x55)
    target.write(a + 600 * P, 1, 0x55)
    check(tracker, collect(tracker, target), a, 1024, copy=pages(a, 3, 600))


def test_kernel_side_writes_are_seen(tracker: dirty.Tracker, target: Target, tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(3 * P))
    a = target.mmap(16)
    target.write(a, 16)
    start_tracking(tracker, target)
    assert target.cmd("readfile", src, a + 4 * P, 3 * P) == 3 * P      # read(2) writes, not the job
    check(tracker, collect(tracker, target), a, 16, copy=pages(a, 4, 5, 6))


def test_private_file_mapping(tracker: dirty.Tracker, target: Target, tmp_path: Path) -> None:
    data = tmp_path / "data.bin"
    data.write_bytes(b"x" * 64 * P)
    m = target.cmd("mmapfile", data, 64 * P, PROT_RW, MAP_PRIVATE)
    assert m > 0
    target.cmd("read", m, 16)                            # file pages: the file's, not the job's
    target.write(m + 16 * P, 8)                          # copied on write: the job's
    start_tracking(tracker, target)
    target.cmd("read", m + 30 * P, 4)                    # reads never count
    target.write(m + 2 * P, 1, 0x66)                     # a file page becomes the job's
    target.write(m + 17 * P, 1, 0x66)
    assert target.cmd("madvise", m + 18 * P, P, MADV_DONTNEED) == 0   # back to the file's page
    # uffd-wp alone misses the dropped page 18 (see dirty._held_runs): the freeze's presence scan catches it.
    check(tracker, collect(tracker, target, frozen=True), m, 64, copy=pages(m, 2, 17), holes=pages(m, 18))


def test_forked_child_needs_and_gets_its_own_tracking(tracker: dirty.Tracker, target: Target, tmp_path: Path,
                                                        procs: Procs) -> None:
    a = target.mmap(64)
    target.write(a, 64)
    start_tracking(tracker, target)
    target.write(a + 20 * P, 4, 0x77)                    # before the fork, not yet collected
    fifo_in, fifo_out = tmp_path / "in", tmp_path / "out"
    os.mkfifo(fifo_in)
    os.mkfifo(fifo_out)
    child_pid = target.cmd("forkcmd", fifo_in, fifo_out)
    procs.track(child_pid)
    with open(fifo_in, "w") as to_child, open(fifo_out) as from_child:
        def send(line: str) -> None:
            to_child.write(line)
            to_child.flush()

        child = Target(child_pid, send, from_child.readline)
        target.write(a + 10 * P, 4, 0x78)                # parent, after the fork: copy-on-write
        check(tracker, collect(tracker, target), a, 64, copy=pages(a, 10, 11, 12, 13, 20, 21, 22, 23))
        mine = dirty.choose(tracker.name)
        try:
            mine.start(child_pid, "/nonexistent-store")  # not the parent's parked descriptor
            if tracker.name == "uffd-wp":
                assert mine.parked != tracker.parked  # type: ignore[attr-defined]
            assert collect(mine, child)["full"] or tracker.name == "soft-dirty"
            child.write(a + 30 * P, 2, 0x79)
            check(mine, collect(mine, child), a, 64, copy=pages(a, 30, 31))
            check(tracker, collect(tracker, target), a, 64, copy=set())   # the parent saw none of it
        finally:
            mine.close()
        send("exit\n")


def test_tracker_leaving_does_not_disturb_the_job(tracker: dirty.Tracker, target: Target) -> None:
    a = target.mmap(128)
    target.write(a, 128)
    start_tracking(tracker, target)
    target.write(a, 64, 0x12)
    collect(tracker, target)
    tracker.finish("")
    for byte in (0x21, 0x22):
        target.write(a, 128, byte)
        assert target.cmd("read", a, 128) == byte * 128


def test_unregistered_vma_trap_loses_pages_only_for_a_naive_scan(target: Target) -> None:
    """DESIGN §3: a write-protecting scan over an unregistered VMA fails with EPERM after
    re-protecting the registered part before it.  Shown here, then shown harmless to the tracker."""
    if not FEATURES.uffd_wp:
        pytest.skip(f"uffd-wp unavailable: {FEATURES.uffd_wp_why}")
    tracker = dirty.choose("uffd-wp")
    try:
        a = target.mmap(48)
        target.write(a, 48)
        start_tracking(tracker, target)
        # The trap: a new, unregistered VMA *after* registered memory holding a written page.
        b = a + 32 * P
        assert target.cmd("munmap", b, 16 * P) == 0
        assert target.cmd("mmapat", b, 16 * P, PROT_RW) == b
        target.write(a + 7 * P, 1, 0x31)
        with Pagemap(target.pid) as pm:
            with pytest.raises(OSError) as exc:
                pm.scan(a, b + 16 * P, flags=PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
                        category_mask=PAGE_IS_WRITTEN, return_mask=PAGE_IS_WRITTEN)
            assert exc.value.errno == 1                                    # EPERM
            assert pm.scan(a, b, category_mask=PAGE_IS_WRITTEN, return_mask=PAGE_IS_WRITTEN) == [], \
                "expected the failed scan to re-protect page 7 and lose it"
        # The tracker, in the same situation, loses nothing.
        collect(tracker, target)                                           # registers b
        c = a + 24 * P
        assert target.cmd("munmap", c, 8 * P) == 0
        assert target.cmd("mmapat", c, 8 * P, PROT_RW) == c
        target.write(a + 5 * P, 1, 0x32)
        target.write(b + 3 * P, 1, 0x32)
        got = collect(tracker, target)
        check(tracker, got, a, 24, copy=pages(a, 5))
        check(tracker, got, b, 16, copy=pages(b, 3))
        assert within(got["full"], c, 8) == pages(c, *range(8)), "the unregistered VMA must be taken whole"
    finally:
        tracker.close()


def test_auto_reports_its_choice_and_reason() -> None:
    t = dirty.choose("auto")
    assert t.reason.startswith("auto:")
    expected = "uffd-wp" if FEATURES.uffd_wp else "soft-dirty" if FEATURES.soft_dirty else "hash"
    assert t.name == expected


@pytest.mark.skipif(IN_GUEST, reason="already inside the soft-dirty guest")
def test_soft_dirty_in_a_vm() -> None:
    """This file's soft-dirty cases, for real, in a guest whose kernel has soft-dirty."""
    if FEATURES.soft_dirty:
        pytest.skip("this kernel has soft-dirty: the soft-dirty cases ran natively")
    run_in_guest(Path(__file__), "soft-dirty")


SCATTERED = 6000          # written pages, every other one: more regions than one PAGEMAP_SCAN vector holds


def test_pagemap_scan_past_a_full_vector_reports_each_region_once() -> None:
    """The kernel's walk_end after a full vector can lie behind the regions it returned; a scan that
    resumed there reported them twice, out of order (and _held_within made negative runs of it)."""
    import mmap

    m = mmap.mmap(-1, 2 * SCATTERED * P)
    try:
        for i in range(SCATTERED):
            m[2 * i * P] = 1
        base = int(ffi.cast("uintptr_t", ffi.from_buffer(m)))
        with Pagemap(os.getpid()) as pm:
            regions = pm.scan(base, base + len(m), category_anyof_mask=PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
                              return_mask=PAGE_IS_PRESENT)
        assert [(s - base, e - base) for s, e, _ in regions] == [(2 * i * P, (2 * i + 1) * P)
                                                                  for i in range(SCATTERED)]
    finally:
        m.close()


def test_scattered_writes_past_a_full_scan_vector_reported_exactly(tracker: dirty.Tracker, target: Target) -> None:
    a = target.mmap(2 * SCATTERED)
    target.write(a, 2 * SCATTERED)
    start_tracking(tracker, target)
    for i in range(SCATTERED):
        target.write(a + 2 * i * P, 1, 0x33)
    check(tracker, collect(tracker, target), a, 2 * SCATTERED, copy=pages(a, *range(0, 2 * SCATTERED, 2)))


def test_regions_reported_again_after_a_full_vector_are_merged_without_losing_new_ones() -> None:
    """What a second PAGEMAP_SCAN call reports behind the first one's last region: again what the
    first reported (kept once), or a page written meanwhile in a gap between its regions, which
    that call write-protected (kept: dropping it lost the page for good; the soak test found it)."""
    from incr.engine.pagemap import _in_order

    first_call = [(0, 1, 2), (4, 5, 2), (8, 10, 2)]
    second_call = [(4, 5, 2), (6, 7, 2), (8, 10, 2), (12, 13, 2)]
    assert _in_order(first_call + second_call) == [(0, 1, 2), (4, 5, 2), (6, 7, 2), (8, 10, 2), (12, 13, 2)]
    assert _in_order([(0, 4, 2), (2, 6, 2), (6, 8, 1)]) == [(0, 6, 2), (6, 8, 1)]
