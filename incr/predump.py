"""Taking a checkpoint: freeze, dump, thaw, then store.

Downtime is what the job feels: from the first PTRACE_INTERRUPT to the
detach.  While frozen, pages only go to a memory buffer; hashing,
compression and writes to the store happen after the job runs again.
With ``kill=True`` the job stays frozen until the checkpoint is committed and
is killed only then, so a failed commit never costs the job.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from incr import __version__
from incr.dirty import PresentPages, Tracker
from incr.engine import dump as engine_dump
from incr.engine import freeze
from incr.faults import fault_point
from incr.pagestore import Store
from incr.proto import store_pb2
from incr.snapshot import PageCounts, store_pages

log = logging.getLogger(__name__)


@dataclass
class CheckpointResult:
    id: str
    snapshot: store_pb2.Snapshot


def _parent_of(store: Store, pid: int) -> str:
    """The newest committed checkpoint of the same root PID, if any."""
    from incr.proto import image_pb2

    for sid, snap in reversed(store.snapshots()):
        tree = image_pb2.TreeImage.FromString(snap.payload)
        if tree.root_pid == pid:
            return sid
    return ""


def checkpoint(pid: int, store_path: str | os.PathLike[str], *, kill: bool = False,
               tracker: Tracker | None = None) -> CheckpointResult:
    """One consistent checkpoint of process `pid` into the store at `store_path` (created if missing)."""
    tracker = tracker or PresentPages()
    store_path = Path(store_path)
    if store_path.exists():
        Store.open(store_path).close()           # a bad store fails before the job is touched
    freeze.check_traceable(pid)
    buffer = engine_dump.preallocate(pid, tracker.plan)
    t_start = time.perf_counter()
    epoch = time.time()
    frozen = freeze.freeze(pid)
    try:
        dumped = engine_dump.dump(frozen, tracker.plan, buffer)
        fault_point("frozen")
    except BaseException:
        frozen.release()
        buffer.close()
        raise
    if not kill:
        frozen.release()
    downtime_ms = (time.perf_counter() - t_start) * 1e3
    fault_point("thawed")
    try:
        with Store.open(store_path, create=True) as store, store.writer() as writer:
            counts = PageCounts()
            refs = store_pages(writer, dumped, counts)
            tree = engine_dump.tree_image([dumped])
            snap = store_pb2.Snapshot(
                parent=_parent_of(store, pid), epoch=epoch, kind="checkpoint",
                payload=tree.SerializeToString(), page_maps=refs,
                labels={"hostname": socket.gethostname(), "incr": __version__, "kernel": os.uname().release},
            )
            stats = snap.stats
            stats.pages_total, stats.pages_dirty, stats.pages_zero = counts.total, counts.copied, counts.zero
            stats.tracker, stats.rounds = tracker.name, 0
            stats.downtime_ms = downtime_ms
            stats.total_ms = (time.perf_counter() - t_start) * 1e3
            sid = writer.commit(snap)
    except BaseException:
        if kill:
            frozen.release()                      # the checkpoint failed: the job lives on
        raise
    finally:
        dumped.memory.close()
    if kill:
        frozen.release(kill=True)
    log.info("checkpoint %s of PID %d: %d pages, %.1f ms frozen", sid[:12], pid, counts.total, downtime_ms)
    return CheckpointResult(id=sid, snapshot=snap)
