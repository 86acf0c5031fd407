"""The LMDB index: where every page and blob lives.  A cache, rebuildable from the packs.

Sub-databases (docs/store-format.md, "Index"):

``pages``  page digest (16) -> Location
``blobs``  blob id (16) -> Location
``packs``  pack name (32 bytes) -> u64 LE pack size: the packs already indexed
``meta``   ``version`` and ``store_id``, written in the same transaction as a
           full rebuild (or the creation of an empty index): their presence
           means the index is complete for the packs listed in ``packs``.
``needs``  snapshot id (16) -> the names (32 bytes each) of the packs holding
           what it needs, found through this index (dropped with it)
"""

from __future__ import annotations

import array
import contextlib
import os
import struct
import threading
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import Final, NamedTuple, TypeVar

import lmdb

from incr._native import ffi, lib

from .fsutil import FILE_MODE, make_dir
from .pack import BLOB, PAGES, SealedPack

INDEX_VERSION: Final = b"1"
#: Initial LMDB map size: address space only (the file grows with use).  At
#: ~90 bytes per page entry it holds ~700M pages, 2.8 TiB of unique memory;
#: writes that overflow it double it and retry.
MAP_SIZE: Final = 1 << 36
#: pack name (binary), frame offset, frame length, raw length, page slot in frame, codec.
LOCATION: Final = struct.Struct("<32sQIIHB")
_SIZE: Final = struct.Struct("<Q")
_LMDB_FILES: Final = ("data.mdb", "lock.mdb")

T = TypeVar("T")


def _file_key(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path / "data.mdb")
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


class Location(NamedTuple):
    """Where one page (or blob) is: a frame of a pack, the page's slot in that frame, and the
    blob id of the zstd dictionary the frame needs (b"": none)."""

    pack: bytes
    offset: int
    length: int
    raw_length: int
    slot: int
    codec: int
    dict: bytes = b""

    @classmethod
    def decode(cls, value: bytes) -> Location:
        pack, offset, length, raw_length, slot, codec = LOCATION.unpack_from(value)
        return cls(pack, offset, length, raw_length, slot, codec, value[LOCATION.size :])

    @property
    def frame_key(self) -> tuple[bytes, int]:
        return self.pack, self.offset


def _entries(trailer: bytes, name: bytes, kind: int, most: int) -> list[tuple[bytes, bytes]]:
    """The index entries of the frames of ``kind`` of a pack (``trailer``, serialized; ``name``, 32
    bytes): (digest or blob id, LOCATION + the frame's dictionary id, if any); made in C (in
    Python, 1.3 us a page of a checkpoint's commit, after everything else)."""
    keys = bytearray(16 * most)
    values = bytearray(lib.INCR_INDEX_VALUE_MAX * most)
    lens = array.array("I", bytes(4 * most))
    n = lib.incr_index_entries(trailer, len(trailer), name, kind, ffi.from_buffer(keys, require_writable=True),
                               ffi.from_buffer(values, require_writable=True),
                               ffi.from_buffer("uint32_t[]", lens, require_writable=True), most)
    if n < 0:
        raise ValueError(f"pack {name.hex()}: its trailer does not list its frames as the index needs them")
    stride = lib.INCR_INDEX_VALUE_MAX
    key_bytes, value_bytes = bytes(keys), bytes(values)
    return [(key_bytes[16 * i : 16 * i + 16], value_bytes[stride * i : stride * i + lens[i]]) for i in range(n)]


class IndexView:
    """A consistent read-only view of the index (one LMDB read transaction).

    ``get_page(digest)`` and ``get_blob(blob_id)`` return the packed Location
    or None; they are bound C calls because the writer's dedup test and the
    read path call them once per page.
    """

    def __init__(self, txn: lmdb.Transaction[bytes], pages: object, blobs: object) -> None:
        self.get_page: Callable[[bytes], bytes | None] = partial(txn.get, db=pages)
        self.get_blob: Callable[[bytes], bytes | None] = partial(txn.get, db=blobs)


class Index:
    """LMDB environment under ``STORE/index/``.

    Invariant: after every committed transaction, each pack listed in
    ``packs`` has every page and blob of its trailer present in ``pages`` /
    ``blobs`` (pointing at it, or at another indexed pack with the same
    content: the last one indexed wins).

    Concurrency: LMDB allows one write transaction at a time per environment,
    across processes, and readers that never block nor are blocked.  Every
    method uses its own short transaction, so an Index may be shared by
    threads.  Not fork-safe: a child must open its own.  Never on a network
    file system (LMDB's locking relies on shared memory).
    """

    def __init__(self, path: Path) -> None:
        """Use ``Index.open``: one LMDB environment may be open only once per process."""
        self.path = path
        self._refs = 0
        make_dir(path)
        self._env = lmdb.open(
            str(path),
            map_size=MAP_SIZE,
            subdir=True,
            max_dbs=5,
            mode=FILE_MODE,
            readahead=False,
            meminit=False,
        )
        try:
            for name in _LMDB_FILES:
                with contextlib.suppress(FileNotFoundError, PermissionError):
                    os.chmod(path / name, FILE_MODE)
            self._meta = self._env.open_db(b"meta")
            self._pages = self._env.open_db(b"pages")
            self._blobs = self._env.open_db(b"blobs")
            self._packs = self._env.open_db(b"packs")
            self._needs = self._env.open_db(b"needs")
            if not is_sealed(path):
                self._seal()                # creating the databases wrote to a new file
        except BaseException:
            self._env.close()
            raise

    @classmethod
    def open(cls, path: Path) -> Index:
        """The process's Index of ``path``, shared by every Store open on it; ``close()`` it once.

        LMDB's locks are per (process, file): a second environment on the
        same files in one process would share, then drop, the first one's
        locks.  So Stores opened twice on one store share one environment,
        identified by the data file's identity (a re-created index is new).
        """
        with _OPEN_LOCK:
            key = _file_key(path)
            index = _OPEN.get(key) if key is not None else None
            if index is None:
                index = cls(path)
                key = _file_key(path)
                assert key is not None
                _OPEN[key] = index
            index._refs += 1
            return index

    @staticmethod
    def is_open(path: Path) -> bool:
        """Whether this process has the index at ``path`` open (then it wrote it, or trusts it)."""
        key = _file_key(path)
        with _OPEN_LOCK:
            return key is not None and key in _OPEN

    def close(self) -> None:
        """Release this user's share; the environment closes with the last one."""
        with _OPEN_LOCK:
            self._refs -= 1
            if self._refs > 0:
                return
            for key, index in list(_OPEN.items()):
                if index is self:
                    del _OPEN[key]
            self._env.close()

    def _read(self) -> lmdb.Transaction[bytes]:
        """A read transaction, adopting a map another process has grown meanwhile."""
        try:
            return self._env.begin()
        except lmdb.MapResizedError:
            self._env.set_mapsize(0)
            return self._env.begin()

    @contextlib.contextmanager
    def view(self) -> Iterator[IndexView]:
        with self._read() as txn:
            yield IndexView(txn, self._pages, self._blobs)

    def is_complete(self, store_id: str) -> bool:
        with self._read() as txn:
            return (
                txn.get(b"version", db=self._meta) == INDEX_VERSION
                and txn.get(b"store_id", db=self._meta) == store_id.encode()
            )

    def indexed_packs(self) -> set[str]:
        with self._read() as txn:
            return {bytes(k).hex() for k in txn.cursor(self._packs).iternext(keys=True, values=False)}

    def pack_sizes(self) -> dict[str, int]:
        with self._read() as txn:
            return {bytes(k).hex(): _SIZE.unpack(v)[0] for k, v in txn.cursor(self._packs)}

    def counts(self) -> dict[str, int]:
        with self._read() as txn:
            return {
                "pages": txn.stat(self._pages)["entries"],
                "blobs": txn.stat(self._blobs)["entries"],
                "packs": txn.stat(self._packs)["entries"],
            }

    def needs(self, snapshot_id: str) -> bytes | None:
        """The packs snapshot ``snapshot_id`` needs, as recorded by ``put_needs`` (None: not yet)."""
        with self._read() as txn:
            value = txn.get(bytes.fromhex(snapshot_id), db=self._needs)
        return None if value is None else bytes(value)

    def put_needs(self, snapshot_id: str, packs: bytes) -> None:
        self._write(lambda txn: txn.put(bytes.fromhex(snapshot_id), packs, db=self._needs))

    def add_packs(self, packs: Iterable[SealedPack], *, overwrite: bool = True) -> int:
        """Index ``packs`` in one transaction (all or nothing); return how many.  Without
        ``overwrite``, a page or blob already indexed keeps its place (packs found on disk
        unindexed: the old packs a killed prune had not deleted yet must not win back the
        pages it had moved, or the next prune would find the new packs dead)."""
        packs = list(packs)
        return self._write(lambda txn: self._put_packs(txn, packs, overwrite=overwrite))

    def rebuild(
        self, store_id: str, load_packs: Callable[[], Iterable[SealedPack]], *, only_if_incomplete: bool
    ) -> int | None:
        """Replace the whole index by the packs ``load_packs()`` yields, in one transaction.

        With ``only_if_incomplete``, do nothing (return None) if the index is
        complete once the write transaction is held: a concurrent process may
        have rebuilt it while this one waited.
        """

        def fill(txn: lmdb.Transaction[bytes]) -> int | None:
            if (
                only_if_incomplete
                and txn.get(b"version", db=self._meta) == INDEX_VERSION
                and txn.get(b"store_id", db=self._meta) == store_id.encode()
            ):
                return None
            for db in (self._meta, self._pages, self._blobs, self._packs, self._needs):
                txn.drop(db, delete=False)
            count = self._put_packs(txn, load_packs())
            txn.put(b"version", INDEX_VERSION, db=self._meta)
            txn.put(b"store_id", store_id.encode(), db=self._meta)
            return count

        return self._write(fill)

    def _put_packs(self, txn: lmdb.Transaction[bytes], packs: Iterable[SealedPack], *,
                   overwrite: bool = True) -> int:
        count = 0
        for pack in packs:
            name = bytes.fromhex(pack.name)
            trailer = pack.trailer.SerializeToString()
            most = len(trailer) // 16               # every entry's digest is 16 bytes of it
            pages, blobs = _entries(trailer, name, PAGES, most), _entries(trailer, name, BLOB, most)
            txn.cursor(db=self._pages).putmulti(pages, overwrite=overwrite)
            txn.cursor(db=self._blobs).putmulti(blobs, overwrite=overwrite)
            txn.put(name, _SIZE.pack(pack.size), db=self._packs)
            count += 1
        return count

    # -- for SnapshotWriter.abort() (disk-full work, kept apart) --------------

    def remove_unindexed_packs(self, names: Iterable[str], remove: Callable[[str], None]) -> list[str]:
        """Call ``remove(name)`` for each pack of ``names`` the index does not list; return those.

        Inside a write transaction, so that no other process indexes one of them meanwhile (a
        Store.open rebuilding the index from the packs on disk): an index entry of a removed pack
        would let a later writer deduplicate against a page that is gone.
        """
        names = list(names)

        def check(txn: lmdb.Transaction[bytes]) -> list[str]:
            removed = []
            for name in names:
                if txn.get(bytes.fromhex(name), db=self._packs) is None:
                    remove(name)
                    removed.append(name)
            return removed

        return self._write(check)

    def _write(self, fill: Callable[[lmdb.Transaction[bytes]], T]) -> T:
        """Run ``fill`` in a write transaction, growing the map and retrying when it is full."""
        while True:
            try:
                with self._env.begin(write=True) as txn:
                    result = fill(txn)
                self._seal()
                return result
            except lmdb.MapFullError:
                self._env.set_mapsize(self._env.info()["map_size"] * 2)
            except lmdb.MapResizedError:
                self._env.set_mapsize(0)


    def _seal(self) -> None:
        """Record what ``data.mdb`` looks like after this process wrote it (see ``is_sealed``).

        Two processes writing one after the other may rename their seals in the other order,
        the older last: so the file is looked at again after the rename, until the seal says
        what it is (the last sealer to finish leaves it right)."""
        for _ in range(8):
            seal = _identity(self.path)
            if seal is None:
                return
            tmp = self.path / f"{SEAL}.{os.getpid()}.{threading.get_ident()}.tmp"
            tmp.write_text(seal)
            os.chmod(tmp, FILE_MODE)
            os.rename(tmp, self.path / SEAL)
            if _identity(self.path) == seal:
                return


#: File beside the LMDB files: identity, size and mtime of data.mdb as incr last left it.
SEAL: Final = "seal"


def _identity(path: Path) -> str | None:
    try:
        st = os.stat(path / "data.mdb")
    except FileNotFoundError:
        return None
    return f"{st.st_ino} {st.st_size} {st.st_mtime_ns}\n"


def is_sealed(path: Path) -> bool:
    """Whether ``data.mdb`` is as incr last left it, or absent (a new index).

    LMDB trusts its file: a page number damaged in it makes a read fault (SIGBUS) instead of
    failing, which no check after opening can catch.  So an index changed by anything but
    incr's own transactions (written into, truncated, copied over) is not opened at all but
    rebuilt; so is one whose seal a crash left behind its last transaction."""
    identity = _identity(path)
    if identity is None:
        return True
    try:
        return (path / SEAL).read_text() == identity
    except (FileNotFoundError, UnicodeDecodeError):
        return False


_OPEN: dict[tuple[int, int], Index] = {}
_OPEN_LOCK = threading.Lock()
