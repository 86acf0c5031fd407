"""Writing one snapshot: pages and blobs into packs, then the manifest (the commit)."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
from collections.abc import Iterator, Sequence
from types import TracebackType

import lmdb

from incr.faults import fault_point
from incr.proto import store_pb2

from .digest import DIGEST_SIZE, PAGE_SIZE, ZERO_DIGEST, hex_id, page_digest, page_digests
from .errors import SnapshotNotFound, StoreAccessError
from .fsutil import fsync_dir, temp_name, write_durable
from .handle import StoreHandle
from .layout import STORE_VERSION, upgrade_config
from .lock import WriteLock
from .pack import BLOB, MAX_FRAME_BYTES, PAGES, SUBMIT_PAGES, pack_path
from .sink import PackSink

log = logging.getLogger(__name__)

_BLOB_ID = re.compile(r"[0-9a-f]{32}")
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


class WriteFailed(StoreAccessError):
    """cannot store the checkpoint in STORE: REASON while DOING (SIZE); nothing was committed[, NOTES][; HINT]

    An I/O error (full disk, EIO, read-only file system) or an LMDB error stopped a writer, which has
    aborted.  SIZE says how far it got and, with ``still_to_store`` (set by the caller, who knows what
    the pass held), roughly how much space the snapshot needed.
    """

    def __init__(self, store: os.PathLike[str] | str, reason: str, doing: str, written: int, os_errno: int) -> None:
        super().__init__(store, reason, doing)
        self.store, self.reason, self.doing, self.written, self.os_errno = store, reason, doing, written, os_errno
        #: Bytes of pages the snapshot still had to store when it failed, as far as the caller knows.
        self.still_to_store = 0
        #: What the caller adds about its own state (a job left running...).
        self.notes: list[str] = []

    def __str__(self) -> str:
        if self.still_to_store:
            size = (f"needs about {_mib(self.written + self.still_to_store)}: {_mib(self.written)} written, "
                    f"{_mib(self.still_to_store)} of pages still to store")
        else:
            size = f"{_mib(self.written)} written before it failed"
        hint = "; free space there, then try again" if self.os_errno in _NO_SPACE else ""
        notes = "".join(f", {note}" for note in self.notes)
        return (f"cannot store the checkpoint in {self.store}: {self.reason} while {self.doing} ({size}); "
                f"nothing was committed{notes}{hint}")


class SnapshotWriter:
    """Stores the pages and blobs of one snapshot, then commits its manifest.

    Created by ``Store.writer()``, it holds the store's write lock until
    ``commit()`` or ``abort()`` (leaving a ``with`` block without commit
    aborts).  Use it from one thread at a time.

    Invariants:
    * a page or blob is stored at most once in the store: ``add_pages`` and
      ``add_blob`` skip digests already indexed or already added by this
      writer; all-zero pages are never stored;
    * ``add_pages`` copies what it keeps before returning: the caller may
      reuse its buffer at once;
    * nothing this writer stores is referenced by a committed snapshot before
      ``commit()`` renames the manifest into ``snapshots/``: a crash before
      that leaves only unreferenced packs (garbage for gc) and ``*.tmp``
      files (deleted by the next writer); ``abort()`` deletes both, but
      for packs indexed before it (see there);
    * memory grows by ~100 bytes per new unique page (its digest in the dedup
      set and in a pack trailer) until commit.

    Running statistics: ``new_bytes`` (bytes added to pack files, trailers
    included), ``new_pages`` (pages stored), ``dedup_pages`` (pages found
    already stored), ``zero_pages``.
    """

    def __init__(self, store: StoreHandle, lock: WriteLock, pack_target: int) -> None:
        self._store = store
        self._lock = lock
        self._pack_target = pack_target
        self._sink: PackSink | None = None
        self._seen_pages: set[bytes] = set()
        self._seen_blobs: set[bytes] = set()
        self._frame = bytearray()
        self._frame_digests: list[bytes] = []
        self._manifest_tmp: str | None = None
        self._closed = False
        self.pages_added = 0        # every page add_pages took (zero and duplicate ones too)
        self.new_pages = 0
        self.dedup_pages = 0
        self.zero_pages = 0

    @property
    def new_bytes(self) -> int:
        """Bytes added to pack files so far (exact once committed; frames still queued are not counted)."""
        return self._sink.written if self._sink is not None else 0

    def __enter__(self) -> SnapshotWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.abort()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this snapshot writer was already committed or aborted")

    # -- pages and blobs -----------------------------------------------------

    def add_pages(self, buf: bytes | bytearray | memoryview, runs: Sequence[tuple[int, int]] | None = None) -> bytes:
        """Store the pages of ``buf`` (n * 4096 bytes) and return their n digests, concatenated.

        With ``runs`` ((first page, count) pairs, page indices into ``buf``): only those pages,
        in that order, and their digests (one call for a batch the caller keeps in pieces: per
        call, a lookup transaction and a zero scan cost as much as ~30 pages).

        All-zero pages get ZERO_DIGEST and are not stored; pages already in
        the store or already added by this writer are not stored again.
        """
        self._check_open()
        view = memoryview(buf)
        if not view.c_contiguous:
            raise ValueError("add_pages needs a contiguous buffer")
        if view.ndim != 1 or view.format != "B":
            view = view.cast("B")
        n, rest = divmod(view.nbytes, PAGE_SIZE)
        if rest:
            raise ValueError(f"buffer of {view.nbytes} bytes is not a whole number of {PAGE_SIZE}-byte pages")
        pages: list[int] | None = None
        if runs is not None:
            if any(first < 0 or count < 0 or first + count > n for first, count in runs):
                raise ValueError(f"page runs {list(runs)} reach outside a buffer of {n} pages")
            pages = [page for first, count in runs for page in range(first, first + count)]
        try:
            with self._storing("storing pages"):
                out = self._add_pages(view, pages)
        except BaseException:
            # Pages of a frame that failed to reach a pack are in the dedup set
            # but not stored: this writer can no longer be trusted to commit.
            self.abort()
            raise
        self.pages_added += len(out) // DIGEST_SIZE
        return out

    def _add_pages(self, view: memoryview, pages: list[int] | None) -> bytes:
        # The digests in one C call (zero pages get ZERO_DIGEST); then, per page, the dedup
        # test and the copy into the frame: ~0.5 us a page.  Locals and bound methods.
        digests = page_digests(view, pages)
        split = [digests[at : at + DIGEST_SIZE] for at in range(0, len(digests), DIGEST_SIZE)]
        seen = self._seen_pages
        remember = seen.add
        frame = self._frame
        frame_digests = self._frame_digests
        zeros = dups = done = 0
        added = len(seen)
        with self._store._index.view() as lookup:
            indexed = lookup.get_page
            try:
                for i, d in zip(range(len(split)) if pages is None else pages, split, strict=True):
                    done += 1
                    if d == ZERO_DIGEST:
                        zeros += 1
                        continue
                    if d in seen or indexed(d) is not None:
                        dups += 1
                        continue
                    remember(d)
                    off = i * PAGE_SIZE
                    frame += view[off : off + PAGE_SIZE]
                    frame_digests.append(d)
                    if len(frame_digests) == SUBMIT_PAGES:
                        self._flush_frame()
                        frame = self._frame
                        frame_digests = self._frame_digests
            except BaseException:
                self.pages_added += done            # how far it got: the size a failure reports
                raise
        self.zero_pages += zeros
        self.dedup_pages += dups
        self.new_pages += len(seen) - added
        return digests

    def drain(self) -> None:
        """Wait until the pages added so far are compressed and written.

        For a caller about to need the CPU for itself (incr freezes the job
        right after: background compression would lengthen the freeze).
        """
        self._check_open()
        if self._sink is not None:
            try:
                with self._storing("storing pages"):
                    self._sink.drain()
            except BaseException:
                self.abort()
                raise

    def add_blob(self, data: bytes | bytearray | memoryview) -> str:
        """Store ``data`` once (content-addressed) and return its hex id (BLAKE3-128)."""
        self._check_open()
        # The sink keeps the bytes until written: they must not change meanwhile.
        data = data if isinstance(data, bytes) else memoryview(data).tobytes()
        if len(data) > MAX_FRAME_BYTES:
            raise ValueError(f"blob of {len(data)} bytes exceeds the 4 GiB format limit")
        blob_id = page_digest(data)
        if blob_id in self._seen_blobs:
            return blob_id.hex()
        try:
            with self._storing("storing a blob"):
                with self._store._index.view() as lookup:
                    if lookup.get_blob(blob_id) is not None:
                        return blob_id.hex()
                self._frames_sink().submit(BLOB, data, blob_id)
        except BaseException:
            self.abort()
            raise
        self._seen_blobs.add(blob_id)
        return blob_id.hex()

    def _frames_sink(self) -> PackSink:
        if self._sink is None:
            self._sink = PackSink(self._store._layout.packs, self._pack_target)
        return self._sink

    def _flush_frame(self) -> None:
        """Hand the pending page frame to the sink and start a new one."""
        if not self._frame_digests:
            return
        raw, digests = self._frame, self._frame_digests
        self._frame, self._frame_digests = bytearray(), []
        self._frames_sink().submit(PAGES, raw, b"".join(digests))

    @contextlib.contextmanager
    def _storing(self, doing: str) -> Iterator[None]:
        """Turn an OSError (full disk, I/O error, read-only mount) or an LMDB error met while
        ``doing`` into a WriteFailed saying how far the snapshot got."""
        try:
            yield
        except (OSError, lmdb.Error) as e:
            if self._sink is not None and e is self._sink.error:
                doing = "writing pack data"
            if isinstance(e, OSError):
                reason, code = e.strerror or str(e), e.errno or 0
                if e.filename:
                    reason = f"{reason}: {e.filename}"
            else:
                reason, code = f"index: {e}", errno.ENOSPC if "No space left" in str(e) else 0
            raise WriteFailed(self._store.path, reason, doing, self.new_bytes, code) from e

    # -- commit --------------------------------------------------------------

    def _check_references(self, snapshot: store_pb2.Snapshot) -> None:
        """A manifest must not name what the store lacks: that would be a snapshot that cannot restore."""
        store = self._store
        if snapshot.parent and not store.has_snapshot(snapshot.parent):
            raise SnapshotNotFound(snapshot.parent, store.path)
        with store._index.view() as lookup:
            for ref in snapshot.page_maps:
                if ref.blob or len(ref.layers) != len(ref.layer_entries):
                    raise ValueError(f"page map {ref.region!r}: a version-{STORE_VERSION} manifest names layers")
                for blob in ref.layers:
                    if _BLOB_ID.fullmatch(blob) is None:
                        raise ValueError(f"page map {ref.region!r} has an invalid blob id {blob!r}")
                    key = bytes.fromhex(blob)
                    if key not in self._seen_blobs and lookup.get_blob(key) is None:
                        raise ValueError(f"page map {ref.region!r} refers to blob {blob}, which is not in the store")

    def commit(self, snapshot: store_pb2.Snapshot) -> str:
        """Make ``snapshot`` durable and return its id; the writer is closed afterwards.

        Order (docs/store-format.md, "Write ordering"): seal and fsync packs
        and their directories; index them in one LMDB transaction; set
        ``format_version``, ``stats.bytes_stored`` and ``stats.pages_new`` on
        ``snapshot``; write the manifest to ``snapshots/<id>.tmp`` and fsync
        it; rename it to ``snapshots/<id>`` and fsync the directory (the
        commit point); release the lock.  The id is the hex BLAKE3-128 of the
        serialized manifest.  On failure the writer aborts and the store is as
        before (plus the packs indexed before the failure, if it came after the index
        transaction); I/O errors raise WriteFailed.
        """
        self._check_open()
        store = self._store
        snapshots_dir = store._layout.snapshots
        try:
            with self._storing("reading the index"):
                self._check_references(snapshot)
            with self._storing("writing the store config"):
                upgrade_config(store._layout, store.config)
            with self._storing("writing pack data"):
                self._flush_frame()
                sealed = self._sink.seal() if self._sink is not None else []
            with self._storing("indexing packs"):
                if sealed:
                    store._index.add_packs(sealed)
                fault_point("indexed")
            with self._storing("writing the manifest"):
                snapshot.format_version = STORE_VERSION
                snapshot.stats.bytes_stored = self.new_bytes
                snapshot.stats.pages_new = self.new_pages
                data = snapshot.SerializeToString(deterministic=True)
                snapshot_id = hex_id(data)
                tmp = temp_name(snapshots_dir, snapshot_id)
                self._manifest_tmp = str(tmp)
                write_durable(tmp, data)
                fault_point("manifest-written")
                os.rename(tmp, snapshots_dir / snapshot_id)
                self._manifest_tmp = None
                fsync_dir(snapshots_dir)
        except BaseException:
            self.abort()
            raise
        self._close()
        return snapshot_id

    def abort(self) -> None:
        """Give up: delete this writer's temporary files and the packs it sealed that no index
        entry names, and release the lock.  Idempotent.

        Packs it sealed and indexed (the commit failed after its index transaction) stay: complete
        and valid, a later writer deduplicates against them, and a pack is never deleted without
        its index entries in the same step (an entry naming a missing pack would make a later
        writer skip a page it never stores).  Unreferenced, they are garbage for gc.
        """
        if self._closed:
            return
        try:
            if self._manifest_tmp is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._manifest_tmp)
                self._manifest_tmp = None
        finally:
            self._close(aborting=True)

    def _remove_unindexed(self, sink: PackSink) -> None:
        """The packs ``sink`` sealed that the index does not know: nothing can refer to them."""
        if not sink.sealed:
            return
        packs_dir = self._store._layout.packs

        def remove(name: str) -> None:
            path = pack_path(packs_dir, name)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            fsync_dir(path.parent)
            with contextlib.suppress(OSError):      # not empty: other packs live there
                path.parent.rmdir()

        try:
            removed = self._store._index.remove_unindexed_packs([p.name for p in sink.sealed], remove)
        except (OSError, lmdb.Error) as e:
            # Left in place they are harmless: the next writer indexes them, gc removes them.
            log.warning("could not remove the packs of an aborted snapshot from store %s: %s", self._store.path, e)
            return
        if removed:
            log.info("removed %d packs (%s) of the aborted snapshot from store %s", len(removed),
                     _mib(sum(p.size for p in sink.sealed if p.name in removed)), self._store.path)

    def _close(self, *, aborting: bool = False) -> None:
        self._closed = True
        self._frame = bytearray()
        self._frame_digests = []
        sink, self._sink = self._sink, None
        try:
            if sink is not None:
                sink.close()
                if aborting:
                    self._remove_unindexed(sink)
        finally:
            self._lock.release()
            self._store._writer_closed(self)
