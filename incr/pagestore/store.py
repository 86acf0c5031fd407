"""The page store: content-addressed, deduplicated, compressed pages and blobs, plus manifests.

Truth is in immutable files (packs, manifests, config); the LMDB index is a
cache rebuilt from the packs whenever it is missing, unreadable or behind.
The store knows nothing of processes: it stores pages by digest, opaque
blobs, and Snapshot manifests that reference page-map blobs.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import mmap
import os
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, cast

import lmdb
import zstandard
from google.protobuf.message import DecodeError

from incr.proto import store_pb2

from . import gc
from .digest import DIGEST_SIZE, PAGE_SIZE, ZERO_DIGEST, first_mismatch, hex_id, page_digest
from .errors import (
    AmbiguousId,
    CorruptStore,
    InvalidSnapshotId,
    SnapshotNotFound,
    StoreAccessError,
    UnsupportedStore,
    os_errors,
)
from .index import Index, Location, is_sealed
from .layers import HOLE_DIGEST, region_layers
from .layers import decode as decode_layer
from .layout import STORE_VERSION, Layout, is_snapshot_id, open_layout
from .lock import WriteLock
from .pack import (
    PACK_TARGET_SIZE,
    FrameTable,
    PackFormatError,
    SealedPack,
    decode_frame,
    frame_table,
    iter_pack_files,
    pack_path,
    read_trailer,
)
from .reads import FetchBuffer, FrameDecodeError, MalformedEntry, ReadPlan, new_ddict
from .verify import Progress, check

if TYPE_CHECKING:
    from .writer import SnapshotWriter


class StaleIndex(Exception):
    """The index named a place that does not hold what was asked for: rebuild it and retry."""

log = logging.getLogger("incr.pagestore")

#: Pack files kept mapped for reading (32 MiB each, address space only).
MAPPED_PACKS: Final = 256
#: Looks at an index's seal, 10 ms apart, before an unsealed one is taken for damaged.
SEAL_GRACE_STEPS: Final = 10
_MIN_PREFIX: Final = 4
# LMDB errors meaning "these files are not a usable environment": rebuilding fixes them.
_UNUSABLE_INDEX = (lmdb.InvalidError, lmdb.CorruptedError, lmdb.VersionMismatchError, lmdb.IncompatibleError,
                   lmdb.PageNotFoundError, lmdb.BadTxnError, lmdb.BadRslotError)
# Errors of the system rather than of the files: rebuilding would not help (and must not be tried).
_SYSTEM_TROUBLE = ("Permission denied", "Read-only file system", "No space left", "Too many open files")


def _unusable(e: lmdb.Error) -> bool:
    """Whether an error opening the index means its files are damaged (a garbage map size
    shows as "Cannot allocate memory"): then it is rebuilt from the packs."""
    if isinstance(e, _UNUSABLE_INDEX):
        return True
    return not isinstance(e, lmdb.ReadersFullError) and not any(t in str(e) for t in _SYSTEM_TROUBLE)


class Store:
    """An open page store.

    Concurrency: any number of processes may read a store while one writes
    it; writers (``writer()``) exclude each other with the store's write lock.
    A Store may be shared by threads: reads serialize on an internal lock
    (they share the open packs and the prepared dictionaries).  A Store must not be used
    across fork(); open it again in the child.

    Counters: ``frames_decoded`` counts frames read from packs and decoded
    (each distinct frame of a read once); tests and benchmarks read it.
    """

    def __init__(self, layout: Layout, config: store_pb2.StoreConfig) -> None:
        self.path: Path = layout.root
        self.config = config
        self._layout = layout
        #: Pages read from RAW frames are always checked against their digest
        #: (nothing else protects them); zstd frames carry a content checksum
        #: that zstd checks on every decompression.  True also hashes pages of
        #: zstd frames: ~2 us/page more, read speed roughly halved (measured
        #: here: 1.8 GB/s -> 0.8 GB/s).
        self.verify_reads = False
        #: Every page read is checked to come from the frame its pack's trailer lists it in (the
        #: index cannot lie).  False only to measure what that costs (benchmarks/read_check.py).
        self.check_frames = True
        self.frames_decoded = 0
        self._io_lock = threading.RLock()      # reentrant: a frame read may read its dictionary blob
        self._maps: OrderedDict[bytes, mmap.mmap] = OrderedDict()
        #: Per mapped pack, from its trailer: its frames and the digests each holds.
        self._frame_tables: dict[bytes, FrameTable] = {}
        #: zstd dictionaries prepared for the C read path, by blob id (under _io_lock).
        self._ddicts: dict[bytes, Any] = {}
        #: By dictionary blob id (b"": none); used under _io_lock only.
        self._decompressors: dict[bytes, zstandard.ZstdDecompressor] = {}
        #: Per reading thread, the buffer a read-once batch's frames are read into (_fetch).
        self._fetch_buffers = threading.local()
        self._writers: set[SnapshotWriter] = set()
        self.damaged_manifests: list[tuple[str, str, float]] = []
        self._closed = False
        self._index = self._open_index()

    # -- opening and closing ------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, create: bool = False) -> Store:
        """Open the store at ``path``.

        ``create=True`` makes a new store if ``path`` is missing or an empty
        directory.  Raises StoreNotFound, NotAStore, UnsupportedVersion,
        CorruptStore or StoreAccessError (never a bare OSError).  A missing,
        unreadable or incomplete index is rebuilt from the packs.
        """
        root = Path(os.path.abspath(path))
        with os_errors(root):
            layout, config = open_layout(root, create=create)
            return cls(layout, config)

    def _open_index(self) -> Index:
        path = self._layout.index
        if not is_sealed(path):
            self._discard_unsealed_index(path)
        try:
            index = Index.open(path)
        except lmdb.Error as e:
            if not _unusable(e):
                raise StoreAccessError(self.path, f"cannot open the index: {e}") from e
            log.warning("the index of store %s is unreadable (%s); rebuilding it from the packs", self.path, e)
            # Deleting files another process may have open needs the writers out of the way.
            lock = WriteLock(self._layout.write_lock, self.path)
            lock.acquire()
            try:
                shutil.rmtree(path)
                index = Index.open(path)
            finally:
                lock.release()
        try:
            if not index.is_complete(self.config.store_id):
                count = index.rebuild(self.config.store_id, self._load_packs, only_if_incomplete=True)
                if count:
                    log.warning("rebuilt the index of store %s from %d packs", self.path, count)
        except BaseException:
            index.close()
            raise
        return index

    def _discard_unsealed_index(self, path: Path) -> None:
        """An index changed since incr last wrote it (see ``index.is_sealed``): never read, but
        deleted (under the write lock, and only if still so once it is held) to be rebuilt."""
        lock = WriteLock(self._layout.write_lock, self.path)
        lock.acquire()
        try:
            # A reader that wrote the index (its cache of what checkpoints need) may be sealing it
            # right now: give it a moment before taking the index for damaged.
            for _ in range(SEAL_GRACE_STEPS):
                if is_sealed(path) or Index.is_open(path):
                    return
                time.sleep(0.01)
            log.warning("the index of store %s was changed outside incr or left unsealed by an interrupted "
                        "command; rebuilding it from the packs", self.path)
            shutil.rmtree(path)
        finally:
            lock.release()

    def close(self) -> None:
        """Abort writers still open, close the index and pack files.  Idempotent."""
        if self._closed:
            return
        self._closed = True
        for writer in list(self._writers):
            writer.abort()
        with self._io_lock:
            self._maps.clear()        # each unmapped once no page read from it is still referenced
            self._frame_tables.clear()
        self._index.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- writing -------------------------------------------------------------

    def writer(self, *, wait: bool = True, pack_target: int = PACK_TARGET_SIZE) -> SnapshotWriter:
        """Start writing a snapshot; the returned writer holds the store's write lock.

        If another writer holds the lock: with ``wait`` (default) log
        "waiting for the store lock held by pid N" and block; else raise
        StoreLocked.  Once the lock is held, temporary files of crashed
        writers are deleted and packs they sealed but did not index are
        indexed (their pages then deduplicate instead of being stored again).
        ``pack_target`` is the size at which packs are sealed (tests lower it).
        """
        from .writer import SnapshotWriter

        lock = self._write_lock(wait=wait)
        try:
            writer = SnapshotWriter(self, lock, pack_target)
        except BaseException:
            lock.release()
            raise
        self._writers.add(writer)
        return writer

    def _write_lock(self, *, wait: bool) -> WriteLock:
        """The write lock, taken; then what crashed writers left is tidied (their temporary files
        deleted, their sealed packs indexed, a forget they committed to finished) and an index
        naming packs that are gone is rebuilt, so that nothing is deduplicated against them."""
        lock = WriteLock(self._layout.write_lock, self.path)
        with os_errors(self.path):
            lock.acquire(wait=wait)
            try:
                stale = self._layout.stale_temporaries()
                for tmp in stale:
                    tmp.unlink(missing_ok=True)
                if stale:
                    log.info("removed %d temporary files left by an interrupted writer", len(stale))
                gc.finish_forget(self, lock)
                self._index_new_packs()
                self._check_index_packs(locked=True)
            except BaseException:
                lock.release()
                raise
        return lock

    @contextlib.contextmanager
    def maintenance(self, *, wait: bool = True) -> Iterator[WriteLock]:
        """The write lock for forget, prune and repair (see ``_write_lock``), released on exit."""
        lock = self._write_lock(wait=wait)
        try:
            yield lock
        finally:
            lock.release()

    def _writer_closed(self, writer: Any) -> None:
        self._writers.discard(writer)

    # -- the index -----------------------------------------------------------

    def _load_packs(self) -> Iterator[SealedPack]:
        """Trailers of every readable pack on disk; unreadable ones are logged and skipped."""
        for name, path in iter_pack_files(self._layout.packs):
            pack = self._load_pack(name, path)
            if pack is not None:
                yield pack

    def _load_pack(self, name: str, path: Path) -> SealedPack | None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            trailer, size = read_trailer(fd)
        except (PackFormatError, OSError) as e:
            log.error("pack %s of store %s is unreadable and was not indexed: %s", name, self.path, e)
            return None
        finally:
            os.close(fd)
        return SealedPack(name=name, size=size, trailer=trailer)

    def _index_new_packs(self, *, reader: bool = False) -> int:
        """Index packs present on disk but not in the index (crashed writers, a lost index update).

        A ``reader`` (holding no writer) does nothing while another process writes: a prune
        may be about to delete the very packs it would index (so that the index would name
        packs that are gone)."""
        if reader and self._someone_writes():
            return 0
        known = self._index.indexed_packs()
        new = [
            pack
            for name, path in iter_pack_files(self._layout.packs)
            if name not in known and (pack := self._load_pack(name, path)) is not None
        ]
        if new:
            self._index.add_packs(new, overwrite=False)
            log.info("indexed %d packs of store %s that the index did not know", len(new), self.path)
        return len(new)

    def _someone_writes(self) -> bool:
        """Whether another holder has the write lock now (never this process's own writers)."""
        if self._writers:
            return False
        try:
            fd = os.open(self._layout.write_lock, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)                  # (drops the shared lock if taken)
        return False

    def _repair_index(self, reason: str, *, locked: bool = False) -> None:
        """The index led a read astray: rebuild it from the packs (under the write lock, so that
        no prune deletes packs meanwhile, unless this process holds it already)."""
        log.warning("the index of store %s is wrong (%s): rebuilding it from the packs", self.path, reason)
        lock = None if locked or self._writers else WriteLock(self._layout.write_lock, self.path)
        if lock is not None:
            lock.acquire()
        try:
            self.rebuild_index()
        finally:
            if lock is not None:
                lock.release()

    def _check_index_packs(self, *, locked: bool = False) -> None:
        """An index naming a pack that is gone (deleted by hand, or by a prune racing an old
        reader) would make writers deduplicate against pages no longer stored: rebuild it."""
        on_disk = {name for name, _ in iter_pack_files(self._layout.packs)}
        gone = self._index.indexed_packs() - on_disk
        if gone:
            self._repair_index(f"it lists {len(gone)} packs missing on disk, e.g. {min(gone)}", locked=locked)

    def rebuild_index(self) -> int:
        """Rebuild the index from the pack trailers alone, in one transaction; return the packs indexed."""
        with os_errors(self.path):
            count = self._index.rebuild(self.config.store_id, self._load_packs, only_if_incomplete=False)
        assert count is not None
        self._forget_read_caches()
        return count

    def _forget_read_caches(self) -> None:
        """Frames and packs read through the old index (a rebuild or a prune changed it)."""
        with self._io_lock:
            self._maps.clear()
            self._frame_tables.clear()

    # -- reading -------------------------------------------------------------

    def read_pages_into(self, digests: bytes, out: memoryview | bytearray, *, once: bool = False) -> None:
        """Fill ``out`` with the pages whose digests ``digests`` concatenates (16 bytes each).

        ``out`` must be exactly ``4096 * n`` writable bytes.  ZERO_DIGEST
        yields a zero page.  Each frame is decompressed once per call, in C on
        DECODE_THREADS threads (reads.py).  A digest the store lacks raises
        CorruptStore naming it.  ``once``: the caller reads these frames this
        once (a restore): they are read straight from the pack files (O_DIRECT),
        not through the page cache.
        """
        n = _page_count(digests)
        view = memoryview(out)
        if view.readonly:
            raise ValueError("out must be writable")
        view = view.cast("B")
        if view.nbytes != n * PAGE_SIZE:
            raise ValueError(f"out is {view.nbytes} bytes, {n} pages need {n * PAGE_SIZE}")
        digests = bytes(digests)
        first = ""
        with os_errors(self.path):
            for attempt in (1, 2):
                try:
                    self._read_plan(self._plan(digests, n), digests, view, once=once)
                    return
                except StaleIndex as e:
                    if attempt == 2:
                        raise CorruptStore(self.path, f"{e} (before the index was rebuilt: {first})") from None
                    first = str(e)
                    self._repair_index(first)

    def _plan(self, digests: bytes, n: int) -> ReadPlan:
        """The reads of the ``n`` pages of ``digests``, from the index (refreshed once with packs
        written since it was opened, if a page is not in it)."""
        wanted = [digests[k : k + DIGEST_SIZE] for k in range(0, n * DIGEST_SIZE, DIGEST_SIZE)]
        for attempt in range(2):
            with self._index.view() as lookup:
                get = lookup.get_page
                entries = [b"" if d == ZERO_DIGEST else get(d) for d in wanted]
            if None not in entries or attempt == 1 or not self._index_new_packs(reader=True):
                break
        missing = [i for i, entry in enumerate(entries) if entry is None]
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise StaleIndex(f"page {wanted[missing[0]].hex()} is not in the store{more}")
        try:
            return ReadPlan(cast("list[bytes]", entries))
        except MalformedEntry as e:
            raise StaleIndex(str(e)) from None

    def _read_plan(self, plan: ReadPlan, digests: bytes, view: memoryview, *, once: bool = False) -> None:
        """Decode ``plan`` into ``view``, every page checked to be the page asked for; ``once``:
        its frames read by _decode_fetched."""
        packs: list[mmap.mmap] = []
        with self._io_lock:
            for group in range(plan.groups):
                pack = plan.group_pack(group)
                packs.append(self._pack_map(pack))
                # An index entry gone wrong would read another page, intact, whose zstd checksum
                # passes: each read must come from the frame its pack's trailer lists it in.
                page = self._frame_table(pack).misplaced(plan, group, digests) if self.check_frames else -1
                if page >= 0:
                    want = digests[page * DIGEST_SIZE : (page + 1) * DIGEST_SIZE]
                    raise StaleIndex(f"the index places page {want.hex()} in a frame of pack {pack.hex()} "
                                     "that holds another")
            ddicts = [self._ddict(d) for d in plan.dict_ids()]
        try:
            if once:
                self.frames_decoded += self._decode_fetched(plan, ddicts, view)
            else:
                self.frames_decoded += plan.decode(packs, ddicts, view)
        except FrameDecodeError as e:
            raise CorruptStore(self.path, str(e)) from None
        # zstd checked its frames' checksums; RAW frames have none.
        pages = None if self.verify_reads else plan.raw_pages()
        bad = first_mismatch(view[: plan.pages * PAGE_SIZE], digests, pages)
        if bad >= 0:
            i = bad if pages is None else pages[bad]
            want = digests[i * DIGEST_SIZE : (i + 1) * DIGEST_SIZE]
            raise CorruptStore(self.path, f"page {want.hex()} read from the store does not match its digest")

    def _ddict(self, dictionary: bytes) -> Any:
        """The zstd dictionary whose blob id is ``dictionary``, prepared for C (under _io_lock)."""
        ddict = self._ddicts.get(dictionary)
        if ddict is None:
            try:
                ddict = new_ddict(self.read_blob(dictionary.hex()))
            except ValueError:
                raise CorruptStore(self.path, f"dictionary {dictionary.hex()} is not a zstd dictionary") from None
            self._ddicts[dictionary] = ddict
        return ddict

    def _decode(self, pack: bytes, stored: memoryview, offset: int, length: int, raw_length: int, codec: int,
                decompressor: zstandard.ZstdDecompressor) -> bytes | memoryview:
        """The frame at `offset` of the mapped pack `stored`, decoded."""
        if offset + length > len(stored):
            raise CorruptStore(self.path, f"pack {pack.hex()} is truncated")
        try:
            data = decode_frame(codec, stored[offset : offset + length], raw_length, decompressor)
        except PackFormatError as e:
            raise CorruptStore(self.path, f"pack {pack.hex()}, frame at {offset}: {e}") from None
        self.frames_decoded += 1
        return data

    def _decode_fetched(self, plan: ReadPlan, ddicts: list[Any], view: memoryview) -> int:
        """``plan`` decoded into ``view`` from its frames read straight from the packs (O_DIRECT
        where the file system takes it), for a reader that reads each frame once: a restore.
        Through the page cache (mapped packs) its reads took as much memory new to the guest as
        the job they restore (~2 s a GiB on this VM) and the job's own memory had to wait."""
        buf: FetchBuffer | None = getattr(self._fetch_buffers, "buf", None)
        if buf is None:
            buf = self._fetch_buffers.buf = FetchBuffer()
        buf.clear()
        for group in range(plan.groups):
            pack = plan.group_pack(group)
            fd = self._open_pack_direct(pack)
            try:
                plan.fetch(group, fd, buf)
            finally:
                os.close(fd)
        fetched = buf.view()
        return plan.decode([fetched] * plan.groups, ddicts, view)

    def _open_pack_direct(self, pack: bytes) -> int:
        """A descriptor of ``pack`` for direct reads (buffered where O_DIRECT is refused)."""
        path = pack_path(self._layout.packs, pack.hex())
        try:
            try:
                return os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_DIRECT)
            except OSError as e:
                if e.errno != errno.EINVAL:
                    raise
                return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise StaleIndex(f"pack {pack.hex()} is missing") from None

    def _pack_map(self, pack: bytes) -> mmap.mmap:
        """The pack mapped read-only.  Packs are immutable and gc only unlinks them, so a
        mapping stays valid; only a pack damaged in place (truncated) could fault on read."""
        mapped = self._maps.get(pack)
        if mapped is not None:
            self._maps.move_to_end(pack)
            return mapped
        try:
            fd = os.open(pack_path(self._layout.packs, pack.hex()), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise StaleIndex(f"pack {pack.hex()} is missing") from None
        try:
            mapped = mmap.mmap(fd, 0, access=mmap.ACCESS_READ) if os.fstat(fd).st_size else mmap.mmap(-1, 1)
        finally:
            os.close(fd)
        self._maps[pack] = mapped
        if len(self._maps) > MAPPED_PACKS:
            old, _ = self._maps.popitem(last=False)  # unmapped once no frame of it is in use
            self._frame_tables.pop(old, None)
        return mapped

    def _frame_table(self, pack: bytes) -> FrameTable:
        """The frame table of a pack mapped by ``_pack_map`` (under _io_lock), read once a mapping."""
        table = self._frame_tables.get(pack)
        if table is None:
            try:
                table = frame_table(self._maps[pack])
            except PackFormatError as e:
                raise CorruptStore(self.path, f"pack {pack.hex()}: {e}") from None
            self._frame_tables[pack] = table
        return table

    def _read_frame(self, loc: Location) -> memoryview:
        stored = memoryview(self._pack_map(loc.pack))
        return memoryview(self._decode(loc.pack, stored, loc.offset, loc.length, loc.raw_length, loc.codec,
                                       self._decompressor_for(loc.dict, self._decompressors)))

    def _decompressor_for(
        self, dictionary: bytes, cache: dict[bytes, zstandard.ZstdDecompressor]
    ) -> zstandard.ZstdDecompressor:
        """From `cache`, or made and added to it: a decompressor for frames compressed with the
        dictionary whose blob id is `dictionary` (none when empty)."""
        decompressor = cache.get(dictionary)
        if decompressor is not None:
            return decompressor
        if not dictionary:
            decompressor = zstandard.ZstdDecompressor()
        else:
            data = self.read_blob(dictionary.hex())
            try:
                decompressor = zstandard.ZstdDecompressor(dict_data=zstandard.ZstdCompressionDict(data))
            except zstandard.ZstdError as e:
                raise CorruptStore(self.path, f"dictionary {dictionary.hex()} is not a zstd dictionary: {e}") from None
        cache[dictionary] = decompressor
        return decompressor

    def read_blob(self, blob_id: str) -> bytes:
        """Content of blob ``blob_id`` (32 hex digits), checked against its id."""
        try:
            key = bytes.fromhex(blob_id)
        except ValueError:
            key = b""
        if len(key) != DIGEST_SIZE:
            raise CorruptStore(self.path, f"{blob_id!r} is not a blob id")
        first = ""
        with os_errors(self.path):
            for attempt in (1, 2):
                try:
                    with self._io_lock:
                        return self._read_blob(key)
                except StaleIndex as e:
                    if attempt == 2:
                        raise CorruptStore(self.path, f"{e} (before the index was rebuilt: {first})") from None
                    first = str(e)
                    self._repair_index(first)
        raise AssertionError("unreachable")

    def _read_blob(self, key: bytes) -> bytes:
        with self._index.view() as lookup:
            value = lookup.get_blob(key)
        if value is None and self._index_new_packs(reader=True):
            with self._index.view() as lookup:
                value = lookup.get_blob(key)
        if value is None:
            raise StaleIndex(f"blob {key.hex()} is not in the store")
        loc = Location.decode(value)
        # A blob is hashed whole as it is read: content that is not the blob asked for (the index
        # pointing elsewhere, or damage) shows as a mismatch, retried once with a rebuilt index.
        # (No frame check by offset: an empty blob's frame shares its offset with the next frame.)
        data = self._read_frame(loc).tobytes()
        if page_digest(data) != key:
            raise StaleIndex(f"blob {key.hex()} read from pack {loc.pack.hex()} does not match its id")
        return data

    def has_pages(self, digests: bytes) -> bytes:
        """One byte per digest: 1 if the store holds that page (the zero page always), else 0."""
        n, rest = divmod(len(digests), DIGEST_SIZE)
        if rest:
            raise ValueError(f"digests is {len(digests)} bytes, not a multiple of {DIGEST_SIZE}")
        present = bytearray(n)
        with self._index.view() as lookup:
            get = lookup.get_page
            for i in range(n):
                d = digests[i * DIGEST_SIZE : (i + 1) * DIGEST_SIZE]
                present[i] = d == ZERO_DIGEST or get(d) is not None
        return bytes(present)

    # -- snapshots -----------------------------------------------------------

    def _snapshot_ids(self) -> list[str]:
        """Committed snapshots, less those a forget has committed to removing."""
        forgotten = gc.pending_forget(self.path)
        return sorted(n for n in os.listdir(self._layout.snapshots) if is_snapshot_id(n) and n not in forgotten)

    def _read_manifest(self, snapshot_id: str) -> store_pb2.Snapshot:
        data = self._layout.snapshot(snapshot_id).read_bytes()
        if hex_id(data) != snapshot_id:
            raise CorruptStore(self.path, f"the manifest of checkpoint {snapshot_id} does not match its id")
        snapshot = store_pb2.Snapshot()
        try:
            snapshot.ParseFromString(data)
        except DecodeError:
            raise CorruptStore(self.path, f"the manifest of checkpoint {snapshot_id} does not decode") from None
        if snapshot.format_version > STORE_VERSION:
            raise UnsupportedStore(self.path, f"snapshot format version {snapshot.format_version}")
        return snapshot

    def snapshots(self) -> list[tuple[str, store_pb2.Snapshot]]:
        """Committed snapshots sorted by (epoch, id).  Damaged manifests are logged and left out;
        ``damaged_manifests`` then lists them as ``(id, what is wrong, the file's mtime)``."""
        result: list[tuple[str, store_pb2.Snapshot]] = []
        self.damaged_manifests = []
        with os_errors(self.path):
            for snapshot_id in self._snapshot_ids():
                try:
                    result.append((snapshot_id, self._read_manifest(snapshot_id)))
                except FileNotFoundError:
                    continue  # removed by gc since the listing
                except CorruptStore as e:
                    log.error("%s; it is left out", e)
                    with contextlib.suppress(FileNotFoundError):
                        mtime = self._layout.snapshot(snapshot_id).stat().st_mtime
                        self.damaged_manifests.append((snapshot_id, e.args[1] if len(e.args) > 1 else str(e), mtime))
        result.sort(key=lambda item: (item[1].epoch, item[0]))
        return result

    def resolve(self, id_or_prefix: str) -> str:
        """The id of the snapshot whose id is or starts with ``id_or_prefix`` (at least 4 hex
        digits), found by name: its manifest is not read (it may be damaged)."""
        ref = id_or_prefix.strip().lower()
        if not (_MIN_PREFIX <= len(ref) <= 32) or any(c not in "0123456789abcdef" for c in ref):
            raise InvalidSnapshotId(id_or_prefix)
        with os_errors(self.path):
            matches = [i for i in self._snapshot_ids() if i.startswith(ref)]
        if not matches:
            raise SnapshotNotFound(id_or_prefix, self.path)
        if len(matches) > 1:
            shown = ", ".join(m[:12] for m in matches[:4]) + (", ..." if len(matches) > 4 else "")
            raise AmbiguousId(id_or_prefix, len(matches), shown)
        return matches[0]

    def load(self, id_or_prefix: str) -> tuple[str, store_pb2.Snapshot]:
        """The snapshot whose id is or starts with ``id_or_prefix`` (at least 4 hex digits)."""
        snapshot_id = self.resolve(id_or_prefix)
        with os_errors(self.path):
            try:
                return snapshot_id, self._read_manifest(snapshot_id)
            except FileNotFoundError:
                raise SnapshotNotFound(id_or_prefix, self.path) from None

    def has_snapshot(self, snapshot_id: str) -> bool:
        return is_snapshot_id(snapshot_id) and self._layout.snapshot(snapshot_id).is_file()

    # -- checking ------------------------------------------------------------

    def incomplete(self, snapshots: list[tuple[str, store_pb2.Snapshot]]) -> dict[str, str]:
        """For each snapshot given: "" if every page and page map it needs is in a pack on disk,
        else what is missing.  What packs a snapshot needs is found once (through the index, in
        the time of a lookup per page) and kept in the index: later calls cost a look at the
        packs directory.  Cheaper than ``verify`` and reads no page (`incr list`)."""
        with os_errors(self.path):
            on_disk = {bytes.fromhex(name) for name, _ in iter_pack_files(self._layout.packs)}
            layers: dict[str, tuple[set[bytes], str]] = {}
            result: dict[str, str] = {}
            for snapshot_id, snapshot in snapshots:
                # A pack recorded but gone may be one a prune replaced since: found afresh, then judged.
                cached = self._index.needs(snapshot_id)
                if cached is not None and not _missing(cached, on_disk):
                    result[snapshot_id] = ""
                    continue
                packs, problem = self._packs_needed(snapshot, layers)
                if problem:
                    result[snapshot_id] = problem
                    continue
                needs = b"".join(sorted(packs))
                missing = _missing(needs, on_disk)
                if not missing and not self._someone_writes():     # (a prune may be changing the packs)
                    self._index.put_needs(snapshot_id, needs)
                more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
                result[snapshot_id] = f"pack {missing[0].hex()} is missing{more}" if missing else ""
        return result

    def _packs_needed(self, snapshot: store_pb2.Snapshot,
                      layers: dict[str, tuple[set[bytes], str]]) -> tuple[set[bytes], str]:
        packs: set[bytes] = set()
        for ref in snapshot.page_maps:
            for layer in region_layers(ref):
                found = layers.get(layer.blob)
                if found is None:
                    found = layers[layer.blob] = self._layer_packs(ref.region, layer.blob)
                if found[1]:
                    return packs, found[1]
                packs |= found[0]
        return packs, ""

    def _layer_packs(self, region: str, blob: str) -> tuple[set[bytes], str]:
        """The packs holding a page-map layer and its pages, or what of them is missing."""
        try:
            pages = decode_layer(self.read_blob(blob))
        except CorruptStore as e:
            return set(), f"page map {region!r}: {e.args[1] if len(e.args) > 1 else e}"
        packs: set[bytes] = set()
        missing = 0
        with self._index.view() as lookup:
            value = lookup.get_blob(bytes.fromhex(blob))
            if value is not None:
                packs.add(value[:32])
            get = lookup.get_page
            for d in pages.values():
                if d in (ZERO_DIGEST, HOLE_DIGEST):
                    continue
                value = get(d)
                if value is None:
                    missing += 1
                else:
                    packs.add(value[:32])
        return packs, f"{missing} pages of region {region!r} are not in the store" if missing else ""

    def verify(self, *, ids: list[str] | None = None, read_data: float = 1.0, seed: int | None = None,
               progress: Progress | None = None) -> list[str]:
        """Check the store and return the problems found, one line each (empty: healthy).

        ``verify.check`` does the work (see there); by default every pack is read in full.
        Read-only; safe while a writer runs.
        """
        with os_errors(self.path):
            return check(self, ids=ids, read_data=read_data, seed=seed, progress=progress).problems()

    # -- statistics ----------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """Sizes and counts: packs, bytes on disk, unique pages, blobs, snapshots."""
        with os_errors(self.path):
            pack_count = pack_bytes = 0
            for _name, path in iter_pack_files(self._layout.packs):
                pack_count += 1
                pack_bytes += path.stat().st_size
            ids = self._snapshot_ids()
            manifest_bytes = sum(self._layout.snapshot(i).stat().st_size for i in ids)
            index_bytes = sum(p.stat().st_size for p in self._layout.index.iterdir() if p.is_file())
            counts = self._index.counts()
        return {
            "packs": pack_count,
            "pack_bytes": pack_bytes,
            "manifest_bytes": manifest_bytes,
            "index_bytes": index_bytes,
            "bytes_on_disk": pack_bytes + manifest_bytes + index_bytes,
            "unique_pages": counts["pages"],
            "blobs": counts["blobs"],
            "snapshots": len(ids),
        }


def _missing(needs: bytes, on_disk: set[bytes]) -> list[bytes]:
    """The pack names (32 bytes each, concatenated in ``needs``) not in ``on_disk``."""
    return [needs[i : i + 32] for i in range(0, len(needs), 32) if needs[i : i + 32] not in on_disk]


def _page_count(digests: bytes) -> int:
    n, rest = divmod(len(digests), DIGEST_SIZE)
    if rest:
        raise ValueError(f"digests is {len(digests)} bytes, not a multiple of {DIGEST_SIZE}")
    return n
