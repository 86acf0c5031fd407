"""Between the engine and the page store: the pages a checkpoint copied
become layered page maps, and page maps become the pages a restore writes.

A region of a snapshot is one VMA of one process, named "PID:START" (hex);
its map (a stack of layers, incr.pagestore.layers) says which page of the
VMA holds which content.  The store sees only regions, digests and blobs;
the engine sees only (address, bytes) runs.
"""

from __future__ import annotations

import bisect
import collections
import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from incr.dirty import Dirt, Rewritten, RewrittenLook
from incr.engine.memory import PAGE, MemoryCopy, batches
from incr.pagestore import (
    DIGEST_SIZE,
    HOLE_DIGEST,
    ZERO_DIGEST,
    Layer,
    PageDict,
    SnapshotWriter,
    Store,
)
from incr.pagestore import layers as pagelayers
from incr.pagestore.writer import WriteFailed
from incr.proto import image_pb2, store_pb2

# Pages read from the store per write into the restored process: bounds
# restore's memory use (READ_AHEAD + 1 batches: 96 MiB) while keeping
# process_vm_writev calls large.
RESTORE_BATCH_PAGES = 8192
#: Batches read ahead of the one being written, each on a thread of its own: one thread's
#: Python (index lookups, digests of raw pages) overlaps the other's decoding in C.
READ_AHEAD = 2

#: (what is being done, units done, units in all): a progress line's callback (incr.cli.progress).
Progress = Callable[[str, int, int], None]

# Pages hashed and stored between two progress reports of a checkpoint: 8 MiB, ~25 ms of
# hashing and compression here, so a report costs nothing next to the work it reports on.
PROGRESS_BATCH_PAGES = 2048

STORING: str = "storing pages"
RESTORING: str = "restoring pages"


@contextlib.contextmanager
def storing_pass(writer: SnapshotWriter, planned: int) -> Iterator[None]:
    """A store failure while storing a pass of `planned` bytes of pages notes how much of it was left
    (the size the message gives is the checkpoint's, not only what was written)."""
    before = writer.pages_added
    try:
        yield
    except WriteFailed as exc:
        exc.still_to_store += max(0, planned - (writer.pages_added - before) * PAGE)
        raise


def region_name(pid: int, vma: image_pb2.Vma) -> str:
    return f"{pid}:{vma.start:x}"


@dataclass
class RegionView:
    """What one checkpoint learned of a VMA (by start address) over its passes."""

    complete: bool = False          # entries list every page the region holds
    entries: PageDict = field(default_factory=dict)   # page -> digest; HOLE_DIGEST: no longer held
    present: list[tuple[int, int]] | None = None  # runs of pages held at the last pass, if known
    end: int = 0                    # the VMA's end when its pass was collected (0: not noted)


@dataclass
class PageCounts:
    total: int = 0       # pages the checkpoint holds
    dirty: int = 0       # distinct pages the tracker reported changed (all held pages for a full pass)
    copied: int = 0      # pages copied, over every pass
    zero: int = 0        # held pages that are zero


def _store_runs(writer: SnapshotWriter, buffer: memoryview | None,
                runs: list[tuple[RegionView, int, int, int]]) -> int:
    """Store, in one call, the runs (view, first page, count, page in `buffer`) of one copy
    buffer, and enter their digests in the views that name them; return how many pages."""
    if not runs:
        return 0
    assert buffer is not None
    digests = writer.add_pages(buffer, [(at, count) for _, _, count, at in runs])
    d = 0
    for view, first, count, _ in runs:
        entries = view.entries
        for page in range(first, first + count):
            entries[page] = digests[d:d + DIGEST_SIZE]
            d += DIGEST_SIZE
    return d // DIGEST_SIZE


class Collector:
    """Accumulates a checkpoint's passes (pre-copy rounds, then the freeze) into region views."""

    def __init__(self, writer: SnapshotWriter, progress: Progress | None = None) -> None:
        self.writer = writer
        self.progress = progress
        self.views: dict[int, RegionView] = {}
        self.copied = 0
        self.must_take_whole: set[int] = set()     # VMAs a failed pass left unknown

    def apply_dirt(self, dirt: Dirt) -> None:
        for start, d in dirt.items():
            view = self.views.setdefault(start, RegionView())
            if d.full:
                view.complete, view.entries, view.present = True, {}, None
            for first, count in d.holes:
                for page in range(first, first + count):
                    if view.complete:
                        view.entries.pop(page, None)
                    else:
                        view.entries[page] = HOLE_DIGEST
            if d.present is not None:
                view.present = sorted(d.present)

    def add_copy(self, vmas: list[image_pb2.Vma], copy: MemoryCopy, rewritten: Rewritten | None = None) -> int:
        """Hash, deduplicate and store copied pages (with the job running, unless streaming), about
        PROGRESS_BATCH_PAGES at a time however the runs fall (a pass of scattered dirty pages is
        runs of a page or two: one store call each cost more than their pages); the progress
        callback hears of each batch.  With `rewritten` (a pre-copy round's copy, the job
        running): the pages of a batch the job has written again since the round's collect are
        left out, stale before they are stored; the tracker reports them to the next pass, which
        takes them.  Returns how many were left out."""
        planned = sum(run.count for run in copy.runs if run.offset >= 0)
        buffer = memoryview(copy.buffer) if copy.buffer is not None else None
        done = left_out = 0
        for group in batches(copy.runs, PROGRESS_BATCH_PAGES, from_zero=False):
            # Asked just before the group is stored: what the job rewrote while earlier ones were.
            look = RewrittenLook(group, vmas, rewritten) if rewritten is not None else None
            kept: list[tuple[RegionView, int, int, int]] = []
            for run in group:
                view = self.views.setdefault(vmas[run.vma].start, RegionView())
                if run.offset < 0:
                    for i in range(run.count):
                        view.entries[run.first + i] = ZERO_DIGEST
                    continue
                keep = [(run.first, run.count)] if look is None else look.unwritten(run.vma, run.first, run.count)
                kept += [(view, page, n, run.offset // PAGE + page - run.first) for page, n in keep]
                left_out += run.count - sum(n for _, n in keep)
                done += run.count
            self.copied += _store_runs(self.writer, buffer, kept)
            if self.progress is not None and planned:
                self.progress(STORING, done, planned)
        return left_out

    def note_ranges(self, vmas: list[image_pb2.Vma], dirt: Dirt) -> None:
        """The extent of each VMA a pass collected: a VMA found later at the same start with another
        end (merged with a neighbour, grown, cut) is not the one the view describes."""
        for vma in vmas:
            if vma.start in dirt:
                self.views.setdefault(vma.start, RegionView()).end = vma.end

    def reshaped(self, vmas: list[image_pb2.Vma]) -> set[int]:
        """Starts of the VMAs whose extent differs from the one their view was collected for:
        their pages may sit in other views, or in none (a merge of two, one already armed: what
        the tracker says of the whole is not what the views hold)."""
        return {v.start for v in vmas if (view := self.views.get(v.start)) is not None and view.end
                and view.end != v.end}

    def forget(self, start: int) -> None:
        """A pass failed for this VMA: the final pass takes it whole."""
        self.views.pop(start, None)


class Parent:
    """The snapshot a new one is relative to: its regions, ranges and merged maps (loaded lazily)."""

    def __init__(self, store: Store, snapshot: store_pb2.Snapshot | None) -> None:
        self.store = store
        self.refs = {ref.region: ref for ref in snapshot.page_maps} if snapshot else {}
        self.ranges: dict[str, tuple[int, int, int]] = {}          # region -> (pid, start, end)
        # Per process, its regions that hold pages in address order (a process's VMAs never
        # overlap): pages_in() finds those under a range by bisection, not by a walk of all.
        self._by_pid: dict[int, tuple[list[int], list[tuple[int, str]]]] = {}    # pid -> (ends, (start, region))
        if snapshot:
            tree = image_pb2.TreeImage.FromString(snapshot.payload)
            for p in tree.processes:
                held = []
                for v in p.vmas:
                    self.ranges[region_name(p.pid, v)] = (p.pid, v.start, v.end)
                    if region_name(p.pid, v) in self.refs:
                        held.append((v.start, v.end, region_name(p.pid, v)))
                held.sort()
                self._by_pid[p.pid] = ([end for _, end, _ in held], [(start, region) for start, _, region in held])
        self._pages: dict[str, PageDict] = {}

    def layers(self, region: str) -> list[Layer]:
        ref = self.refs.get(region)
        return pagelayers.region_layers(ref) if ref else []

    def pages(self, region: str) -> PageDict:
        if region not in self._pages:
            self._pages[region] = pagelayers.read_region(self.layers(region), self.store.read_blob)
        return self._pages[region]

    def pages_in(self, pid: int, start: int, end: int) -> PageDict:
        """What the parent held at [start, end) of process pid, whatever its regions were then."""
        out: PageDict = {}
        ends, regions = self._by_pid.get(pid, ([], []))
        for rstart, region in regions[bisect.bisect_right(ends, start):]:
            if rstart >= end:
                break
            shift = (rstart - start) // PAGE
            limit = (end - start) // PAGE
            for page, digest in self.pages(region).items():
                at = page + shift
                if 0 <= at < limit:
                    out[at] = digest
        return out


def restrict(pages: PageDict, runs: list[tuple[int, int]]) -> PageDict:
    """The entries of `pages` inside the sorted (first, count) runs."""
    out: PageDict = {}
    keys = sorted(pages)
    i = 0
    for first, count in runs:
        while i < len(keys) and keys[i] < first:
            i += 1
        while i < len(keys) and keys[i] < first + count:
            out[keys[i]] = pages[keys[i]]
            i += 1
    return out


def diff(old: PageDict, new: PageDict) -> PageDict:
    """The layer that turns `old` into `new`."""
    delta = {p: d for p, d in new.items() if old.get(p) != d}
    delta.update({p: HOLE_DIGEST for p in old if p not in new})
    return delta


def finalize(writer: SnapshotWriter, parent: Parent, collector: Collector, pid: int,
             vmas: list[image_pb2.Vma], counts: PageCounts) -> list[store_pb2.PageMapRef]:
    """One PageMapRef per VMA holding pages: parent's layers plus what changed, consolidated."""
    refs = []
    for vma in vmas:
        if vma.kind not in (image_pb2.Vma.ANON, image_pb2.Vma.FILE_PRIVATE):
            continue
        region = region_name(pid, vma)
        view = collector.views.get(vma.start)
        npages = (vma.end - vma.start) // PAGE
        same_range = parent.ranges.get(region) == (pid, vma.start, vma.end)
        if view is None and same_range and region in parent.refs:
            refs.append(parent.refs[region])             # untouched: the parent's layers as they are
            counts.total += parent.refs[region].pages
            continue
        view = view or RegionView()
        if view.complete:
            held = dict(view.entries)
            counts.dirty += len(held)
        else:
            held = parent.pages_in(pid, vma.start, vma.end)
            counts.dirty += len(view.entries)
            for page, digest in view.entries.items():
                if digest == HOLE_DIGEST:
                    held.pop(page, None)
                else:
                    held[page] = digest
            if view.present is not None:
                held = restrict(held, view.present)
        held = {p: d for p, d in held.items() if p < npages}
        base = parent.layers(region)
        if base:
            stack = pagelayers.push(base, diff(parent.pages(region), held), parent.store.read_blob,
                                    writer.add_blob)
        else:
            stack = pagelayers.push([], held, parent.store.read_blob, writer.add_blob)
        if not stack:
            continue
        counts.total += len(held)
        counts.zero += sum(1 for d in held.values() if d == ZERO_DIGEST)
        refs.append(store_pb2.PageMapRef(region=region, pages=len(held), layers=[layer.blob for layer in stack],
                                         layer_entries=[layer.entries for layer in stack]))
    return refs


def store_shm(writer: SnapshotWriter, parent: Parent, key: str, content: memoryview,
              counts: PageCounts) -> store_pb2.PageMapRef:
    """A shared memory object's pages (all of them: no tracker follows every mapper yet)."""
    region = f"shm:{key}"
    digests = writer.add_pages(content)
    held = {i: digests[i * DIGEST_SIZE:(i + 1) * DIGEST_SIZE] for i in range(len(digests) // DIGEST_SIZE)}
    held = {i: d for i, d in held.items() if d != ZERO_DIGEST}
    base = parent.layers(region)
    delta = diff(parent.pages(region), held) if base else held
    stack = pagelayers.push(base, delta, parent.store.read_blob, writer.add_blob)
    counts.total += len(held)
    counts.dirty += len(delta)
    return store_pb2.PageMapRef(region=region, pages=len(held), layers=[layer.blob for layer in stack],
                                layer_entries=[layer.entries for layer in stack])


class PageTally:
    """The pages a restore has written so far against all the checkpoint holds, told to a progress
    callback once per batch (RESTORE_BATCH_PAGES), shared by the StorePages of every process."""

    def __init__(self, snapshot: store_pb2.Snapshot, progress: Progress) -> None:
        self.total = sum(ref.pages for ref in snapshot.page_maps)
        self.done = 0
        self.progress = progress

    def advance(self, pages: int) -> None:
        self.done += pages
        self.progress(RESTORING, min(self.done, self.total), self.total)


class StorePages:
    """engine.memory.PageSource over one snapshot of a store."""

    def __init__(self, store: Store, snapshot: store_pb2.Snapshot, pid: int, tally: PageTally | None = None) -> None:
        self.store = store
        self.pid = pid
        self.maps = {ref.region: ref for ref in snapshot.page_maps}
        self._buffers: list[bytearray] | None = None      # made on first use
        self.tally = tally

    def shm_pages(self, key: str) -> Iterator[tuple[int, memoryview]]:
        """(byte offset, contents) runs of shared memory object `key`; pages not listed are zero.
        Every run is read in the same batches (an MPI job's segments hold thousands of short runs,
        and a read pipeline per run cost a thread start each)."""
        ref = self.maps.get(f"shm:{key}")
        if ref is None:
            return
        held = pagelayers.read_region(pagelayers.region_layers(ref), self.store.read_blob)
        runs = list(pagelayers.runs_of(held))
        digests = b"".join(held[p] for first, count in runs for p in range(first, first + count))
        run, run_at = 0, 0              # the run the next page lies in; its first page's index among all
        for start, view in self._batches(digests):
            end = start + len(view) // PAGE
            at = start
            while at < end:
                first, count = runs[run]
                upto = min(end, run_at + count)
                yield (first + at - run_at) * PAGE, view[(at - start) * PAGE:(upto - start) * PAGE]
                self._advance(upto - at)
                at = upto
                if upto == run_at + count:
                    run, run_at = run + 1, run_at + count

    def fill(self, vmas: list[image_pb2.Vma]) -> Iterator[tuple[list[tuple[int, int]], memoryview]]:
        """engine.memory.PageSource.fill: in address order, batch by batch, each batch read
        from the store in storage order (every page is its own frame since store version 3)."""
        addrs: list[int] = []
        digests: list[bytes] = []
        skipped = 0                 # held pages not written (zero in fresh memory): done at once
        for vma in vmas:
            ref = self.maps.get(region_name(self.pid, vma))
            if ref is None:
                continue
            before = len(addrs)
            held = pagelayers.read_region(pagelayers.region_layers(ref), self.store.read_blob)
            # Fresh anonymous memory is already zero; a copied-on-write file page
            # that became zero must still be written over the file's data.
            skip_zero = vma.kind == image_pb2.Vma.ANON
            npages = (vma.end - vma.start) // PAGE
            for page, digest in held.items():
                if page < npages and not (skip_zero and digest == ZERO_DIGEST):
                    addrs.append(vma.start + page * PAGE)
                    digests.append(digest)
            skipped += len(held) - (len(addrs) - before)
        # Address order keeps each write into the process a few long ranges: in storage
        # order, the pages of a late checkpoint came from all over its 30 predecessors,
        # a range each.
        self._advance(skipped)
        for start, view in self._batches(b"".join(digests)):
            yield _ranges(addrs[start : start + len(view) // PAGE]), view
            self._advance(len(view) // PAGE)

    def _advance(self, pages: int) -> None:
        if self.tally is not None and pages:
            self.tally.advance(pages)

    def _batches(self, digests: bytes) -> Iterator[tuple[int, memoryview]]:
        """The pages of `digests`, RESTORE_BATCH_PAGES at a time: (index of the batch's first
        page, its contents).  The next READ_AHEAD batches are read from the store meanwhile, on
        threads of their own (lookups in Python, decoding in C with the GIL released) while the
        caller writes this one into the process; a batch's buffer is filled again only once the
        caller has asked for the batch after it."""
        count = len(digests) // DIGEST_SIZE
        if self._buffers is None:       # made when pages are read: the reader of a job without shared memory needs none
            self._buffers = [bytearray(RESTORE_BATCH_PAGES * PAGE) for _ in range(READ_AHEAD + 1)]
        buffers = self._buffers
        batches = iter(enumerate(range(0, count, RESTORE_BATCH_PAGES)))
        with ThreadPoolExecutor(max_workers=READ_AHEAD, thread_name_prefix="incr-read") as reader:
            pending: collections.deque[tuple[int, memoryview, Future[None]]] = collections.deque()

            def read_next() -> None:
                nxt = next(batches, None)
                if nxt is None:
                    return
                k, start = nxt
                n = min(RESTORE_BATCH_PAGES, count - start)
                view = memoryview(buffers[k % len(buffers)])[: n * PAGE]
                batch = digests[start * DIGEST_SIZE : (start + n) * DIGEST_SIZE]
                pending.append((start, view, reader.submit(self.store.read_pages_into, batch, view, once=True)))

            for _ in range(READ_AHEAD):
                read_next()
            while pending:
                start, view, reading = pending.popleft()
                read_next()        # into the buffer of the batch before this one: written by now
                reading.result()
                yield start, view


def _ranges(addrs: list[int]) -> list[tuple[int, int]]:
    """Page addresses, in order, as (address, length) ranges: consecutive pages merged."""
    out: list[tuple[int, int]] = []
    for addr in addrs:
        if out and out[-1][0] + out[-1][1] == addr:
            out[-1] = (out[-1][0], out[-1][1] + PAGE)
        else:
            out.append((addr, PAGE))
    return out
