"""A pre-copy round: the pages written since the last collect, copied and stored while the job runs.

The round collects the dirty set (re-arming the tracker), then copies and stores it a batch at a
time through one small buffer.  Before each batch is copied, and again before each part of it is
stored, the tracker is asked (changing nothing) which of its pages the job has written since the
collect: those are stale already, the next pass (another round or the freeze) is told of them by
the tracker and takes them, so the round leaves them out.  A job that rewrites everything (a hot
loop) thus costs one copy of its pages, not one per round, and the round count says so: the
caller stops the rounds when most of a round was written again.
"""

from __future__ import annotations

import contextlib
import logging

from incr import dirty
from incr.dirty import Dirt, Rewritten, Runs, Tracker
from incr.engine import freeze, memory
from incr.engine.memory import PAGE, PageRun
from incr.proto import image_pb2
from incr.snapshot import Collector, storing_pass

log = logging.getLogger(__name__)

#: Pages a round copies and stores at a time (16 MiB): its buffer, all the memory a round holds.
ROUND_BATCH_PAGES = 4096


def first_dirt(tracker: Tracker, vmas: list[image_pb2.Vma], frozen: freeze.Frozen | None) -> Dirt:
    """A collect that re-arms the tracker; everything counts as new when it has no base."""
    collected = tracker.collect(vmas, frozen)
    return collected if tracker.base else dirty.full_dirt(vmas)


def live_round(pid: int, tracker: Tracker, collector: Collector, *, first: bool,
               freeze_follows: bool) -> tuple[int, int]:
    """One round on running process `pid`: the pages it found dirty, and how many of them it left
    out as written again before they were stored (only when a freeze follows, to take them)."""
    vmas = memory.dump_vmas(pid)
    dirt = first_dirt(tracker, vmas, None) if first else tracker.collect(vmas, None)
    collector.must_take_whole.update(collector.reshaped(vmas))
    collector.note_ranges(vmas, dirt)
    runs = dirty.page_runs(pid, vmas, dirt)
    found = sum(r.count for r in runs)
    planned = memory.planned_bytes(runs)
    collector.apply_dirt(dirt)
    left_out = 0
    buffer = memory.allocate_buffer(min(planned, ROUND_BATCH_PAGES * PAGE))
    try:
        with storing_pass(collector.writer, planned), \
                (tracker.rewrites() if freeze_follows else contextlib.nullcontext()) as look:
            rewritten = _tolerant(look)
            for batch in memory.batches(runs, ROUND_BATCH_PAGES):
                if rewritten is not None:
                    batch, skipped = _still_clean(batch, vmas, rewritten)
                    left_out += skipped
                try:
                    copy = memory.copy_pages(pid, vmas, batch, buffer)
                except OSError as exc:
                    # The job unmapped or moved something meanwhile: the round's dirt is consumed,
                    # and what was read of it may belong to mappings since replaced (a copy VMA by
                    # VMA can succeed on a VMA moved away and back).  The freeze takes the round's
                    # VMAs whole, over what earlier batches stored; a predump, which has no
                    # freeze, leaves the tracker with no base (predump._settle_trackers).
                    log.info("pre-copy round of PID %d: %s; the round's VMAs are taken whole", pid, exc)
                    collector.must_take_whole.update(dirt)
                    return found, left_out
                left_out += collector.add_copy(vmas, copy, rewritten)
    finally:
        memory.unmap_buffer(buffer)
    return found, left_out


def _still_clean(batch: list[PageRun], vmas: list[image_pb2.Vma], rewritten: Rewritten) -> tuple[list[PageRun], int]:
    """The batch without the pages written since the collect (offsets packed again), and how many
    it left out."""
    look = dirty.RewrittenLook(batch, vmas, rewritten)
    out: list[PageRun] = []
    offset = left_out = 0
    for run in batch:
        if run.offset < 0:
            out.append(run)
            continue
        for first, count in look.unwritten(run.vma, run.first, run.count):
            out.append(PageRun(run.vma, first, count, offset))
            offset += count * PAGE
        left_out += run.count
    left_out -= offset // PAGE
    return out, left_out


def _tolerant(rewritten: Rewritten | None) -> Rewritten | None:
    """A look at rewritten pages that fails (the job unmapped the range meanwhile) says none were:
    they are stored, as without the look, and a later pass overrides them if they changed."""
    if rewritten is None:
        return None
    look = rewritten

    def tolerant(vma: image_pb2.Vma, first: int, count: int) -> Runs:
        try:
            return look(vma, first, count)
        except OSError:
            return []
    return tolerant
