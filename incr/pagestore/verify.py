"""Checking a store: what each checkpoint needs is there, intact, and where the index says.

The packs are the truth: their trailers say which pages and blobs each holds,
and, read in full (``read_data``), whether each frame still decodes to what
its digest says.  Against that truth every manifest is checked (it matches
its id, decodes, and every layer of every page map resolves to pages some
healthy pack holds), and so is the index (a cache: an entry pointing at a
pack that is gone or at a frame holding another page is a problem, because a
reader would follow it).  What nothing references is reported as garbage for
``incr prune``, never as damage.

restic's ``check`` is the model: read-only, structure always, data on request
(all packs, or a seeded random fraction of them, as ``--read-data-subset``).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Final

import zstandard
from google.protobuf.message import DecodeError

from incr.proto import store_pb2

from .digest import DIGEST_SIZE, PAGE_SIZE, ZERO_DIGEST, hex_id, pack_digest, page_digest
from .errors import CorruptPageMap, CorruptStore
from .handle import StoreHandle
from .index import LOCATION
from .layers import HOLE_DIGEST, Layer, PageDict, read_region, region_layers
from .layers import decode as decode_layer
from .layout import STORE_VERSION
from .pack import BLOB, PAGES, PackFormatError, decode_frame, iter_pack_files, read_trailer

#: Packs read at once by --read-data (each whole in memory: 32 MiB).
READ_THREADS: Final = 4
#: (what is being done, units done, units in all): called as work proceeds.
Progress = Callable[[str, int, int], None]


@dataclass
class PackState:
    """One pack file as found: its trailer (None: unreadable) and what reading it found."""

    name: str
    size: int
    trailer: store_pb2.PackTrailer | None
    error: str = ""
    read: bool = False
    #: Digests (pages and blobs) whose frame failed to decode or to match.
    damaged: set[bytes] = field(default_factory=set)

    @property
    def healthy(self) -> bool:
        return self.trailer is not None and not self.error


@dataclass
class SnapshotCheck:
    id: str
    kind: str = ""
    epoch: float = 0.0
    problems: list[str] = field(default_factory=list)
    packs: set[str] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        return not self.problems

    def line(self) -> str:
        """One line for this snapshot's damage, naming the packs involved."""
        packs = ", ".join(p[:16] for p in sorted(self.packs)) or "none found"
        more = f" (and {len(self.problems) - 1} more problems)" if len(self.problems) > 1 else ""
        return f"{self.kind or 'checkpoint'} {self.id[:12]} is damaged: {self.problems[0]}{more}; packs: {packs}"


@dataclass
class Report:
    """What ``check`` found.  ``ok``: nothing a restore would trip over."""

    checked: list[SnapshotCheck] = field(default_factory=list)
    store_problems: list[str] = field(default_factory=list)
    index_problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    packs: int = 0
    packs_read: int = 0
    bytes_read: int = 0
    read_seconds: float = 0.0
    unreferenced_packs: list[str] = field(default_factory=list)
    unreferenced_bytes: int = 0
    unreferenced_entries: int = 0
    seed: int | None = None

    @property
    def ok(self) -> bool:
        return not self.store_problems and not self.index_problems and all(c.ok for c in self.checked)

    def problems(self) -> list[str]:
        return [*self.store_problems, *self.index_problems, *(c.line() for c in self.checked if not c.ok)]

    @property
    def read_mb_per_s(self) -> float:
        return self.bytes_read / 1e6 / self.read_seconds if self.read_seconds > 0 else 0.0


def check(store: StoreHandle, *, ids: Iterable[str] | None = None, read_data: float = 0.0, seed: int | None = None,
          progress: Progress | None = None) -> Report:
    """Check ``store`` (read-only).  ``ids``: only these snapshots' damage is reported (all
    by default; garbage is always computed over all).  ``read_data``: the fraction of packs
    (0 to 1) read in full, chosen at random with ``seed``."""
    report = Report()
    note = progress or (lambda what, done, total: None)
    packs = _load_packs(store, note)
    report.packs = len(packs)
    chosen = _choose(sorted(packs), read_data, seed, report)
    t0 = time.perf_counter()
    total = sum(packs[n].size for n in chosen)
    done = 0
    # zstd and BLAKE3 release the GIL: one pack per core at a time.
    with ThreadPoolExecutor(max_workers=min(READ_THREADS, os.cpu_count() or 1)) as pool:
        for state in pool.map(lambda name: _read_pack(store, packs[name]), chosen):
            done += state.size
            note("reading packs", done, total)
    report.read_seconds = time.perf_counter() - t0
    report.bytes_read = done
    report.packs_read = len(chosen)
    for state in packs.values():
        if state.error:
            report.store_problems.append(f"pack {state.name}: {state.error}")
    truth = _Truth(store, packs)
    wanted = {store.load(i)[0] for i in ids} if ids is not None else None
    referenced = _check_snapshots(store, truth, wanted, report, note)
    _check_index(store, truth, referenced, report)
    _garbage(truth, referenced, report)
    if wanted is not None:
        # Checking some snapshots: the store's own problems matter to them only through what
        # their own check found (a wrong index is rebuilt by the restore that meets it).
        report.notes += report.store_problems + report.index_problems
        report.store_problems, report.index_problems = [], []
    return report


def _load_packs(store: StoreHandle, note: Progress) -> dict[str, PackState]:
    files = list(iter_pack_files(store._layout.packs))
    packs: dict[str, PackState] = {}
    for i, (name, path) in enumerate(files):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue                      # removed by a prune since the listing
        try:
            trailer, size = read_trailer(fd)
            packs[name] = PackState(name, size, trailer)
        except PackFormatError as e:
            packs[name] = PackState(name, os.fstat(fd).st_size, None, error=f"unreadable ({e})")
        except OSError as e:
            packs[name] = PackState(name, 0, None, error=f"cannot be read ({e.strerror or e})")
        finally:
            os.close(fd)
        note("reading pack trailers", i + 1, len(files))
    return packs


def _choose(names: list[str], fraction: float, seed: int | None, report: Report) -> list[str]:
    if fraction >= 1.0:
        return names
    if fraction <= 0.0:
        return []
    if seed is None:
        seed = random.SystemRandom().randrange(1 << 32)
    report.seed = seed
    count = max(1, round(len(names) * fraction)) if names else 0
    return sorted(random.Random(seed).sample(names, count))


def _read_pack(store: StoreHandle, state: PackState) -> PackState:
    """Read every byte of a pack: its name is the hash of its content, every frame decodes and
    matches its digests.  Damage is recorded per digest, so checkpoints not using it stay good."""
    state.read = True
    path = store._layout.packs / state.name[:2] / state.name
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        state.error = "removed while being checked"
        return state
    except OSError as e:                     # a failing disk: damage to report, not a reason to stop
        state.error = f"cannot be read ({e.strerror or e})"
        state.trailer = None
        return state
    if state.trailer is None:
        return state
    causes: list[str] = []
    if pack_digest(data) != state.name:
        causes.append("its content does not match its name")
    plain = zstandard.ZstdDecompressor()
    dictionaries: dict[bytes, zstandard.ZstdDecompressor] = {}
    wanted_dicts = set(state.trailer.dicts)
    for frame in state.trailer.frames:
        stored = data[frame.offset : frame.offset + frame.length]
        decompressor: zstandard.ZstdDecompressor | None = plain
        if frame.kind == PAGES and frame.dict:
            decompressor = dictionaries.get(state.trailer.dicts[frame.dict - 1])
            if decompressor is None and len(causes) < 3:
                causes.append(f"the frame at {frame.offset} needs a dictionary that is damaged")
        raw: bytes | memoryview | None = None
        if decompressor is not None:
            try:
                raw = decode_frame(frame.codec, stored, frame.raw_length, decompressor)
            except PackFormatError:
                raw = None
        if frame.kind == BLOB:
            if raw is None or page_digest(raw) != frame.digests:
                _damage(state, causes, frame, frame.digests, decoded=raw is not None)
            elif frame.digests in wanted_dicts:
                try:
                    dictionaries[frame.digests] = zstandard.ZstdDecompressor(
                        dict_data=zstandard.ZstdCompressionDict(bytes(raw)))
                except zstandard.ZstdError:
                    state.damaged.add(frame.digests)
            continue
        view = memoryview(raw) if raw is not None else None
        for slot in range(len(frame.digests) // DIGEST_SIZE):
            want = frame.digests[slot * DIGEST_SIZE : (slot + 1) * DIGEST_SIZE]
            if view is None or page_digest(view[slot * PAGE_SIZE : (slot + 1) * PAGE_SIZE]) != want:
                _damage(state, causes, frame, want, decoded=view is not None)
    if len(state.damaged) > 1:
        causes.append(f"{len(state.damaged)} pages or blobs in it are damaged")
    state.error = "; ".join(causes)
    return state


def _damage(state: PackState, causes: list[str], frame: store_pb2.Frame, key: bytes, *, decoded: bool) -> None:
    if not state.damaged:
        what = "blob" if frame.kind == BLOB else "page"
        how = "does not match its digest" if decoded else "does not decode"
        causes.append(f"the frame at {frame.offset} ({what} {key.hex()}) {how}")
    state.damaged.add(key)


class _Truth:
    """Where the pack trailers say each page and blob is: the first readable pack holding it,
    and any further ones (a crashed writer's duplicates)."""

    def __init__(self, store: StoreHandle, packs: dict[str, PackState]) -> None:
        self.store = store
        self.packs = packs
        self.page_home: dict[bytes, str] = {}
        self.blob_home: dict[bytes, tuple[str, store_pb2.Frame]] = {}
        self.copies: dict[bytes, list[str]] = {}
        self.frames: dict[str, dict[int, store_pb2.Frame]] = {}
        for name in sorted(packs):
            trailer = packs[name].trailer
            if trailer is None:
                continue
            by_offset: dict[int, store_pb2.Frame] = {}
            for frame in trailer.frames:
                by_offset[frame.offset] = frame
                if frame.kind == BLOB:
                    if self.blob_home.setdefault(frame.digests, (name, frame))[0] != name:
                        self.copies.setdefault(frame.digests, []).append(name)
                    continue
                d = frame.digests
                for at in range(0, len(d), DIGEST_SIZE):
                    key = d[at : at + DIGEST_SIZE]
                    if self.page_home.setdefault(key, name) != name:
                        self.copies.setdefault(key, []).append(name)
            self.frames[name] = by_offset

    def holder(self, key: bytes, *, blob: bool) -> str | None:
        """A pack holding ``key`` intact (as far as it was read), or None."""
        name: str | None
        if blob:
            home = self.blob_home.get(key)
            name = home[0] if home is not None else None
        else:
            name = self.page_home.get(key)
        if name is None:
            return None
        candidates: list[str] = [name, *self.copies.get(key, ())]
        for candidate in candidates:
            if key not in self.packs[candidate].damaged:
                return candidate
        return None

    def read_blob(self, key: bytes) -> bytes:
        """A blob read straight from its pack (not through the index: that is checked apart)."""
        home = self.blob_home.get(key)
        if home is None:
            raise CorruptStore(self.store.path, f"blob {key.hex()} is in no pack")
        name, frame = home
        path = self.store._layout.packs / name[:2] / name
        try:
            with open(path, "rb") as f:
                f.seek(frame.offset)
                stored = f.read(frame.length)
        except OSError as e:
            raise CorruptStore(self.store.path, f"pack {name} cannot be read ({e.strerror or e})") from None
        try:
            data = bytes(decode_frame(frame.codec, stored, frame.raw_length, zstandard.ZstdDecompressor()))
        except PackFormatError as e:
            raise CorruptStore(self.store.path, f"blob {key.hex()} in pack {name}: {e}") from None
        if page_digest(data) != key:
            raise CorruptStore(self.store.path, f"blob {key.hex()} in pack {name} does not match its id")
        return data


@dataclass
class _Referenced:
    pages: set[bytes] = field(default_factory=set)
    blobs: set[bytes] = field(default_factory=set)
    #: Whether every manifest could be read (else garbage cannot be told apart).
    complete: bool = True


@dataclass
class _LayerCheck:
    """What checking one page-map blob found (layers are shared by many checkpoints)."""

    pages: PageDict | None
    packs: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)


class _SnapshotChecker:
    def __init__(self, truth: _Truth) -> None:
        self.truth = truth
        self.referenced = _Referenced()
        self.layers: dict[bytes, _LayerCheck] = {}
        self.pages: dict[bytes, str | None] = {}         # page -> intact holder (None: none)

    def region(self, ref: store_pb2.PageMapRef, result: SnapshotCheck) -> None:
        maps: list[PageDict] = []
        for layer in region_layers(ref):
            try:
                key = bytes.fromhex(layer.blob)
            except ValueError:
                key = b""
            if len(key) != DIGEST_SIZE:
                result.problems.append(f"page map {ref.region!r} names an invalid blob id {layer.blob!r}")
                return
            self.referenced.blobs.add(key)
            found = self.layers.get(key)
            if found is None:
                found = self.layers[key] = self._layer(ref.region, layer.entries, key)
            result.packs |= found.packs
            result.problems += found.problems
            if found.pages is None:
                return
            maps.append(found.pages)
        held = read_region([Layer(entries=len(m), pages=m) for m in maps], lambda blob: b"")
        if len(held) != ref.pages:
            result.problems.append(f"page map {ref.region!r} holds {len(held)} pages, the manifest says {ref.pages}")

    def _layer(self, region: str, entries: int, key: bytes) -> _LayerCheck:
        truth = self.truth
        found = _LayerCheck(pages=None)
        home = truth.holder(key, blob=True)
        if home is None:
            where = truth.blob_home.get(key)
            if where is not None:
                found.packs.add(where[0])
                found.problems.append(f"page map {region!r} (blob {key.hex()}) is damaged in pack {where[0][:16]}")
            else:
                said = _index_says(truth, key, True, found.packs)
                found.problems.append(f"page map {region!r} (blob {key.hex()}) is in no pack{said}")
            return found
        try:
            pages = decode_layer(truth.read_blob(key))
        except (CorruptPageMap, CorruptStore) as e:
            found.packs.add(home)
            found.problems.append(f"page map {region!r}: {e}")
            return found
        if len(pages) != entries:
            found.problems.append(f"a layer of page map {region!r} lists {len(pages)} pages, "
                                  f"the manifest says {entries}")
        found.pages = pages
        missing = damaged = 0
        example = b""
        for d in pages.values():
            if d in (ZERO_DIGEST, HOLE_DIGEST):
                continue
            if d in self.pages:
                holder = self.pages[d]
            else:
                self.referenced.pages.add(d)
                holder = self.pages[d] = truth.holder(d, blob=False)
            if holder is not None:
                continue
            example = example or d
            original = truth.page_home.get(d)
            if original is not None:
                damaged += 1
                found.packs.add(original)
            else:
                missing += 1
                _index_says(truth, d, False, found.packs)
        if damaged:
            found.problems.append(f"{damaged} pages of region {region!r} are damaged (e.g. {example.hex()})")
        if missing:
            found.problems.append(f"{missing} pages of region {region!r} are in no pack (e.g. {example.hex()})")
        return found


def _check_snapshots(store: StoreHandle, truth: _Truth, wanted: set[str] | None, report: Report,
                     note: Progress) -> _Referenced:
    checker = _SnapshotChecker(truth)
    ids = store._snapshot_ids()
    for n, snapshot_id in enumerate(ids):
        result = SnapshotCheck(snapshot_id)
        snapshot = _read_manifest(store, snapshot_id, result)
        if snapshot is None:
            checker.referenced.complete = False
        else:
            result.kind, result.epoch = snapshot.kind, snapshot.epoch
            for ref in snapshot.page_maps:
                checker.region(ref, result)
        if wanted is None or snapshot_id in wanted:
            report.checked.append(result)
        note("checking checkpoints", n + 1, len(ids))
    report.checked.sort(key=lambda c: (c.epoch, c.id))
    return checker.referenced


def _read_manifest(store: StoreHandle, snapshot_id: str, result: SnapshotCheck) -> store_pb2.Snapshot | None:
    try:
        data = store._layout.snapshot(snapshot_id).read_bytes()
    except FileNotFoundError:
        result.problems.append("its manifest was removed while being checked")
        return None
    except OSError as e:
        result.problems.append(f"its manifest cannot be read ({e.strerror or e})")
        return None
    if hex_id(data) != snapshot_id:
        result.problems.append("its manifest does not match its id (damaged or truncated)")
        return None
    snapshot = store_pb2.Snapshot()
    try:
        snapshot.ParseFromString(data)
    except DecodeError:
        result.problems.append("its manifest does not decode")
        return None
    if snapshot.format_version > STORE_VERSION:
        result.problems.append(f"its manifest has format version {snapshot.format_version} (a newer incr)")
        return None
    return snapshot


def _index_says(truth: _Truth, key: bytes, blob: bool, packs: set[str]) -> str:
    """Where the index places a digest no pack holds (the pack it names is then missing)."""
    with truth.store._index.view() as lookup:
        value = (lookup.get_blob if blob else lookup.get_page)(key)
    if value is None:
        return ""
    name = value[:32].hex()
    packs.add(name)
    gone = "" if name in truth.packs else ", which is missing"
    return f" (the index places it in pack {name[:16]}{gone})"


def _check_index(store: StoreHandle, truth: _Truth, referenced: _Referenced, report: Report) -> None:
    """Every referenced page and blob must be indexed at a frame that holds it; no indexed pack
    may be gone.  (An index missing altogether is rebuilt when the store is opened.)"""
    indexed = store._index.pack_sizes()
    gone = sorted(set(indexed) - set(truth.packs))
    if gone:
        report.index_problems.append(
            f"the index lists {len(gone)} packs that are missing on disk (e.g. {gone[0][:16]}): "
            "run `incr repair index`")
    unindexed = sorted(set(truth.packs) - set(indexed))
    if unindexed:
        report.notes.append(f"{len(unindexed)} packs are not in the index yet (left by an interrupted command; "
                            "the next command indexes them)")
    wrong = absent = 0
    example = ""
    with store._index.view() as lookup:
        for keys, get, blob in ((referenced.pages, lookup.get_page, False), (referenced.blobs, lookup.get_blob, True)):
            for key in keys:
                if truth.holder(key, blob=blob) is None:
                    continue                      # damage, reported per checkpoint
                value = get(key)
                if value is None:
                    if truth.holder(key, blob=blob) in indexed:
                        absent += 1
                        example = example or key.hex()
                    continue
                pack, offset, _, _, slot, _ = LOCATION.unpack_from(value)
                frame = truth.frames.get(pack.hex(), {}).get(offset)
                if frame is None or frame.digests[slot * DIGEST_SIZE : (slot + 1) * DIGEST_SIZE] != key:
                    wrong += 1
                    example = example or key.hex()
    if wrong:
        report.index_problems.append(f"{wrong} index entries point at a frame holding something else "
                                     f"(e.g. {example}): run `incr repair index`")
    if absent:
        report.index_problems.append(f"{absent} pages or blobs of indexed packs are missing from the index "
                                     f"(e.g. {example}): run `incr repair index`")
    counts = store._index.counts()
    report.unreferenced_entries = max(0, counts["pages"] - len(referenced.pages)) + \
        max(0, counts["blobs"] - len(referenced.blobs))


def _garbage(truth: _Truth, referenced: _Referenced, report: Report) -> None:
    """Bytes of frames nothing references, and packs holding only such frames."""
    if not referenced.complete:
        report.notes.append("some manifests are unreadable: unreferenced data cannot be told apart")
        return
    for name, state in sorted(truth.packs.items()):
        if state.trailer is None:
            continue
        live_dicts = set()
        live = 0
        frames = list(state.trailer.frames)
        for frame in frames:
            if frame.kind == PAGES and _is_live(frame, referenced.pages):
                live += frame.length
                if frame.dict:
                    live_dicts.add(state.trailer.dicts[frame.dict - 1])
        for frame in frames:
            if frame.kind == BLOB and (frame.digests in referenced.blobs or frame.digests in live_dicts):
                live += frame.length
        dead = sum(f.length for f in frames) - live
        report.unreferenced_bytes += dead
        if live == 0:
            report.unreferenced_packs.append(name)
            report.unreferenced_bytes += state.size - sum(f.length for f in frames)


def _is_live(frame: store_pb2.Frame, pages: set[bytes]) -> bool:
    d = frame.digests
    return any(d[at : at + DIGEST_SIZE] in pages for at in range(0, len(d), DIGEST_SIZE))
