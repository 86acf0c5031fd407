"""Retention: forgetting snapshots by policy, and pruning what no snapshot references.

restic's ``forget`` and ``prune`` are the model.  ``forget`` removes
manifests only, atomically: the list of snapshots to remove is made durable
first (``STORE/forgetting``, the commit point: readers leave them out from
then on), then the manifests are unlinked, then the list.  ``prune`` marks
every page and blob the remaining snapshots reference and sweeps the rest:
a pack nothing references is deleted; a pack that is mostly garbage has its
live frames copied (as stored, checked on the way) into new packs before it
is deleted.  Order, each step leaving a store that verifies:

1. new packs are written and sealed (a crash leaves complete packs that
   nothing needs, indexed by the next command, or ``*.tmp`` files);
2. the index is rebuilt from the packs kept and the new ones, in one LMDB
   transaction (before it: the old index, every old pack still there);
3. the old packs are unlinked (a crash leaves some on disk, unindexed:
   the next command indexes them again, the next prune removes them).

Never removed: the newest checkpoint of each group (a job), and a pre-dump
newer than it (the base of a tracker still running in the job).  The store
knows nothing of jobs: the caller says which group each snapshot is of.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import zstandard

from incr.faults import fault_point
from incr.proto import store_pb2

from .digest import DIGEST_SIZE, PAGE_SIZE, ZERO_DIGEST, page_digest
from .errors import CorruptStore, StoreError, os_errors
from .fsutil import fsync_dir, temp_name, write_durable
from .handle import StoreHandle
from .layers import HOLE_DIGEST, region_layers
from .layers import decode as decode_layer
from .layout import is_snapshot_id
from .lock import WriteLock
from .pack import BLOB, PACK_TARGET_SIZE, PAGES, PackBuilder, PackFormatError, SealedPack, decode_frame, pack_path

log = logging.getLogger("incr.pagestore")

#: A pack with at least this fraction of its bytes unreferenced is rewritten by prune.
MAX_UNUSED: Final = 0.5
FORGETTING: Final = "forgetting"
CHECKPOINT: Final = "checkpoint"

#: (what is being done, units done, units in all).
Progress = Callable[[str, int, int], None]


class ForgetRefused(StoreError):
    """{}"""


class PruneRefused(StoreError):
    """cannot prune store {}: {}; nothing was pruned"""


# -- which snapshots to keep ----------------------------------------------------


@dataclass
class Policy:
    """restic's keep rules, applied per group; a snapshot any rule keeps is kept."""

    last: int = 0
    within: float = 0.0           # seconds before the group's newest checkpoint
    hourly: int = 0
    daily: int = 0

    def empty(self) -> bool:
        return not (self.last or self.within or self.hourly or self.daily)


@dataclass(frozen=True)
class Entry:
    id: str
    epoch: float
    kind: str
    group: str


@dataclass
class Plan:
    keep: list[Entry] = field(default_factory=list)
    remove: list[Entry] = field(default_factory=list)
    #: snapshot id -> why it is kept.
    reasons: dict[str, str] = field(default_factory=dict)


def plan(entries: Iterable[Entry], *, policy: Policy | None = None, ids: Iterable[str] = ()) -> Plan:
    """What to keep and remove: by ``policy``, or exactly the snapshots ``ids``.

    Raises ForgetRefused if ``ids`` names a group's newest checkpoint."""
    entries = sorted(entries, key=lambda e: (e.epoch, e.id), reverse=True)        # newest first
    groups: dict[str, list[Entry]] = {}
    for e in entries:
        groups.setdefault(e.group, []).append(e)
    reasons: dict[str, str] = {}
    for members in groups.values():
        _protect(members, reasons)
    explicit = set(ids)
    if explicit:
        for e in entries:
            if e.id in explicit and e.id in reasons:
                raise ForgetRefused(f"checkpoint {e.id[:12]} is {reasons[e.id]}: it is never removed")
        keep_ids = {e.id for e in entries} - explicit
    else:
        assert policy is not None and not policy.empty()
        for members in groups.values():
            _apply(members, policy, reasons)
        keep_ids = set(reasons)
    result = Plan(reasons={k: v for k, v in reasons.items() if k in keep_ids})
    for e in reversed(entries):                   # oldest first
        (result.keep if e.id in keep_ids else result.remove).append(e)
    return result


def _protect(members: list[Entry], reasons: dict[str, str]) -> None:
    checkpoints = [e for e in members if e.kind == CHECKPOINT]
    if not checkpoints:
        for e in members:
            reasons[e.id] = "a pre-dump of a job with no checkpoint yet"
        return
    newest = checkpoints[0]
    reasons[newest.id] = "the newest checkpoint of its job"
    for e in members:
        if e.kind != CHECKPOINT and (e.epoch, e.id) > (newest.epoch, newest.id):
            reasons[e.id] = "a pre-dump newer than its job's newest checkpoint"


def _apply(members: list[Entry], policy: Policy, reasons: dict[str, str]) -> None:
    checkpoints = [e for e in members if e.kind == CHECKPOINT]
    for e in checkpoints[: policy.last]:
        reasons.setdefault(e.id, f"one of the last {policy.last}")
    if policy.within and checkpoints:
        since = checkpoints[0].epoch - policy.within
        for e in checkpoints:
            if e.epoch >= since:
                reasons.setdefault(e.id, "within the time kept")
    for count, bucket, name in ((policy.hourly, "%Y-%m-%d %H", "hourly"), (policy.daily, "%Y-%m-%d", "daily")):
        seen: set[str] = set()
        for e in checkpoints:
            if len(seen) >= count:
                break
            key = time.strftime(bucket, time.localtime(e.epoch))
            if key not in seen:
                seen.add(key)
                reasons.setdefault(e.id, f"{name} ({key})")


# -- forgetting -------------------------------------------------------------------


def pending_forget(root: Path) -> set[str]:
    """Snapshots a forget committed to removing, which may still be on disk after a crash."""
    try:
        text = (root / FORGETTING).read_text("ascii")
    except (FileNotFoundError, UnicodeDecodeError):
        return set()
    return {line for line in text.split() if is_snapshot_id(line)}


def forget(store: StoreHandle, ids: Iterable[str], lock: WriteLock) -> int:
    """Remove the manifests ``ids`` (the write lock held): the list first, then each manifest."""
    assert lock.held
    ids = sorted(set(ids))
    if not ids:
        return 0
    root = store.path
    with os_errors(root):
        tmp = temp_name(store._layout.snapshots, "forgetting")
        write_durable(tmp, "".join(f"{i}\n" for i in ids).encode())
        os.rename(tmp, root / FORGETTING)       # the commit point: readers leave them out from here
        fsync_dir(root)
        fault_point("forget-listed")
        finish_forget(store, lock)
    return len(ids)


def finish_forget(store: StoreHandle, lock: WriteLock) -> None:
    """Unlink what a forget listed (one that crashed, or the current one), then the list."""
    assert lock.held
    root = store.path
    ids = pending_forget(root)
    if not ids and not (root / FORGETTING).exists():
        return
    for snapshot_id in sorted(ids):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(store._layout.snapshot(snapshot_id))
        fault_point("forget-unlinked")
    fsync_dir(store._layout.snapshots)
    os.unlink(root / FORGETTING)
    fsync_dir(root)


# -- pruning ----------------------------------------------------------------------


@dataclass
class PruneReport:
    packs_before: int = 0
    bytes_before: int = 0
    packs_deleted: int = 0
    packs_rewritten: int = 0
    packs_written: int = 0
    bytes_copied: int = 0
    packs_after: int = 0
    bytes_after: int = 0
    unreadable: list[str] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def bytes_freed(self) -> int:
        return self.bytes_before - self.bytes_after


@dataclass
class _PackPlan:
    pack: SealedPack
    live: list[store_pb2.Frame]
    live_bytes: int


def prune(store: StoreHandle, lock: WriteLock, *, dry_run: bool = False, max_unused: float = MAX_UNUSED,
          pack_target: int = PACK_TARGET_SIZE, progress: Progress | None = None,
          without: Iterable[str] = ()) -> PruneReport:
    """Delete what no snapshot references (the write lock held); see the module's docstring.
    ``without``: with ``dry_run``, snapshots to count as removed already (a forget's plan)."""
    assert lock.held
    note = progress or (lambda what, done, total: None)
    report = PruneReport(dry_run=dry_run)
    with os_errors(store.path):
        pages, blobs = _referenced(store, note, set(without))
        packs = list(store._load_packs())
        on_disk = {name for name, _ in _pack_files(store)}
        report.unreadable = sorted(on_disk - {p.name for p in packs})
        report.packs_before = len(on_disk)
        report.bytes_before = sum(pack_path(store._layout.packs, n).stat().st_size for n in on_disk)
        plans = _classify(store, packs, pages, blobs)
        delete = [p for p in plans if not p.live]
        rewrite = [p for p in plans if p.live and (p.pack.size - p.live_bytes) >= max_unused * p.pack.size]
        keep = [p.pack for p in plans if p.live and p not in rewrite]
        if dry_run:
            report.packs_deleted = len(delete)
            report.packs_rewritten = len(rewrite)
            report.bytes_copied = sum(p.live_bytes for p in rewrite)
            report.bytes_after = report.bytes_before - sum(p.pack.size for p in delete + rewrite) + \
                report.bytes_copied
            report.packs_after = report.packs_before - len(delete) - len(rewrite) + (1 if rewrite else 0)
            return report
        written, failed = _rewrite(store, rewrite, pack_target, report, note)
        keep += [p.pack for p in failed]
        if not delete and not (set(id(p) for p in rewrite) - set(id(p) for p in failed)):
            report.packs_after, report.bytes_after = report.packs_before, report.bytes_before
            return report
        fault_point("prune-packs-written")
        # One transaction: the index now names only what stays.
        store._index.rebuild(store.config.store_id, lambda: [*keep, *written], only_if_incomplete=False)
        store._forget_read_caches()
        fault_point("prune-indexed")
        # A pack rewritten may come out byte for byte as one already there (a killed prune's):
        # never delete what was just written.
        new_names = {p.name for p in written}
        gone = [p.pack.name for p in delete + [r for r in rewrite if r not in failed] if p.pack.name not in new_names]
        for i, name in enumerate(gone):
            path = pack_path(store._layout.packs, name)
            path.unlink(missing_ok=True)
            fault_point("prune-deleted")
            note("deleting packs", i + 1, len(gone))
        for sub in sorted({name[:2] for name in gone}):
            fsync_dir(store._layout.packs / sub)
        report.packs_deleted = len(delete)
        report.packs_rewritten = len(rewrite) - len(failed)
        report.packs_written = len(written)
        remaining = {name for name, _ in _pack_files(store)}
        report.packs_after = len(remaining)
        report.bytes_after = sum(pack_path(store._layout.packs, n).stat().st_size for n in remaining)
    return report


def _pack_files(store: StoreHandle) -> Iterator[tuple[str, Path]]:
    from .pack import iter_pack_files

    return iter_pack_files(store._layout.packs)


def _referenced(store: StoreHandle, note: Progress, without: set[str]) -> tuple[set[bytes], set[bytes]]:
    """Every page and page-map blob some committed snapshot needs.  A manifest or a page map
    that cannot be read stops the prune: what it references cannot be known."""
    pages: set[bytes] = set()
    blobs: set[bytes] = set()
    ids = [i for i in store._snapshot_ids() if i not in without]
    for n, snapshot_id in enumerate(ids):
        try:
            snapshot = store._read_manifest(snapshot_id)
        except FileNotFoundError:
            continue
        except CorruptStore as e:
            raise PruneRefused(store.path, f"{_reason(e)}, so what it needs cannot be known (`incr verify` "
                                           f"tells more; `incr forget {snapshot_id[:12]}` removes it)") from None
        for ref in snapshot.page_maps:
            for layer in region_layers(ref):
                key = bytes.fromhex(layer.blob)
                if key in blobs:
                    continue
                blobs.add(key)
                try:
                    held = decode_layer(store.read_blob(layer.blob))
                except CorruptStore as e:
                    raise PruneRefused(store.path, f"checkpoint {snapshot_id[:12]}: {_reason(e)}, so what it "
                                                   "needs cannot be known (`incr verify` tells more)") from None
                pages.update(held.values())
        note("marking what checkpoints use", n + 1, len(ids))
    pages.discard(ZERO_DIGEST)
    pages.discard(HOLE_DIGEST)
    return pages, blobs


def _reason(e: CorruptStore) -> str:
    return str(e.args[1]) if len(e.args) > 1 else str(e)


def _classify(store: StoreHandle, packs: list[SealedPack], pages: set[bytes], blobs: set[bytes]) -> list[_PackPlan]:
    """Each pack's live frames: those holding a referenced page or blob at the place the index
    names (a duplicate elsewhere is garbage), and the dictionaries live page frames need."""
    homes: set[tuple[bytes, int]] = set()
    with store._index.view() as lookup:
        for keys, get in ((pages, lookup.get_page), (blobs, lookup.get_blob)):
            for key in keys:
                value = get(key)
                if value is not None:
                    homes.add((bytes(value[:32]), int.from_bytes(value[32:40], "little")))
    plans = []
    for pack in packs:
        name = bytes.fromhex(pack.name)
        trailer = pack.trailer
        live = [f for f in trailer.frames if (name, f.offset) in homes]
        needed = {trailer.dicts[f.dict - 1] for f in live if f.kind == PAGES and f.dict}
        if needed:
            at = {f.offset for f in live}
            live += [f for f in trailer.frames if f.kind == BLOB and f.digests in needed and f.offset not in at]
            live.sort(key=lambda f: f.offset)
        plans.append(_PackPlan(pack, live, sum(f.length for f in live)))
    return plans


def _rewrite(store: StoreHandle, rewrite: list[_PackPlan], pack_target: int, report: PruneReport,
             note: Progress) -> tuple[list[SealedPack], list[_PackPlan]]:
    """Copy the live frames of ``rewrite`` into new packs, as stored; a pack whose live frames
    do not all check out is left as it is (returned in the second list)."""
    written: list[SealedPack] = []
    failed: list[_PackPlan] = []
    builder: _Copier | None = None
    total = sum(p.live_bytes for p in rewrite)
    done = 0
    try:
        for plan_ in rewrite:
            frames = _checked_frames(store, plan_)
            if frames is None:
                failed.append(plan_)
                report.damaged.append(plan_.pack.name)
                continue
            for frame, stored in frames:
                if builder is None:
                    builder = _Copier(store._layout.packs)
                builder.copy(plan_.pack, frame, stored)
                if builder.size >= pack_target:
                    written.append(builder.seal())
                    builder = None
                    fault_point("prune-pack-sealed")
            done += plan_.live_bytes
            report.bytes_copied += plan_.live_bytes
            note("rewriting packs", done, total)
        if builder is not None:
            written.append(builder.seal())
            builder = None
            fault_point("prune-pack-sealed")
    finally:
        if builder is not None:
            builder.discard()
    return written, failed


def _checked_frames(store: StoreHandle, plan_: _PackPlan) -> list[tuple[store_pb2.Frame, bytes]] | None:
    """The live frames of a pack as stored, each checked (decoded, digests matched)."""
    path = pack_path(store._layout.packs, plan_.pack.name)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    trailer = plan_.pack.trailer
    plain = zstandard.ZstdDecompressor()
    dictionaries: dict[bytes, zstandard.ZstdDecompressor] = {}
    out = []
    for frame in plan_.live:
        stored = data[frame.offset : frame.offset + frame.length]
        decompressor = plain
        if frame.kind == PAGES and frame.dict:
            found = dictionaries.get(trailer.dicts[frame.dict - 1])
            if found is None:
                return None
            decompressor = found
        try:
            raw = decode_frame(frame.codec, stored, frame.raw_length, decompressor)
        except PackFormatError:
            return None
        if frame.kind == BLOB:
            if page_digest(raw) != frame.digests:
                return None
            if frame.digests in trailer.dicts:
                try:
                    dictionaries[frame.digests] = zstandard.ZstdDecompressor(
                        dict_data=zstandard.ZstdCompressionDict(bytes(raw)))
                except zstandard.ZstdError:
                    return None
        else:
            view = memoryview(raw)
            for slot in range(len(frame.digests) // DIGEST_SIZE):
                want = frame.digests[slot * DIGEST_SIZE : (slot + 1) * DIGEST_SIZE]
                if page_digest(view[slot * PAGE_SIZE : (slot + 1) * PAGE_SIZE]) != want:
                    return None
        out.append((frame, stored))
    return out


class _Copier:
    """A new pack receiving frames copied as stored, with the dictionaries they name."""

    def __init__(self, packs_dir: Path) -> None:
        self._builder = PackBuilder(packs_dir)
        self._dicts: dict[bytes, int] = {}       # dictionary blob id -> its index in the new pack

    @property
    def size(self) -> int:
        return self._builder.size

    def copy(self, source: SealedPack, frame: store_pb2.Frame, stored: bytes) -> None:
        dictionary = 0
        if frame.kind == BLOB and frame.digests in source.trailer.dicts:
            if frame.digests not in self._dicts:
                self._dicts[frame.digests] = self._builder.add_stored_dict(frame.codec, frame.level, stored,
                                                                           frame.raw_length, frame.digests)
            return
        if frame.kind == PAGES and frame.dict:
            dictionary = self._dicts[source.trailer.dicts[frame.dict - 1]]
        self._builder.add_frames(frame.kind, [(frame.codec, frame.level, stored, frame.raw_length, dictionary)],
                                 frame.digests)

    def seal(self) -> SealedPack:
        return self._builder.seal()

    def discard(self) -> None:
        self._builder.discard()
