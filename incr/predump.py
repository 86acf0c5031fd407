"""Taking a checkpoint: pre-copy rounds while the job runs, then a short freeze.

Round k collects the pages written since round k-1 (atomically re-arming the
tracker) and copies them while the job runs; rounds stop when the dirty set
is small, stops shrinking, or after MAX_ROUNDS.  Then the job is frozen: the
last dirty set is collected and copied into a buffer allocated beforehand,
the process state is captured, and the job is thawed.  Hashing, compression
and writes happen while the job runs, except when the final dirty set does
not fit the buffer: the rest is then streamed to the store while frozen (and
the log says so).

Downtime is what the job feels: from the first PTRACE_INTERRUPT to the
detach.  With ``kill=True`` the job stays frozen until the checkpoint is
committed and is killed only then, so a failed commit never costs the job.
"""

from __future__ import annotations

import logging
import mmap
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from incr import __version__, dirty
from incr.dirty import Dirt, Tracker, TrackerState
from incr.engine import dump as engine_dump
from incr.engine import freeze, memory
from incr.engine.memory import PAGE, MemoryCopy, PageRun
from incr.faults import fault_point
from incr.pagestore import SnapshotWriter, Store
from incr.proto import image_pb2, store_pb2
from incr.snapshot import Collector, PageCounts, Parent, finalize

log = logging.getLogger(__name__)

MAX_ROUNDS = 8
SMALL_DIRTY_PAGES = 1024          # 4 MiB: not worth another round
SHRINK_FACTOR = 0.8               # a round must cut the dirty set to this fraction to be worth another


def default_buffer_bound() -> int:
    """Half of the memory available now: the frozen copy must never push the node into swap."""
    with open("/proc/meminfo", encoding="ascii") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024 // 2
    return 1 << 30


@dataclass
class Options:
    tracker: str = "auto"
    precopy: bool = True
    max_rounds: int = MAX_ROUNDS
    buffer_bound: int = field(default_factory=default_buffer_bound)


@dataclass
class CheckpointResult:
    id: str
    snapshot: store_pb2.Snapshot


def _lineage_parent(store: Store, pid: int) -> str:
    """The newest snapshot of the same root PID: the parent when the tracker has no base."""
    for sid, snap in reversed(store.snapshots()):
        if image_pb2.TreeImage.FromString(snap.payload).root_pid == pid:
            return sid
    return ""


def _labels() -> dict[str, str]:
    return {"hostname": socket.gethostname(), "incr": __version__, "kernel": os.uname().release}


def _first_dirt(tracker: Tracker, vmas: list[image_pb2.Vma], frozen: freeze.Frozen | None) -> Dirt:
    """A collect that re-arms the tracker; everything counts as new when it has no base."""
    collected = tracker.collect(vmas, frozen)
    return collected if tracker.base else dirty.full_dirt(vmas)


def _live_round(pid: int, tracker: Tracker, collector: Collector, first: bool) -> int:
    """One pre-copy round on the running job; returns the pages it found dirty."""
    vmas = memory.dump_vmas(pid)
    dirt = _first_dirt(tracker, vmas, None) if first else tracker.collect(vmas, None)
    runs = dirty.page_runs(pid, vmas, dirt)
    try:
        copy = memory.copy_pages(pid, vmas, runs)
    except OSError as exc:
        # The job unmapped something meanwhile: its dirty pages were consumed
        # but not copied, so the freeze takes those VMAs whole.
        log.info("pre-copy round: %s; the final pass takes the round's VMAs whole", exc)
        collector.apply_dirt(dirt)
        for start in dirt:
            collector.must_take_whole.add(start)
        return sum(r.count for r in runs)
    try:
        collector.add(vmas, dirt, copy)
    finally:
        copy.close()
    return sum(r.count for r in runs)


def _frozen_copy(pid: int, vmas: list[image_pb2.Vma], runs: list[PageRun], buffer: mmap.mmap,
                 collector: Collector) -> MemoryCopy | None:
    """Copy the final dirty set into the buffer, or store it in buffer-sized batches while frozen
    when it does not fit (then None: the collector has it all)."""
    total = memory.planned_bytes(runs)
    if total <= len(buffer):
        return memory.copy_pages(pid, vmas, runs, buffer)
    log.warning("the final dirty set (%d MiB) exceeds the copy buffer (%d MiB): storing it while the job "
                "is frozen", total >> 20, len(buffer) >> 20)
    batch: list[PageRun] = []
    offset = 0
    per_batch = len(buffer) // PAGE
    for run in _split(runs, per_batch):
        if run.offset >= 0 and offset + run.count * PAGE > len(buffer):
            collector.add_copy(vmas, memory.copy_pages(pid, vmas, batch, buffer))
            batch, offset = [], 0
        batch.append(PageRun(run.vma, run.first, run.count, offset if run.offset >= 0 else -1))
        offset += run.count * PAGE if run.offset >= 0 else 0
    collector.add_copy(vmas, memory.copy_pages(pid, vmas, batch, buffer))
    return None


def _split(runs: list[PageRun], most: int) -> list[PageRun]:
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


def checkpoint(pid: int, store_path: str | os.PathLike[str], *, kill: bool = False,
               options: Options | None = None, kind: str = "checkpoint") -> CheckpointResult:
    """One checkpoint (or, with kind="predump", one pre-dump round) of process `pid`."""
    opts = options or Options()
    store_path = Path(store_path)
    freeze.check_traceable(pid)
    if store_path.exists():
        Store.open(store_path).close()           # a bad store fails before the job is touched
    state = TrackerState.load(pid)
    parked = {state.uffd_fd} if state and state.uffd_fd >= 0 else set()
    engine_dump.check_supported(pid, parked | dirty.stray_fds(pid))   # refused before the job is touched
    tracker = dirty.choose(opts.tracker)
    t_start = time.perf_counter()
    with Store.open(store_path, create=True) as store, store.writer() as writer:
        try:
            result = _take(pid, store, writer, tracker, opts, kill=kill, kind=kind, t_start=t_start)
        except BaseException:
            # The tracker's dirt since its base was consumed and not committed;
            # one armed by this very command is taken out of the job again.
            TrackerState.forget(pid)
            tracker.abandon()
            raise
    if kill:
        TrackerState.forget(pid)                 # the process is gone
        tracker.close()
    else:
        tracker.finish(result.id)
    return result


def _take(pid: int, store: Store, writer: SnapshotWriter, tracker: Tracker, opts: Options, *, kill: bool,
          kind: str, t_start: float) -> CheckpointResult:
    tracker.start(pid, str(store.path))
    if tracker.base and not store.has_snapshot(tracker.base):
        tracker.base = ""
    parent_id = tracker.base or _lineage_parent(store, pid)
    parent = Parent(store, store.load(parent_id)[1] if parent_id else None)
    collector = Collector(writer)
    rounds = 0
    dirty_pages: list[int] = []
    if kind == "predump" or (opts.precopy and tracker.precopy):
        limit = 1 if kind == "predump" else opts.max_rounds
        while rounds < limit:
            found = _live_round(pid, tracker, collector, first=rounds == 0)
            rounds += 1
            dirty_pages.append(found)
            if found <= SMALL_DIRTY_PAGES or (len(dirty_pages) > 1 and found > SHRINK_FACTOR * dirty_pages[-2]):
                break
    if kind == "predump":
        vmas = memory.dump_vmas(pid)
        tree = image_pb2.TreeImage(version=engine_dump.IMAGE_VERSION, arch=os.uname().machine, root_pid=pid,
                                   processes=[image_pb2.ProcessImage(pid=pid, vmas=vmas)], kernel=os.uname().release)
        return _commit(writer, parent, collector, tree, vmas, kind, tracker, rounds, 0.0, t_start, parent_id,
                       time.time())

    estimate = (dirty_pages[-1] * PAGE * 2 if dirty_pages
                else memory.planned_bytes(memory.plan_pages(pid, memory.dump_vmas(pid))))
    buffer = memory.allocate_buffer(min(opts.buffer_bound, estimate + (16 << 20)))
    writer.drain()          # the frozen phase gets the CPU to itself, not the pack compressor
    t_freeze = time.perf_counter()
    epoch = time.time()
    frozen = freeze.freeze(pid)
    try:
        image = engine_dump.describe_state(frozen, skip_fds=tracker.own_fds())
        vmas = list(image.vmas)
        dirt = _first_dirt(tracker, vmas, frozen) if rounds == 0 else tracker.collect(vmas, frozen)
        for start in collector.must_take_whole:
            dirt[start] = dirty.RegionDirt(full=True)
        collector.apply_dirt(dirt)
        copy = _frozen_copy(pid, vmas, dirty.page_runs(pid, vmas, dirt), buffer, collector)
        fault_point("frozen")
    except BaseException:
        frozen.release()
        buffer.close()
        raise
    if not kill:
        frozen.release()
    downtime_ms = (time.perf_counter() - t_freeze) * 1e3
    fault_point("thawed")
    try:
        if copy is not None:
            collector.add_copy(vmas, copy)
        buffer.close()
        tree = engine_dump.tree_image([image])
        result = _commit(writer, parent, collector, tree, vmas, kind, tracker, rounds, downtime_ms, t_start,
                         parent_id, epoch)
    except BaseException:
        if kill:
            frozen.release()                      # the checkpoint failed: the job lives on
        raise
    if kill:
        frozen.release(kill=True)
    return result


def _commit(writer: SnapshotWriter, parent: Parent, collector: Collector, tree: image_pb2.TreeImage,
            vmas: list[image_pb2.Vma], kind: str, tracker: Tracker, rounds: int, downtime_ms: float,
            t_start: float, parent_id: str, epoch: float) -> CheckpointResult:
    counts = PageCounts()
    pid = tree.root_pid
    refs = finalize(writer, parent, collector, pid, vmas, counts)
    snap = store_pb2.Snapshot(parent=parent_id, epoch=epoch, kind=kind,
                              payload=tree.SerializeToString(), page_maps=refs, labels=_labels())
    snap.labels["tracker_reason"] = tracker.reason
    stats = snap.stats
    stats.pages_total, stats.pages_dirty, stats.pages_zero = counts.total, counts.dirty, counts.zero
    stats.tracker, stats.rounds, stats.downtime_ms = tracker.name, rounds, downtime_ms
    stats.total_ms = (time.perf_counter() - t_start) * 1e3
    sid = writer.commit(snap)
    log.info("%s %s of PID %d: %d pages (%d dirty), %.1f ms frozen, tracker %s (%s), %d rounds", kind, sid[:12],
             pid, counts.total, counts.dirty, downtime_ms, tracker.name, tracker.reason, rounds)
    return CheckpointResult(id=sid, snapshot=snap)
