"""The page store on real files: format, dedup, crash consistency, locking, recovery."""

from __future__ import annotations

import errno
import logging
import os
import random
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import blake3
import pytest

from incr.pagestore import (
    DIGEST_SIZE,
    PAGE_SIZE,
    STORE_VERSION,
    ZERO_DIGEST,
    AmbiguousId,
    CorruptPageMap,
    CorruptStore,
    InvalidSnapshotId,
    NotAStore,
    SnapshotNotFound,
    Store,
    StoreAccessError,
    StoreError,
    StoreLocked,
    StoreNotFound,
    UnsupportedVersion,
    decode_page_map,
    encode_page_map,
)
from incr.pagestore.pack import MAGIC, PACK_TARGET_SIZE, RAW, ZSTD, PackBuilder, iter_pack_files, parse_pack
from incr.proto import store_pb2

pytestmark = pytest.mark.timeout(60)


# -- helpers -----------------------------------------------------------------


def random_pages(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n * PAGE_SIZE)


def text_pages(n: int, seed: int) -> bytes:
    """Compressible pages, all distinct: numbered lines of text."""
    data = b"".join(b"seed %d line %09d: the quick brown fox\n" % (seed, i) for i in range(n * PAGE_SIZE // 30 + 1))
    return data[: n * PAGE_SIZE]


def page_digests(buf: bytes) -> bytes:
    out = []
    for off in range(0, len(buf), PAGE_SIZE):
        page = buf[off : off + PAGE_SIZE]
        out.append(ZERO_DIGEST if page == bytes(PAGE_SIZE) else blake3.blake3(page).digest(DIGEST_SIZE))
    return b"".join(out)


def commit_pages(
    store: Store, buf: bytes, epoch: float = 1.0, pack_target: int = PACK_TARGET_SIZE
) -> tuple[str, bytes]:
    """One snapshot holding ``buf`` as one region; returns (id, digests)."""
    with store.writer(pack_target=pack_target) as w:
        digests = w.add_pages(buf)
        n = len(buf) // PAGE_SIZE
        blob = w.add_blob(encode_page_map([0], [n], digests))
        ref = store_pb2.PageMapRef(region="r", layers=[blob], layer_entries=[n], pages=n)
        snap = store_pb2.Snapshot(epoch=epoch, kind="checkpoint", page_maps=[ref])
        return w.commit(snap), digests


def read_back(store: Store, digests: bytes) -> bytes:
    out = bytearray(len(digests) // DIGEST_SIZE * PAGE_SIZE)
    store.read_pages_into(digests, out)
    return bytes(out)


def all_frames(store_path: Path) -> list[store_pb2.Frame]:
    frames: list[store_pb2.Frame] = []
    for _name, path in iter_pack_files(store_path / "packs"):
        frames += parse_pack(path.read_bytes()).frames
    return frames


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def store(store_path: Path) -> Iterator[Store]:
    s = Store.open(store_path, create=True)
    yield s
    s.close()


# -- round trip, dedup, compression ------------------------------------------------


def test_round_trip_random_compressible_and_zero_pages(store: Store) -> None:
    buf = random_pages(70, 1) + bytes(5 * PAGE_SIZE) + text_pages(70, 2) + bytes(PAGE_SIZE) + random_pages(3, 3)
    sid, digests = commit_pages(store, buf)
    assert digests == page_digests(buf)
    assert digests[70 * DIGEST_SIZE : 75 * DIGEST_SIZE] == ZERO_DIGEST * 5
    assert read_back(store, digests) == buf
    # A fresh Store reads what another one wrote.
    store.close()
    with Store.open(store.path) as again:
        assert read_back(again, digests) == buf
        assert [i for i, _ in again.snapshots()] == [sid]
        assert again.verify() == []


def test_add_pages_accepts_memoryviews_and_bytearrays(store: Store) -> None:
    buf = bytearray(text_pages(4, 1) + bytes(PAGE_SIZE) + random_pages(2, 2))
    with store.writer() as w:
        from_slice = w.add_pages(memoryview(buf)[PAGE_SIZE:])  # not a whole object: the copying zero test
        from_whole = w.add_pages(buf)
        w.commit(store_pb2.Snapshot(epoch=1))
    assert from_whole == page_digests(bytes(buf))
    assert from_slice == from_whole[DIGEST_SIZE:]
    with pytest.raises(ValueError, match="whole number"), store.writer() as w:
        w.add_pages(b"x" * 100)


def test_dedup_within_and_across_snapshots_and_zero_pages_never_stored(store: Store) -> None:
    pages = random_pages(10, 1)
    buf = pages + pages + bytes(4 * PAGE_SIZE)  # every page twice, plus zeros
    with store.writer() as w:
        w.add_pages(buf)
        assert (w.new_pages, w.dedup_pages, w.zero_pages) == (10, 10, 4)
        snap = store_pb2.Snapshot(epoch=1)
        w.commit(snap)
    assert snap.stats.pages_new == 10
    first_bytes = snap.stats.bytes_stored
    assert first_bytes == store.stats()["pack_bytes"]
    assert first_bytes > 10 * PAGE_SIZE
    assert store.stats()["unique_pages"] == 10

    with store.writer() as w:
        w.add_pages(buf)
        assert (w.new_pages, w.dedup_pages, w.zero_pages, w.new_bytes) == (0, 20, 4, 0)
        snap = store_pb2.Snapshot(epoch=2)
        w.commit(snap)
    assert (snap.stats.pages_new, snap.stats.bytes_stored) == (0, 0)
    assert store.stats()["pack_bytes"] == first_bytes
    stored = b"".join(f.digests for f in all_frames(store.path))
    assert ZERO_DIGEST not in {stored[i : i + 16] for i in range(0, len(stored), 16)}


def test_raw_frames_for_random_data_zstd_for_text(store: Store) -> None:
    commit_pages(store, random_pages(64, 1) + text_pages(64, 2))
    frames = [f for f in all_frames(store.path) if f.kind == store_pb2.Frame.PAGES]
    assert len(frames) == 2
    by_first = {f.digests[:16]: f for f in frames}
    rnd = by_first[blake3.blake3(random_pages(64, 1)[:PAGE_SIZE]).digest(16)]
    txt = by_first[blake3.blake3(text_pages(64, 2)[:PAGE_SIZE]).digest(16)]
    assert (rnd.codec, rnd.length, rnd.raw_length) == (RAW, 64 * PAGE_SIZE, 64 * PAGE_SIZE)
    assert txt.codec == ZSTD and txt.level == 1 and txt.raw_length == 64 * PAGE_SIZE
    assert txt.length * 1.1 < txt.raw_length


def test_frames_hold_at_most_64_pages_and_packs_seal_at_target(store: Store) -> None:
    buf = random_pages(200, 7)
    # Each 64-page raw frame fills a pack; the last 8 pages and the page map are sealed by commit.
    sid, digests = commit_pages(store, buf, pack_target=200_000)
    frames = [f for f in all_frames(store.path) if f.kind == store_pb2.Frame.PAGES]
    assert sorted(len(f.digests) // 16 for f in frames) == [8, 64, 64, 64]
    packs = list(iter_pack_files(store.path / "packs"))
    assert len(packs) == 4
    for name, path in packs:
        data = path.read_bytes()
        assert data[:8] == data[-8:] == MAGIC
        assert blake3.blake3(data).hexdigest() == name
    assert store.load(sid)[1].stats.bytes_stored == sum(p.stat().st_size for _, p in packs)
    assert read_back(store, digests) == buf


def test_blobs_are_content_addressed_deduplicated_and_compressed_when_it_pays(store: Store) -> None:
    text = b"payload " * 10_000
    noise = random.Random(5).randbytes(50_000)
    with store.writer() as w:
        text_id = w.add_blob(text)
        assert text_id == blake3.blake3(text).hexdigest(16)
        assert w.add_blob(text) == text_id
        noise_id = w.add_blob(noise)
        empty_id = w.add_blob(b"")
        w.commit(store_pb2.Snapshot(epoch=1))
    with store.writer() as w:
        assert w.add_blob(text) == text_id
        assert w.new_bytes == 0
    assert store.read_blob(text_id) == text
    assert store.read_blob(noise_id) == noise
    assert store.read_blob(empty_id) == b""
    blobs = {f.digests.hex(): f for f in all_frames(store.path) if f.kind == store_pb2.Frame.BLOB}
    assert len(blobs) == 3
    assert blobs[text_id].codec == ZSTD and blobs[noise_id].codec == RAW
    with pytest.raises(CorruptStore, match="not in the store"):
        store.read_blob("00" * 16)


def test_page_maps_validate() -> None:
    digests = b"a" * 16 * 5
    data = encode_page_map([0, 10], [2, 3], digests)
    pm = decode_page_map(data)
    assert (list(pm.run_first), list(pm.run_count), pm.digests) == ([0, 10], [2, 3], digests)
    with pytest.raises(ValueError, match="digest bytes"):
        encode_page_map([0], [4], digests)
    with pytest.raises(ValueError, match="before the end"):
        encode_page_map([0, 1], [2, 3], digests)
    with pytest.raises(ValueError, match="empty"):
        encode_page_map([0, 5], [0, 5], digests)
    with pytest.raises(CorruptPageMap):
        decode_page_map(b"\xff\xff\xff")
    with pytest.raises(CorruptPageMap, match="digest bytes"):
        decode_page_map(store_pb2.PageMap(run_first=[0], run_count=[9], digests=digests).SerializeToString())


# -- reading -----------------------------------------------------------------------


def test_read_pages_into_decompresses_each_frame_once(store: Store) -> None:
    buf = text_pages(64, 3)  # one zstd frame
    _, digests = commit_pages(store, buf)
    store.close()
    with Store.open(store.path) as s:
        order = list(range(64)) * 3
        random.Random(1).shuffle(order)
        wanted = b"".join(digests[i * 16 : i * 16 + 16] for i in order) + ZERO_DIGEST
        out = bytearray(len(order) * PAGE_SIZE + PAGE_SIZE)
        s.read_pages_into(wanted, out)
        assert s.frames_decoded == 1
        for k, i in enumerate(order):
            assert out[k * PAGE_SIZE : (k + 1) * PAGE_SIZE] == buf[i * PAGE_SIZE : (i + 1) * PAGE_SIZE]
        assert out[-PAGE_SIZE:] == bytes(PAGE_SIZE)
        for i in range(64):  # page by page: the frame cache serves them
            s.read_pages_into(digests[i * 16 : i * 16 + 16], bytearray(PAGE_SIZE))
        assert s.frames_decoded == 1


def test_read_pages_by_frame_decodes_every_frame_once_whatever_the_batch(store: Store) -> None:
    buf = text_pages(256, 5)  # four zstd frames
    _, digests = commit_pages(store, buf)
    store.close()
    order = list(range(256)) * 2
    random.Random(2).shuffle(order)             # pages of every frame all over the request
    wanted = b"".join(digests[i * 16 : i * 16 + 16] for i in order) + ZERO_DIGEST * 3
    with Store.open(store.path) as s:
        seen: dict[int, bytes] = {}
        for indices, pages in s.read_pages_by_frame(wanted, bytearray(7 * PAGE_SIZE)):  # batches end mid-frame
            assert len(pages) == len(indices) * PAGE_SIZE and 0 < len(indices) <= 7
            for k, i in enumerate(indices):
                assert i not in seen
                seen[i] = bytes(pages[k * PAGE_SIZE : (k + 1) * PAGE_SIZE])
        assert s.frames_decoded == 4
    assert sorted(seen) == list(range(len(order) + 3))
    for k, i in enumerate(order):
        assert seen[k] == buf[i * PAGE_SIZE : (i + 1) * PAGE_SIZE]
    assert all(seen[len(order) + z] == bytes(PAGE_SIZE) for z in range(3))


def test_missing_page_names_its_digest(store: Store) -> None:
    commit_pages(store, random_pages(2, 1))
    ghost = blake3.blake3(b"never stored").digest(16)
    with pytest.raises(CorruptStore, match=ghost.hex()):
        store.read_pages_into(ghost, bytearray(PAGE_SIZE))
    with pytest.raises(ValueError):
        store.read_pages_into(ghost, bytearray(PAGE_SIZE + 1))
    assert store.has_pages(ghost + ZERO_DIGEST) == b"\x00\x01"


# -- the commit protocol and crashes ---------------------------------------------------

CHILD = """
import random, sys
from incr.pagestore import Store, encode_page_map, PAGE_SIZE
from incr.proto import store_pb2
store = Store.open(sys.argv[1])
buf = random.Random(int(sys.argv[2])).randbytes(100 * PAGE_SIZE)
with store.writer(pack_target=200_000) as w:
    digests = w.add_pages(buf)
    blob = w.add_blob(encode_page_map([0], [100], digests))
    ref = store_pb2.PageMapRef(region="r", layers=[blob], layer_entries=[100], pages=100)
    w.commit(store_pb2.Snapshot(epoch=2.0, page_maps=[ref]))
print("committed")
"""


def run_child(store_path: Path, fault: str, seed: int) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, INCR_FAULT=fault)
    return subprocess.run(
        [sys.executable, "-c", CHILD, str(store_path), str(seed)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("fault", ["pack-written", "indexed", "manifest-written"])
def test_crash_at_any_point_leaves_last_commit_intact(store: Store, fault: str) -> None:
    base = random_pages(20, 1)
    base_id, base_digests = commit_pages(store, base)

    child = run_child(store.path, fault, seed=9)
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert "committed" not in child.stdout

    assert [i for i, _ in store.snapshots()] == [base_id]
    assert read_back(store, base_digests) == base
    temporaries = list(store.path.glob("*/*.tmp"))
    if fault == "manifest-written":
        assert [p.parent.name for p in temporaries] == ["snapshots"]
    else:
        assert temporaries == []  # pack temporaries are renamed before these points

    # The next writer cleans up, and the crashed writer's sealed packs count as stored.
    crashed = random.Random(9).randbytes(100 * PAGE_SIZE)
    with store.writer() as w:
        assert list(store.path.glob("*/*.tmp")) == []
        w.add_pages(crashed)
        # The child's first pack (sealed at 200 kB: one 64-page raw frame) survived in every case.
        assert w.new_pages == (100 - 64 if fault == "pack-written" else 0)
        sid = w.commit(store_pb2.Snapshot(epoch=3.0))
    assert [i for i, _ in store.snapshots()] == [base_id, sid]
    assert store.verify() == []


def test_abort_removes_temporaries_and_releases_the_lock(store: Store) -> None:
    with store.writer() as w:
        w.add_pages(random_pages(3, 1))
        w.add_blob(b"x" * 1000)
    assert list(store.path.glob("packs/*")) == []  # nothing sealed, the pack temporary is gone
    assert store.snapshots() == []
    with store.writer(wait=False) as w:
        assert w.add_pages(random_pages(3, 1)) == page_digests(random_pages(3, 1))
        assert w.new_pages == 3  # aborted pages were never stored


def test_a_failing_disk_aborts_the_writer_and_leaves_the_store_as_it_was(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    base_id, base_digests = commit_pages(store, random_pages(4, 1))

    def full_disk(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "packs/x.tmp")

    monkeypatch.setattr(PackBuilder, "add_frame", full_disk)
    with pytest.raises(StoreAccessError, match="No space left on device"), store.writer() as w:
        # The sink thread fails on the first frame; the error surfaces at a later call.
        w.add_pages(random_pages(200, 2))
        w.commit(store_pb2.Snapshot(epoch=2))
    monkeypatch.undo()
    assert [i for i, _ in store.snapshots()] == [base_id]
    assert list(store.path.glob("*/*.tmp")) == []
    with store.writer(wait=False) as w:  # the lock was released
        w.abort()
    assert read_back(store, base_digests) == random_pages(4, 1)
    assert store.verify() == []


def test_commit_refuses_dangling_references(store: Store) -> None:
    with store.writer() as w:
        ref = store_pb2.PageMapRef(region="r", layers=["ab" * 16], layer_entries=[1], pages=1)
        snap = store_pb2.Snapshot(page_maps=[ref])
        with pytest.raises(ValueError, match="not in the store"):
            w.commit(snap)
    with store.writer() as w, pytest.raises(SnapshotNotFound):
        w.commit(store_pb2.Snapshot(parent="cd" * 16))
    assert store.snapshots() == []
    with store.writer(wait=False) as w:  # the failed commits released the lock
        w.abort()


# -- the index is a cache ---------------------------------------------------------------


def test_index_deleted_is_rebuilt_on_open(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    buf = text_pages(30, 1) + random_pages(90, 2)
    _, digests = commit_pages(store, buf, pack_target=100_000)
    packs = len(list(iter_pack_files(store.path / "packs")))
    assert packs >= 2
    store.close()
    for f in (store.path / "index").iterdir():
        f.unlink()
    (store.path / "index").rmdir()
    with caplog.at_level(logging.WARNING, logger="incr.pagestore"), Store.open(store.path) as s:
        assert f"from {packs} packs" in caplog.text
        assert read_back(s, digests) == buf
        assert s.verify() == []
        assert s.rebuild_index() == packs
        assert read_back(s, digests) == buf


def test_index_outgrowing_its_map_grows_it(store_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("incr.pagestore.index.MAP_SIZE", 256 * 1024)
    with Store.open(store_path, create=True) as s:
        buf = random_pages(6000, 4)  # ~6000 index entries of ~80 bytes: more than 256 KiB
        _, digests = commit_pages(s, buf)
        assert s.stats()["unique_pages"] == 6000
        assert read_back(s, digests) == buf


def test_unreadable_index_is_rebuilt(store: Store) -> None:
    buf = random_pages(5, 1)
    _, digests = commit_pages(store, buf)
    store.close()
    (store.path / "index" / "data.mdb").write_bytes(os.urandom(64 * 1024))
    with Store.open(store.path) as s:
        assert read_back(s, digests) == buf


def test_pack_missing_from_the_index_is_found_on_read(store: Store) -> None:
    # An index that lost an update (say, restored from an older copy) heals itself.
    first = random_pages(4, 1)
    commit_pages(store, first)
    store.close()
    stale = {f.name: f.read_bytes() for f in (store.path / "index").iterdir()}
    with Store.open(store.path) as s:
        second = random_pages(4, 2)
        _, d2 = commit_pages(s, second, epoch=2.0)
    for name, data in stale.items():
        (store.path / "index" / name).write_bytes(data)
    with Store.open(store.path) as s:
        assert read_back(s, d2) == second


# -- verify ------------------------------------------------------------------------------


@pytest.mark.parametrize("content", ["random", "text"])
def test_verify_finds_a_flipped_byte(store: Store, content: str) -> None:
    buf = random_pages(8, 1) if content == "random" else text_pages(8, 1)
    sid, digests = commit_pages(store, buf)
    assert store.verify() == []
    frame = next(f for f in all_frames(store.path) if f.kind == store_pb2.Frame.PAGES)
    [(name, path)] = [(n, p) for n, p in iter_pack_files(store.path / "packs")]
    data = bytearray(path.read_bytes())
    data[frame.offset + frame.length // 2] ^= 0x01
    os.chmod(path, 0o600)
    path.write_bytes(bytes(data))
    store.close()
    with Store.open(store.path) as s:
        problems = s.verify()
        assert any(name in p and "does not match its name" in p for p in problems), problems
        if content == "random":  # a raw frame: the page no longer matches its digest
            assert any(f"pack {name}: page" in p and "does not match its digest" in p for p in problems), problems
        else:  # a zstd frame: its checksum fails
            assert any(f"pack {name}, frame at {frame.offset}" in p for p in problems), problems
        assert any(sid in p for p in problems), problems  # the snapshot's pages are in a damaged pack
        with pytest.raises(CorruptStore):
            read_back(s, digests)


def test_verify_reports_damaged_manifests(store: Store) -> None:
    sid, _ = commit_pages(store, random_pages(2, 1))
    manifest = store.path / "snapshots" / sid
    manifest.write_bytes(manifest.read_bytes() + b"\x00")
    assert any(sid in p and "does not match its id" in p for p in store.verify())
    assert store.snapshots() == []  # left out, with an error logged


# -- permissions ----------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o000, 0o277])
def test_files_0600_and_directories_0700_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    target = tmp_path / "open-dir"
    target.mkdir(mode=0o755)
    old = os.umask(umask)
    try:
        with Store.open(target, create=True) as s:
            commit_pages(s, random_pages(3, 1) + text_pages(3, 2), pack_target=10_000)
        # A writer killed after writing its manifest leaves a temporary file: private too.
        assert run_child(target, "manifest-written", seed=3).returncode == -signal.SIGKILL
    finally:
        os.umask(old)
    assert list(target.glob("snapshots/*.tmp"))
    seen = 0
    for root, _dirs, files in os.walk(target):
        assert stat.S_IMODE(os.stat(root).st_mode) == 0o700, root
        for f in files:
            assert stat.S_IMODE(os.stat(Path(root) / f).st_mode) == 0o600, f
            seen += 1
    assert seen >= 8  # config, manifest and its temporary, packs, lock, LMDB's two files


# -- opening -------------------------------------------------------------------------------


def test_open_missing_empty_and_foreign_directories(tmp_path: Path) -> None:
    with pytest.raises(StoreNotFound) as exc:
        Store.open(tmp_path / "nope")
    assert str(exc.value) == (
        f'store {tmp_path / "nope"} does not exist (create one with "incr checkpoint", or pass --store)'
    )
    (tmp_path / "empty").mkdir()
    with pytest.raises(StoreNotFound):
        Store.open(tmp_path / "empty")
    Store.open(tmp_path / "empty", create=True).close()
    Store.open(tmp_path / "empty").close()
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "thesis.tex").write_text("...")
    with pytest.raises(NotAStore, match="not empty and has no config"):
        Store.open(tmp_path / "foreign", create=True)
    (tmp_path / "file").write_text("")
    with pytest.raises(NotAStore, match="not a directory"):
        Store.open(tmp_path / "file", create=True)


def test_unsupported_version_is_refused(store_path: Path) -> None:
    Store.open(store_path, create=True).close()
    config = store_pb2.StoreConfig.FromString((store_path / "config").read_bytes())
    config.version = STORE_VERSION + 1
    (store_path / "config").write_bytes(config.SerializeToString())
    with pytest.raises(UnsupportedVersion) as exc:
        Store.open(store_path)
    message = str(exc.value)
    assert f"version {STORE_VERSION + 1}" in message and f"version {STORE_VERSION}" in message
    assert "\n" not in message
    assert isinstance(exc.value, StoreError) and exc.value.exit_code == 1


def test_foreign_config_is_not_a_store(store_path: Path) -> None:
    Store.open(store_path, create=True).close()
    (store_path / "config").write_bytes(store_pb2.StoreConfig(format="borg", version=1).SerializeToString())
    with pytest.raises(NotAStore):
        Store.open(store_path)


# -- snapshot ids -------------------------------------------------------------------------


def predicted_id(epoch: float) -> str:
    """The id commit() gives an empty snapshot with this epoch (it sets these fields first)."""
    snap = store_pb2.Snapshot(epoch=epoch, format_version=STORE_VERSION)
    snap.stats.bytes_stored = 0
    snap.stats.pages_new = 0
    return blake3.blake3(snap.SerializeToString(deterministic=True)).hexdigest(16)


def test_prefix_lookup_ambiguous_and_not_found(store: Store) -> None:
    by_prefix: dict[str, float] = {}
    epoch = 0.0
    while True:  # two epochs whose ids share 4 hex digits (~300 tries by the birthday bound)
        epoch += 1
        prefix = predicted_id(epoch)[:4]
        if prefix in by_prefix:
            break
        by_prefix[prefix] = epoch
    ids = []
    for e in (by_prefix[prefix], epoch, 0.5):
        with store.writer() as w:
            ids.append(w.commit(store_pb2.Snapshot(epoch=e)))
    a, b, c = ids
    assert a[:4] == b[:4] == prefix
    assert [i for i, _ in store.snapshots()] == [c, a, b]  # sorted by epoch
    with pytest.raises(AmbiguousId, match="matches 2 snapshots"):
        store.load(prefix)
    common = next(i for i in range(32) if a[i] != b[i])
    assert store.load(a[: common + 1])[0] == a
    assert store.load(b.upper())[0] == b
    assert store.load(c[:4])[1].epoch == 0.5
    absent = next(p for p in ("0000", "ffff", "1234", "abcd") if not any(i.startswith(p) for i in ids))
    with pytest.raises(SnapshotNotFound):
        store.load(absent)
    for bad in ("abc", "zzzz", "", "0" * 33):
        with pytest.raises(InvalidSnapshotId):
            store.load(bad)


# -- the write lock -------------------------------------------------------------------------


def test_two_writers_serialize_on_the_lock(store: Store) -> None:
    waiting = threading.Event()

    class Spy(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "waiting for the store lock held by pid" in record.getMessage():
                waiting.set()

    spy = Spy()
    logging.getLogger("incr.pagestore").addHandler(spy)
    order: list[str] = []
    errors: list[BaseException] = []

    def second_writer() -> None:
        try:
            with Store.open(store.path) as other, other.writer() as w:
                order.append("second acquired")
                w.commit(store_pb2.Snapshot(epoch=2.0))
        except BaseException as e:
            errors.append(e)

    try:
        with store.writer() as first:
            refused: list[BaseException] = []

            def try_once() -> None:
                try:
                    with Store.open(store.path) as other:
                        other.writer(wait=False)
                except BaseException as e:
                    refused.append(e)

            attempt = threading.Thread(target=try_once)
            attempt.start()
            attempt.join(20)
            assert len(refused) == 1 and isinstance(refused[0], StoreLocked), refused
            assert f"locked by another writer (pid {os.getpid()})" in str(refused[0])
            with pytest.raises(RuntimeError, match="already has an open writer"):
                store.writer()
            with pytest.raises(RuntimeError, match="already has an open writer"), Store.open(store.path) as same:
                same.writer()
            thread = threading.Thread(target=second_writer)
            thread.start()
            assert waiting.wait(20), "the second writer never waited for the lock"
            order.append("first commits")
            first.commit(store_pb2.Snapshot(epoch=1.0))
        thread.join(20)
    finally:
        logging.getLogger("incr.pagestore").removeHandler(spy)
    assert not errors, errors
    assert order == ["first commits", "second acquired"]
    assert [s.epoch for _, s in store.snapshots()] == [1.0, 2.0]


def test_stats_and_verify_on_a_healthy_store(store: Store) -> None:
    assert store.stats()["snapshots"] == 0
    commit_pages(store, random_pages(3, 1) + text_pages(3, 1))
    st = store.stats()
    assert (st["packs"], st["unique_pages"], st["snapshots"], st["blobs"]) == (1, 6, 1, 1)
    assert st["bytes_on_disk"] >= st["pack_bytes"] > 3 * PAGE_SIZE
    assert store.verify() == []
