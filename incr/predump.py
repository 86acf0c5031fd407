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

import contextlib
import logging
import mmap
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from incr import __version__, dirty, precopy
from incr.dirty import Tracker, TrackerState
from incr.engine import dump as engine_dump
from incr.engine import freeze, ghost, memory, proc, shm, tree
from incr.engine.errors import EngineError, NotTraceable, ProcessNotFound, ProcessVanished
from incr.engine.memory import PAGE, MemoryCopy, PageRun
from incr.faults import fault_point
from incr.jobstate import Claims, origin, start_time
from incr.pagestore import SnapshotWriter, Store
from incr.pagestore.layout import probe_layout
from incr.pagestore.writer import WriteFailed
from incr.proto import image_pb2, store_pb2
from incr.snapshot import Collector, PageCounts, Parent, Progress, finalize, store_shm, storing_pass

log = logging.getLogger(__name__)

#: The largest deleted file whose contents a checkpoint stores by default (Options.ghost_limit).
DEFAULT_GHOST_LIMIT: int = ghost.DEFAULT_LIMIT

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
    #: When another writer holds the store's lock: wait for it (saying so), or fail at once with
    #: StoreLocked naming its PID (--no-wait).
    wait: bool = True
    #: Told of the pages stored so far against the pass's total (per batch): a progress line.
    progress: Progress | None = None
    #: Signals the checkpoint leaves out, queued or arriving during the freeze (the live job still
    #: gets them): the stop request a final checkpoint answers, which a restore must not bring back.
    #: Named in the snapshot's label LEFT_OUT_LABEL.
    hold_signals: frozenset[int] = frozenset()
    #: The largest deleted file (engine/ghost.py) whose contents a checkpoint stores; a larger one
    #: refuses it (a pre-dump stores none and checks none).
    ghost_limit: int = DEFAULT_GHOST_LIMIT
    #: Pipes and sockets leading out of the job (not stdio) are recorded as external, not refused.
    external: bool = False
    #: TCP connections to peers outside the job are checkpointed (the user says the peers will still
    #: be there at the restore), not refused; with kill=True their ports stay locked until then.
    tcp_established: bool = False


#: Snapshot label: the signals a checkpoint left out (Options.hold_signals), "PID:SIGNO,...".
LEFT_OUT_LABEL = "signals_left_out"
#: Pages pre-copy rounds copied but did not store, the job having written them again already
#: (the freeze took them); absent when none.
REWRITTEN_LABEL = "precopy_rewritten"


@dataclass
class CheckpointResult:
    id: str
    snapshot: store_pb2.Snapshot


def _lineage_parent(store: Store, pid: int) -> str:
    """The parent when the tracker has no base: the newest snapshot of this very process (root PID
    and start time); else the checkpoint it was restored from (a restore of an older checkpoint
    starts a branch there, not after the newest); else the newest snapshot of the same root PID."""
    try:
        started = start_time(pid)
    except EngineError:
        started = -1
    snapshots = store.snapshots()
    same_pid = ""
    for sid, snap in reversed(snapshots):
        tree = image_pb2.TreeImage.FromString(snap.payload)
        if tree.root_pid != pid:
            continue
        if tree.processes and tree.processes[0].start_time == started:
            return sid
        same_pid = same_pid or sid
    restored_from = origin(pid, store.path)
    if restored_from and store.has_snapshot(restored_from):
        return restored_from
    return same_pid


def _labels() -> dict[str, str]:
    return {"hostname": socket.gethostname(), "incr": __version__, "kernel": os.uname().release}


@dataclass
class Member:
    """One process of the job, as the checkpoint sees it: its tracker and what it collected."""

    pid: int
    tracker: Tracker
    collector: Collector
    dirty_pages: list[int] = field(default_factory=list)     # per pre-copy round


class SigintDeferred:
    """Holds Ctrl-C back while the steps inside (a freeze and its thaw, arming or taking out a
    tracker, injected syscalls) run: they must not stop half-way with the job still to be put right.
    ``deliver()`` then acts on one that came meanwhile.  Only the main thread receives signals;
    elsewhere this does nothing."""

    def __init__(self) -> None:
        self.caught = False
        self._previous: signal.Handlers | Callable[[int, FrameType | None], object] | int | None = None

    def _note(self, signum: int, frame: FrameType | None) -> None:
        self.caught = True

    def __enter__(self) -> SigintDeferred:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._note) or signal.SIG_DFL
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def deliver(self) -> None:
        """What Ctrl-C would have done (KeyboardInterrupt, as a rule), if it came."""
        if not self.caught:
            return
        self.caught = False
        if callable(self._previous):
            self._previous(signal.SIGINT, None)
        elif self._previous != signal.SIG_IGN:
            raise KeyboardInterrupt


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """A block Ctrl-C does not interrupt: it takes effect at the block's end (SigintDeferred)."""
    with SigintDeferred() as deferred:
        yield
    deferred.deliver()


def _frozen_copy(pid: int, vmas: list[image_pb2.Vma], runs: list[PageRun], buffer: mmap.mmap,
                 collector: Collector) -> MemoryCopy | None:
    """Copy the final dirty set into the buffer, or store it in buffer-sized batches while frozen
    when it does not fit (then None: the collector has it all)."""
    total = memory.planned_bytes(runs)
    if total <= len(buffer):
        return memory.copy_pages(pid, vmas, runs, buffer)
    log.warning("the final dirty set (%d MiB) exceeds the copy buffer (%d MiB): storing it while the job "
                "is frozen", total >> 20, len(buffer) >> 20)
    with storing_pass(collector.writer, total):
        for batch in memory.batches(runs, len(buffer) // PAGE):
            collector.add_copy(vmas, memory.copy_pages(pid, vmas, batch, buffer))
    return None


def _exited(pid: int, exc: EngineError) -> bool:
    """Whether `exc` only says that process `pid` of a running tree exited (or became a zombie)
    meanwhile: the tree goes on without it."""
    if isinstance(exc, ProcessNotFound | ProcessVanished):
        return True
    return isinstance(exc, NotTraceable) and tree.gone(pid)


def _skip_fds(pid: int) -> set[int]:
    """Descriptors incr left in the process: parked trackers, with or without a state file."""
    state = TrackerState.load(pid)
    parked = {state.uffd_fd} if state and state.uffd_fd >= 0 else set()
    return parked | dirty.stray_fds(pid)


def checkpoint(pid: int, store_path: str | os.PathLike[str], *, kill: bool = False,
               options: Options | None = None, kind: str = "checkpoint") -> CheckpointResult:
    """One checkpoint (or, with kind="predump", one pre-dump round) of process `pid` and every
    process below it: refusals before the job is touched here, the phases in _take."""
    opts = options or Options()
    store_path = Path(store_path)
    freeze.check_traceable(pid)
    if probe_layout(store_path.absolute()):      # a bad store fails before the job is touched
        Store.open(store_path).close()
    live = [p for p in tree.descendants(pid) if p == pid or not tree.is_zombie(p)]
    for p in live[1:]:
        try:
            freeze.check_traceable(p, job=live)
        except EngineError as exc:
            if not _exited(p, exc):
                raise
    with Claims() as claims:
        for p in list(live):
            try:
                with _sigint_deferred():         # a claim sweeps what an interrupted command left in the job
                    claims.claim(p)
            except ProcessNotFound:
                live.remove(p)
        # refused before the job is touched (but for what an interrupted command left in it)
        engine_dump.check_supported(pid, {p: _skip_fds(p) for p in live}, _ghost_limit(opts, kind),
                                    external_ok=opts.external or kind == "predump")    # (a pre-dump records none)
        return _checkpoint_claimed(pid, store_path, live, claims, opts, kill=kill, kind=kind)


def _ghost_limit(opts: Options, kind: str) -> int | None:
    return None if kind == "predump" else opts.ghost_limit


def _checkpoint_claimed(pid: int, store_path: Path, live: list[int], claims: Claims, opts: Options, *,
                        kill: bool, kind: str) -> CheckpointResult:
    members: dict[int, Member] = {}
    t_start = time.perf_counter()
    with Store.open(store_path, create=True) as store, store.writer(wait=opts.wait) as writer:
        try:
            for p in live:
                members[p] = Member(p, dirty.choose(opts.tracker), Collector(writer, opts.progress))
            result = _take(pid, store, writer, members, claims, opts, kill=kill, kind=kind, t_start=t_start)
        except BaseException as exc:
            # The trackers' dirt since their base was consumed and not committed;
            # ones armed by this very command are taken out of the job again.
            with _sigint_deferred():
                for m in members.values():
                    m.tracker.abandon()
            if isinstance(exc, WriteFailed):
                exc.notes.append(f"PID {pid} runs on" + (" (not killed)" if kill else ""))
            raise
    with _sigint_deferred():
        _settle_trackers(members, result.id, kill=kill)
    return result


def _settle_trackers(members: dict[int, Member], committed: str, *, kill: bool) -> None:
    """Each tracker left relative to the snapshot just committed -- or to none (the next pass takes
    every page) when this command consumed dirt it could not copy: a predump round whose VMA
    vanished under the copy (a checkpoint's freeze took such VMAs whole)."""
    for m in members.values():
        if not kill:
            try:
                m.tracker.finish("" if m.collector.must_take_whole else committed)
                continue
            except ProcessNotFound:
                pass                             # it exited since the thaw
        TrackerState.forget(m.pid)               # the process is gone
        m.tracker.close()


def _drop(members: dict[int, Member], pid: int) -> None:
    """Process `pid` exited during the checkpoint: its tracker goes with it."""
    members.pop(pid).tracker.abandon()


def _common_base(store: Store, members: dict[int, Member]) -> str:
    """The snapshot every tracker is relative to; "" (take everything afresh) unless they all agree."""
    bases = {m.tracker.base for m in members.values()}
    base = bases.pop() if len(bases) == 1 else ""
    if base and not store.has_snapshot(base):
        base = ""
    for m in members.values():
        m.tracker.base = base
    return base


def _take(root: int, store: Store, writer: SnapshotWriter, members: dict[int, Member], claims: Claims,
          opts: Options, *, kill: bool, kind: str, t_start: float) -> CheckpointResult:
    """The pipeline of one checkpoint, phase by phase: trackers armed, pre-copy rounds while the
    job runs (_precopy_rounds), then -- a pre-dump stops there and commits what the rounds
    stored -- the freeze, the frozen copy of what is still dirty and the thaw
    (_freeze_until_steady, _freeze_and_copy), ingest of the frozen copy and commit
    (_commit_frozen, _commit)."""
    _arm_trackers(store, members, claims)
    base = _common_base(store, members)
    parent_id = base or _lineage_parent(store, root)
    parent = Parent(store, store.load(parent_id)[1] if parent_id else None)
    can_precopy = all(m.tracker.precopy for m in members.values())
    rounds = rewritten = 0
    if kind == "predump" or (opts.precopy and can_precopy):
        rounds, rewritten = _precopy_rounds(members, 1 if kind == "predump" else opts.max_rounds,
                                            freeze_follows=kind != "predump")
    if kind == "predump":
        image = _predump_image(root, members)
        return _commit(writer, parent, members, image, kind, rounds, 0.0, t_start, parent_id, time.time(),
                       incremental=bool(base))
    done = _freeze_until_steady(root, store, writer, members, claims, opts, kill=kill)
    return _commit_frozen(done, writer, parent, members, kind=kind, kill=kill, rounds=rounds, rewritten=rewritten,
                          t_start=t_start, parent_id=parent_id, incremental=bool(base))


def _arm_trackers(store: Store, members: dict[int, Member], claims: Claims) -> None:
    """Start each member's dirty-page tracker (its journal the member's claim); members that
    exited meanwhile are dropped."""
    for m in list(members.values()):
        try:
            with _sigint_deferred():
                m.tracker.start(m.pid, str(store.path), journal=claims.claim(m.pid))
        except EngineError as exc:
            if not _exited(m.pid, exc):
                raise
            _drop(members, m.pid)


def _precopy_rounds(members: dict[int, Member], limit: int, *, freeze_follows: bool) -> tuple[int, int]:
    """Rounds storing the dirty pages while the job runs, until the dirty set is small or stops
    shrinking (a hot loop: the freeze takes the rest); (rounds, pages written again meanwhile)."""
    rounds = rewritten_total = 0
    totals: list[int] = []
    while rounds < limit:
        found = rewritten = 0
        for m in list(members.values()):
            try:
                n, again = precopy.live_round(m.pid, m.tracker, m.collector, first=rounds == 0,
                                             freeze_follows=freeze_follows)
            except EngineError as exc:
                if not _exited(m.pid, exc):
                    raise
                _drop(members, m.pid)
                continue
            m.dirty_pages.append(n)
            found += n
            rewritten += again
        rounds += 1
        totals.append(found)
        rewritten_total += rewritten
        if rewritten:
            log.info("pre-copy round %d: %d of its %d dirty pages written again before they were stored "
                     "(left to the next pass)", rounds, rewritten, found)
        # Written again already: the next round's dirty set would not shrink (a hot loop).
        if found <= SMALL_DIRTY_PAGES or rewritten > SHRINK_FACTOR * found \
                or (len(totals) > 1 and found > SHRINK_FACTOR * totals[-2]):
            break
    return rounds, rewritten_total


def _predump_image(root: int, members: dict[int, Member]) -> image_pb2.TreeImage:
    """A pre-dump's image: the mappings only (no freeze, nothing else is restorable from it)."""
    processes = [image_pb2.ProcessImage(pid=m.pid, vmas=memory.dump_vmas(m.pid)) for m in members.values()]
    for p in processes:                      # reshaped since the round: this predump is no base
        members[p.pid].collector.must_take_whole.update(members[p.pid].collector.reshaped(list(p.vmas)))
    return image_pb2.TreeImage(version=engine_dump.IMAGE_VERSION, arch=os.uname().machine, root_pid=root,
                               processes=processes, kernel=os.uname().release)


def _freeze_until_steady(root: int, store: Store, writer: SnapshotWriter, members: dict[int, Member],
                         claims: Claims, opts: Options, *, kill: bool) -> FrozenPass:
    """Freeze, copy and thaw; again (up to FREEZE_ATTEMPTS) while a process changed its mappings'
    attributes between the look before the freeze and the freeze."""
    for attempt in range(FREEZE_ATTEMPTS):
        # VmFlags read while the job runs, checked again after the thaw: reading them frozen costs a
        # page walk the job would feel (~10 ms per GiB).  With --kill the job never thaws: read frozen.
        hints = None if kill else _vm_flags(members)
        done = _freeze_and_copy(root, store, writer, members, claims, opts, kill=kill, hints=hints)
        if kill:
            return done
        try:
            _absorb(members, done)
        except BaseException:
            _close_shared(done.shared)
            raise
        changed = _vm_flags_changed(done.image, hints or {})
        if not changed:
            return done
        _close_shared(done.shared)
        if attempt + 1 == FREEZE_ATTEMPTS:
            raise EngineError(f"PID {changed} kept changing the attributes of its memory mappings (madvise, mlock) "
                              "while being checkpointed; nothing was stored: take the checkpoint again")
        log.info("PID %d changed the attributes of its memory mappings during the freeze: freezing again", changed)
    raise AssertionError("unreachable")


def _commit_frozen(done: FrozenPass, writer: SnapshotWriter, parent: Parent, members: dict[int, Member], *,
                   kind: str, kill: bool, rounds: int, rewritten: int, t_start: float, parent_id: str,
                   incremental: bool) -> CheckpointResult:
    """Ingest the frozen copy and commit; with `kill`, the job (still frozen) is then killed, or
    let go if the commit failed."""
    try:
        if kill:
            _absorb(members, done)
        for pid in [pid for pid in members if pid not in done.frozen.frozen]:
            _drop(members, pid)                  # gone before the freeze
        left_out = ",".join(f"{pid}:{signo}" for pid, signos in done.frozen.left_out().items() for signo in signos)
        labels = {LEFT_OUT_LABEL: left_out} if left_out else {}
        if rewritten:
            labels[REWRITTEN_LABEL] = str(rewritten)
        result = _commit(writer, parent, members, done.image, kind, rounds, done.downtime_ms, t_start, parent_id,
                         done.epoch, done.shared, incremental=incremental, labels=labels)
    except BaseException:
        if kill:
            with _sigint_deferred():
                done.frozen.release()             # the checkpoint failed: the job lives on
        raise
    if kill:
        with _sigint_deferred():
            done.frozen.release(kill=True)
    return result


FREEZE_ATTEMPTS = 3


@dataclass
class FrozenPass:
    """One freeze: the image, the pages copied meanwhile (None: already stored), shared memory."""

    frozen: tree.FrozenTree
    image: image_pb2.TreeImage
    copies: dict[int, MemoryCopy | None]
    buffers: list[mmap.mmap]
    shared: dict[str, mmap.mmap]
    downtime_ms: float
    epoch: float


def _freeze_and_copy(root: int, store: Store, writer: SnapshotWriter, members: dict[int, Member], claims: Claims,
                     opts: Options, *, kill: bool, hints: dict[int, proc.VmFlags] | None) -> FrozenPass:
    """Freeze the tree, describe it, collect and copy the last dirty pages, and thaw it (unless
    `kill`: then it stays frozen until the checkpoint is committed)."""
    buffers = {}
    for pid, m in members.items():
        with contextlib.suppress(ProcessNotFound):            # exited: the freeze will not find it
            buffers[pid] = memory.allocate_buffer(min(opts.buffer_bound, _estimate(m) + (16 << 20)))
    try:
        writer.drain()          # the frozen phase gets the CPU to itself, not the pack compressor
    except BaseException:
        for b in buffers.values():
            memory.unmap_buffer(b)
        raise
    with SigintDeferred() as sigint:        # from the freeze to the thaw: a Ctrl-C is taken after the thaw
        t_freeze = time.perf_counter()
        epoch = time.time()
        frozen = tree.freeze_tree(root, hold=opts.hold_signals)
        copies: dict[int, MemoryCopy | None] = {}
        try:
            for pid, fr in frozen.frozen.items():
                fr.journal = claims.claim(pid)        # what the dump's injections may leave is noted
            for pid in frozen.frozen:
                if pid not in members:               # forked since the rounds: everything is new
                    members[pid] = Member(pid, dirty.choose(opts.tracker), Collector(writer, opts.progress))
                    members[pid].tracker.start(pid, str(store.path), frozen=frozen.frozen[pid],
                                               journal=claims.claim(pid))
                    members[pid].tracker.base = ""
            image = engine_dump.describe_tree(frozen, {p: m.tracker.own_fds() | dirty.stray_fds(p)
                                                       for p, m in members.items()}, ends_job=kill, vm_flags=hints,
                                                      ghost_limit=opts.ghost_limit, external_ok=opts.external,
                                                      tcp_established=opts.tcp_established)
            for p in image.processes:
                if p.zombie:
                    continue
                m = members[p.pid]
                vmas = list(p.vmas)
                first = not m.dirty_pages
                dirt = precopy.first_dirt(m.tracker, vmas, frozen.frozen[p.pid]) if first else \
                    m.tracker.collect(vmas, frozen.frozen[p.pid])
                m.dirty_pages.append(0)             # (a freeze again after this one: the tracker is armed)
                m.collector.must_take_whole.update(m.collector.reshaped(vmas))
                for start in m.collector.must_take_whole:
                    dirt[start] = dirty.RegionDirt(full=True)
                m.collector.must_take_whole.clear()
                m.collector.apply_dirt(dirt)
                m.collector.note_ranges(vmas, dirt)
                buffer = buffers.get(p.pid) or memory.allocate_buffer(16 << 20)
                copies[p.pid] = _frozen_copy(p.pid, vmas, dirty.page_runs(p.pid, vmas, dirt), buffer, m.collector)
            shared = _copy_shared(image)
            fault_point("frozen")
        except BaseException:
            frozen.release()
            for b in buffers.values():
                memory.unmap_buffer(b)
            raise
        if not kill:
            frozen.release()
        downtime_ms = (time.perf_counter() - t_freeze) * 1e3
    try:
        sigint.deliver()                 # a Ctrl-C during the frozen phase takes effect now
        fault_point("thawed")
    except BaseException:
        if kill:
            frozen.release()             # frozen for --kill, which will not come now
        for b in buffers.values():
            memory.unmap_buffer(b)
        _close_shared(shared)
        raise
    return FrozenPass(frozen, image, copies, list(buffers.values()), shared, downtime_ms, epoch)


def _absorb(members: dict[int, Member], done: FrozenPass) -> None:
    """The pages a freeze copied into the store (hashed, compressed, with the job running)."""
    try:
        for p in done.image.processes:
            copy = done.copies.get(p.pid)
            if copy is not None:
                collector = members[p.pid].collector
                with storing_pass(collector.writer, copy.bytes_copied):
                    collector.add_copy(list(p.vmas), copy)
    finally:
        for b in done.buffers:
            memory.unmap_buffer(b)


def _vm_flags(members: dict[int, Member]) -> dict[int, proc.VmFlags]:
    out = {}
    for pid in members:
        with contextlib.suppress(ProcessNotFound):            # exited: the freeze will not find it
            out[pid] = proc.vm_flags(pid)
    return out


INCR_OWN_VMFLAGS = frozenset({"uw"})       # userfaultfd registration: incr's tracker, not the job


def _vm_flags_changed(image: image_pb2.TreeImage, before: dict[int, proc.VmFlags]) -> int:
    """A process whose mappings' VmFlags read before the freeze differ from what they read now, for
    a mapping the image has (0: none).  Equal both times, they were so at the freeze."""
    for p in image.processes:
        if p.zombie or p.pid not in before:
            continue
        try:
            now = proc.vm_flags(p.pid)
        except ProcessNotFound:
            continue
        then = before[p.pid]
        for v in p.vmas:
            key = (v.start, v.end)
            if key in then and key in now and then[key] - INCR_OWN_VMFLAGS != now[key] - INCR_OWN_VMFLAGS:
                return p.pid
    return 0


def _close_shared(shared: dict[str, mmap.mmap]) -> None:
    for buf in shared.values():
        memory.unmap_buffer(buf)


def _copy_shared(image: image_pb2.TreeImage) -> dict[str, mmap.mmap]:
    """The contents of every shared memory object of the frozen tree, whole."""
    out = {}
    links = shm.links(image.processes)
    for obj in image.shm:
        size = (obj.size + PAGE - 1) // PAGE * PAGE
        buf = memory.allocate_buffer(size)
        shm.read_object(obj, links[obj.key], memoryview(buf))
        out[obj.key] = buf
    return out


def _estimate(m: Member) -> int:
    """Bytes the final copy of a process may need: twice the last round's, but never more than
    everything it holds (a hot loop's last round found all of it dirty: twice that was a buffer,
    faulted in before the freeze, of twice the job's size)."""
    held = memory.planned_bytes(memory.plan_pages(m.pid, memory.dump_vmas(m.pid)))
    return min(m.dirty_pages[-1] * PAGE * 2, held) if m.dirty_pages else held


def _commit(writer: SnapshotWriter, parent: Parent, members: dict[int, Member], tree: image_pb2.TreeImage,
            kind: str, rounds: int, downtime_ms: float, t_start: float, parent_id: str,
            epoch: float, shared: dict[str, mmap.mmap] | None = None, *, incremental: bool,
            labels: dict[str, str] | None = None) -> CheckpointResult:
    counts = PageCounts()
    refs = []
    for p in tree.processes:
        if p.pid in members:
            refs.extend(finalize(writer, parent, members[p.pid].collector, p.pid, list(p.vmas), counts))
    for obj in tree.shm:
        if shared and obj.key in shared:
            refs.append(store_shm(writer, parent, obj.key, memoryview(shared[obj.key]), counts))
            shared[obj.key].close()
    tracker = next(iter(members.values())).tracker
    snap = store_pb2.Snapshot(parent=parent_id, epoch=epoch, kind=kind,
                              payload=tree.SerializeToString(), page_maps=refs, labels=_labels())
    snap.labels["tracker_reason"] = tracker.reason
    snap.labels["pass"] = "incremental" if incremental else "full"     # relative to a tracker's base, or not
    snap.labels.update(labels or {})
    stats = snap.stats
    stats.pages_total, stats.pages_dirty, stats.pages_zero = counts.total, counts.dirty, counts.zero
    # What the job felt: the freeze, or a tracker's own brief stop if one was longer (arming the
    # tracker on a first checkpoint, a soft-dirty round's read and clear).
    downtime_ms = max([downtime_ms] + [ms for m in members.values() for ms in m.tracker.stops_ms])
    stats.tracker, stats.rounds, stats.downtime_ms = tracker.name, rounds, downtime_ms
    stats.total_ms = (time.perf_counter() - t_start) * 1e3
    memory.flush_written_files(tree.processes)      # their data is the file's, not the store's
    sid = writer.commit(snap)
    log.info("%s %s of PID %d (%d processes): %d pages (%d dirty), %.1f ms frozen, tracker %s (%s), %d rounds",
             kind, sid[:12], tree.root_pid, len(members), counts.total, counts.dirty, downtime_ms, tracker.name,
             tracker.reason, rounds)
    return CheckpointResult(id=sid, snapshot=snap)
