"""Keeping a store: verify, forget and prune, repair.  The store does the work
(``pagestore.verify``, ``pagestore.gc``); this layer knows what a job is, so it
groups snapshots by the job they are of (its root PID) for the keep rules."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from google.protobuf.message import DecodeError

from incr.pagestore import Store, gc
from incr.pagestore.errors import os_errors
from incr.pagestore.verify import Progress, Report, check
from incr.proto import image_pb2, store_pb2


def open_store(path: str | os.PathLike[str]) -> Store:
    return Store.open(Path(path))


def job_of(snapshot: store_pb2.Snapshot) -> str:
    """The group a snapshot's keep rules apply within: the job, named by its root PID."""
    try:
        return str(image_pb2.TreeImage.FromString(snapshot.payload).root_pid)
    except DecodeError:        # a payload this incr cannot read: a group of its own
        return "?"


def entries(store: Store) -> list[gc.Entry]:
    return [gc.Entry(sid, snap.epoch, snap.kind, job_of(snap)) for sid, snap in store.snapshots()]


def verify(path: str | os.PathLike[str], *, ids: Iterable[str] | None = None, read_data: float = 0.0,
           seed: int | None = None, progress: Progress | None = None) -> Report:
    with open_store(path) as store, os_errors(store.path):
        return check(store, ids=ids, read_data=read_data, seed=seed, progress=progress)


def incomplete(path: str | os.PathLike[str]) -> dict[str, str]:
    """Snapshot id -> what it lacks ("": nothing), for every readable snapshot (`incr list`)."""
    with open_store(path) as store:
        return store.incomplete(store.snapshots())


@dataclass
class ForgetResult:
    plan: gc.Plan
    removed: int = 0
    prune: gc.PruneReport | None = None
    dry_run: bool = False


def forget(path: str | os.PathLike[str], *, policy: gc.Policy | None = None, ids: Iterable[str] = (),
           dry_run: bool = False, prune: bool = False, wait: bool = True,
           progress: Progress | None = None) -> ForgetResult:
    """Remove snapshots by ``policy`` or by id (prefixes allowed), then prune if asked; all
    under one hold of the write lock.  ``dry_run`` changes nothing and says what would go."""
    with open_store(path) as store:
        wanted = [store.resolve(i) for i in ids]
        if dry_run:
            planned = _plan(store, policy, wanted)
            result = ForgetResult(planned, dry_run=True)
            if prune:
                with store.maintenance(wait=wait) as lock:
                    result.prune = gc.prune(store, lock, dry_run=True, progress=progress,
                                            without={e.id for e in planned.remove})
            return result
        with store.maintenance(wait=wait) as lock:
            planned = _plan(store, policy, wanted)     # under the lock: what is there now
            result = ForgetResult(planned)
            result.removed = gc.forget(store, [e.id for e in planned.remove], lock)
            if prune:
                result.prune = gc.prune(store, lock, progress=progress)
        return result


def _plan(store: Store, policy: gc.Policy | None, wanted: list[str]) -> gc.Plan:
    """gc.plan over the readable snapshots; a damaged manifest named by id is removed as well
    (nothing can be known of it, not even whether it is a job's newest checkpoint)."""
    readable = entries(store)
    planned = gc.plan(readable, policy=policy, ids=wanted)
    known = {e.id for e in readable}
    planned.remove += [gc.Entry(i, 0.0, "damaged snapshot", "?") for i in wanted if i not in known]
    return planned


def prune(path: str | os.PathLike[str], *, dry_run: bool = False, wait: bool = True,
          progress: Progress | None = None) -> gc.PruneReport:
    with open_store(path) as store, store.maintenance(wait=wait) as lock:
        return gc.prune(store, lock, dry_run=dry_run, progress=progress)


def repair_index(path: str | os.PathLike[str], *, wait: bool = True) -> int:
    """Rebuild the index from the packs; the number of packs indexed."""
    with open_store(path) as store, store.maintenance(wait=wait):
        return store.rebuild_index()
