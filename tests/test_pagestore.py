"""The page store on real files: format, dedup, crash consistency, locking, recovery."""

from __future__ import annotations

import array
import errno
import fcntl
import logging
import math
import mmap
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import blake3
import pytest
import zstandard

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
from incr.pagestore import sink as sink_module
from incr.pagestore.index import LOCATION
from incr.pagestore.index import _entries as index_entries
from incr.pagestore.pack import (
    BLOB,
    DICT_SAMPLE_PAGES,
    DICT_WINDOW_PAGES,
    MAGIC,
    PACK_TARGET_SIZE,
    PAGES,
    RAW,
    SUBMIT_PAGES,
    TAIL,
    ZSTD,
    FrameTable,
    PackBuilder,
    PackFormatError,
    PageEncoder,
    frame_table,
    iter_pack_files,
    new_compressor,
    pack_path,
    parse_pack,
)
from incr.pagestore.reads import FetchBuffer, ReadPlan
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


def read_back(store: Store, digests: bytes, *, once: bool = False) -> bytes:
    out = bytearray(len(digests) // DIGEST_SIZE * PAGE_SIZE)
    store.read_pages_into(digests, out, once=once)
    return bytes(out)


def flip_a_bit(pack: Path, frame: store_pb2.Frame) -> None:
    """Damage `frame` of the pack file in place: one bit in its middle."""
    data = bytearray(pack.read_bytes())
    data[frame.offset + frame.length // 2] ^= 0x01
    os.chmod(pack, 0o600)
    pack.write_bytes(bytes(data))


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



def test_add_pages_of_runs_stores_and_names_only_those_pages(store: Store) -> None:
    buf = text_pages(3, 1) + bytes(PAGE_SIZE) + random_pages(4, 2)
    runs = [(1, 3), (6, 2)]         # a zero page among them; pages 0, 4 and 5 left out
    with store.writer() as w:
        digests = w.add_pages(buf, runs)
        assert w.pages_added == 5 and w.zero_pages == 1 and w.new_pages == 4
        w.commit(store_pb2.Snapshot(epoch=1))
    whole = page_digests(buf)
    wanted = [1, 2, 3, 6, 7]
    assert digests == b"".join(whole[i * DIGEST_SIZE : (i + 1) * DIGEST_SIZE] for i in wanted)
    kept = [d for d in (digests[i : i + DIGEST_SIZE] for i in range(0, len(digests), DIGEST_SIZE)) if d != ZERO_DIGEST]
    assert read_back(store, b"".join(kept)) == b"".join(buf[i * PAGE_SIZE : (i + 1) * PAGE_SIZE] for i in wanted
                                                        if i != 3)
    with store.writer() as w:
        left = w.add_pages(buf, [(0, 1)])
        assert w.new_pages == 1          # page 0 was never stored before
    assert left == whole[:DIGEST_SIZE]
    with pytest.raises(ValueError, match="reach outside"), store.writer() as w:
        w.add_pages(buf, [(7, 2)])

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


def array_pages(n: int) -> bytes:
    """Compressible pages with nothing in common across pages: a smooth float64 field."""
    return array.array("d", (math.sin(i * 1e-5) * 300.0 + 273.15 for i in range(n * PAGE_SIZE // 8))).tobytes()


def test_every_page_is_a_frame_raw_if_incompressible(store: Store) -> None:
    commit_pages(store, random_pages(64, 1) + array_pages(64) + text_pages(64, 2))
    frames = {f.digests: f for f in all_frames(store.path) if f.kind == store_pb2.Frame.PAGES}
    assert len(frames) == 3 * 64
    for i in range(64):
        rnd = frames[blake3.blake3(random_pages(64, 1)[i * PAGE_SIZE : (i + 1) * PAGE_SIZE]).digest(16)]
        assert (rnd.codec, rnd.length, rnd.raw_length) == (RAW, PAGE_SIZE, PAGE_SIZE)
        for buf in (array_pages(64), text_pages(64, 2)):
            page = frames[blake3.blake3(buf[i * PAGE_SIZE : (i + 1) * PAGE_SIZE]).digest(16)]
            assert (page.codec, page.level, page.raw_length) == (ZSTD, 1, PAGE_SIZE)
            assert page.length * 1.1 < PAGE_SIZE


def test_a_pack_built_in_c_is_byte_for_byte_the_one_protobuf_describes(tmp_path: Path) -> None:
    """PackBuilder.add_pages (the frames' bytes and trailer entries made in C) and add_frames
    (a Frame message a page) build the same pack: the same bytes, so the same name, and a
    trailer that is protobuf's deterministic encoding of what it lists (large offsets, raw and
    zstd frames, with and without a dictionary)."""
    pages = random_pages(3, 1) + array_pages(40) + text_pages(20, 2)
    n = len(pages) // PAGE_SIZE
    digests = page_digests(pages)
    compressor = new_compressor()
    dictionary = zstandard.train_dictionary(8192, [text_pages(1, s) for s in range(64)])
    encoder = PageEncoder()
    sealed = []
    for way in ("c", "protobuf"):
        (tmp_path / way).mkdir()
        builder = PackBuilder(tmp_path / way)
        builder.add_frames(BLOB, [(RAW, 0, b"x" * 300_000, 300_000, 0)], b"b" * 16)     # offsets of 3 bytes
        index = builder.add_dict(dictionary, compressor)
        for encoded, k in ((encoder.encode(pages), 0), (encoder.encode(pages, dictionary, index), index)):
            assert encoded.dict_index == k
            if way == "c":
                builder.add_pages(encoded, digests)
            else:
                builder.add_frames(PAGES, encoded.frames(), digests)
        sealed.append(builder.seal())
    c, pb = sealed
    assert c.name == pb.name and c.size == pb.size
    data = pack_path(tmp_path / "c", c.name).read_bytes()
    assert data == pack_path(tmp_path / "protobuf", pb.name).read_bytes()
    trailer = parse_pack(data)
    assert trailer == c.trailer
    length = TAIL.unpack(data[-TAIL.size :])[0]
    assert data[-TAIL.size - length : -TAIL.size] == trailer.SerializeToString(deterministic=True)
    page_frames = [f for f in trailer.frames if f.kind == PAGES]
    assert len(page_frames) == 2 * n and {f.codec for f in page_frames} == {RAW, ZSTD}
    assert {f.dict for f in page_frames if f.codec == ZSTD} == {0, index}
    assert all(f.dict == 0 and f.level == 0 for f in page_frames if f.codec == RAW)


def record_pages(n: int, seed: int) -> list[bytes]:
    """Pages of records drawn from one pool (like a job's objects): a page alone barely
    compresses, but what the pages have in common is most of each."""
    rnd = random.Random(seed)
    pool = [rnd.randbytes(32) for _ in range(400)]
    return [b"".join(rnd.choice(pool) for _ in range(PAGE_SIZE // 32)) for _ in range(n)]


def store_scattered(store: Store, pages: list[bytes]) -> tuple[str, bytes]:
    """One snapshot of `pages`, each added alone (as scattered dirty pages are)."""
    with store.writer() as w:
        digests = b"".join(w.add_pages(page) for page in pages)
        n = len(pages)
        blob = w.add_blob(encode_page_map([0], [n], digests))
        ref = store_pb2.PageMapRef(region="r", layers=[blob], layer_entries=[n], pages=n)
        return w.commit(store_pb2.Snapshot(epoch=1, kind="checkpoint", page_maps=[ref])), digests


def test_scattered_pages_are_compressed_with_a_dictionary_of_their_pack(store_path: Path) -> None:
    pages = record_pages(3 * DICT_SAMPLE_PAGES, 1)
    sizes = {}
    for with_dict in (False, True):
        path = store_path / str(with_dict)
        with Store.open(path, create=True) as st:
            if not with_dict:
                with pytest.MonkeyPatch.context() as mp:
                    mp.setattr(sink_module, "train_dictionary", lambda *a: None)
                    sid, digests = store_scattered(st, pages)
            else:
                sid, digests = store_scattered(st, pages)
            sizes[with_dict] = st.load(sid)[1].stats.bytes_stored
        [(_, pack)] = list(iter_pack_files(path / "packs"))
        trailer = parse_pack(pack.read_bytes())
        page_frames = [f for f in trailer.frames if f.kind == store_pb2.Frame.PAGES]
        assert all(len(f.digests) == 16 for f in page_frames)       # scattered: a frame each
        if with_dict:
            [dict_id] = trailer.dicts
            assert all(f.dict == 1 for f in page_frames if f.codec == ZSTD)
            blob = next(f for f in trailer.frames if f.kind == store_pb2.Frame.BLOB and f.digests == dict_id)
            assert blob.offset < min(f.offset for f in page_frames)
        else:
            assert list(trailer.dicts) == [] and not any(f.dict for f in page_frames)
        shutil.rmtree(path / "index")                   # read back through a rebuilt index too
        with Store.open(path) as st:
            assert read_back(st, digests) == b"".join(pages)
            order = list(range(len(pages)))
            random.Random(1).shuffle(order)
            shuffled = b"".join(digests[i * 16 : i * 16 + 16] for i in order)
            assert read_back(st, shuffled) == b"".join(pages[i] for i in order)
            assert st.verify() == []
    assert sizes[True] * 1.2 < sizes[False], sizes


def test_index_entries_made_in_c_are_the_trailers(store_path: Path) -> None:
    """index._entries (C) gives each page and blob of a pack the entry the trailer says: its
    location, slot and codec, and the dictionary of a frame that has one."""
    pages = record_pages(2 * DICT_SAMPLE_PAGES, 4)
    rnd = random_pages(40, 5)
    pages += [rnd[i : i + PAGE_SIZE] for i in range(0, len(rnd), PAGE_SIZE)]        # RAW frames
    with Store.open(store_path, create=True) as st:
        store_scattered(st, pages)
        with st.writer() as w:
            w.add_pages(text_pages(70, 6))
            w.add_blob(b"a blob")
            w.commit(store_pb2.Snapshot(epoch=2))
    kinds: set[tuple[object, int]] = set()
    for name, pack in iter_pack_files(store_path / "packs"):
        trailer = parse_pack(pack.read_bytes())
        key = bytes.fromhex(name)
        want: dict[int, list[tuple[bytes, bytes]]] = {PAGES: [], BLOB: []}
        for f in trailer.frames:
            extra = trailer.dicts[f.dict - 1] if f.kind == PAGES and f.dict else b""
            for slot in range(len(f.digests) // 16):
                want[f.kind].append((f.digests[slot * 16 : slot * 16 + 16],
                                     LOCATION.pack(key, f.offset, f.length, f.raw_length, slot, f.codec) + extra))
        data = trailer.SerializeToString()
        for kind in (PAGES, BLOB):
            assert index_entries(data, key, kind, len(data) // 16) == want[kind]
        kinds.update(("dict" if f.dict else f.codec, f.kind) for f in trailer.frames)
    assert {("dict", PAGES), (RAW, PAGES), (ZSTD, PAGES), (RAW, BLOB)} <= kinds, kinds
    with pytest.raises(ValueError):
        index_entries(b"\x12\x05\x08", bytes(32), PAGES, 10)


def test_incompressible_pages_get_no_dictionary(store: Store) -> None:
    rnd = random_pages(2 * DICT_SAMPLE_PAGES, 3)
    _, digests = store_scattered(store, [rnd[i : i + PAGE_SIZE] for i in range(0, len(rnd), PAGE_SIZE)])
    assert all(list(parse_pack(p.read_bytes()).dicts) == [] for _, p in iter_pack_files(store.path / "packs"))
    assert read_back(store, digests) == rnd


def test_each_window_of_a_pack_learns_its_own_dictionary(store: Store) -> None:
    """Pages change kind along the address space: the first window's noise gets no dictionary,
    the records after it do."""
    noise = random_pages(DICT_WINDOW_PAGES, 4)
    records = record_pages(2 * DICT_SAMPLE_PAGES, 5)
    pages = [noise[i : i + PAGE_SIZE] for i in range(0, len(noise), PAGE_SIZE)] + records
    _, digests = store_scattered(store, pages)
    [(_, path)] = list(iter_pack_files(store.path / "packs"))
    trailer = parse_pack(path.read_bytes())
    assert len(trailer.dicts) == 1
    by_digest = {f.digests: f for f in trailer.frames if f.kind == store_pb2.Frame.PAGES}
    assert all(by_digest[digests[i * 16 : i * 16 + 16]].dict == 0 for i in range(DICT_WINDOW_PAGES))
    assert all(by_digest[digests[i * 16 : i * 16 + 16]].dict == 1 for i in range(DICT_WINDOW_PAGES, len(pages)))
    assert read_back(store, digests) == b"".join(pages)


def test_a_window_keeps_the_packs_dictionary_while_it_pays_and_learns_another_when_not(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records of one pool over two windows: the second window keeps the first one's dictionary
    (not trained again); records of another pool after them: it no longer pays, a new one is
    learnt."""
    trained = []
    learn = zstandard.train_dictionary
    monkeypatch.setattr(zstandard, "train_dictionary", lambda *a, **k: trained.append(1) or learn(*a, **k))
    window = 2 * DICT_SAMPLE_PAGES
    monkeypatch.setattr(sink_module, "DICT_WINDOW_PAGES", window)
    same = record_pages(2 * window, 6)
    other = record_pages(DICT_SAMPLE_PAGES, 7)
    pages = same + other
    _, digests = store_scattered(store, pages)
    [(_, path)] = list(iter_pack_files(store.path / "packs"))
    trailer = parse_pack(path.read_bytes())
    assert len(trained) == len(trailer.dicts) == 2
    by_digest = {f.digests: f for f in trailer.frames if f.kind == store_pb2.Frame.PAGES}
    assert [by_digest[digests[i * 16 : i * 16 + 16]].dict for i in range(len(pages))] == \
        [1] * len(same) + [2] * len(other)
    assert read_back(store, digests) == b"".join(pages)


def test_pages_are_stored_without_a_dictionary_when_none_can_be_learnt(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    def cannot_learn(*args: object, **kwargs: object) -> None:
        raise zstandard.ZstdError("cannot train dictionary")

    monkeypatch.setattr(zstandard, "train_dictionary", cannot_learn)
    pages = record_pages(2 * DICT_SAMPLE_PAGES, 6)
    _, digests = store_scattered(store, pages)
    assert all(list(parse_pack(p.read_bytes()).dicts) == [] for _, p in iter_pack_files(store.path / "packs"))
    assert read_back(store, digests) == b"".join(pages)


def test_a_damaged_dictionary_is_reported_not_used(store: Store) -> None:
    pages = record_pages(2 * DICT_SAMPLE_PAGES, 2)
    _, digests = store_scattered(store, pages)
    [(name, path)] = list(iter_pack_files(store.path / "packs"))
    trailer = parse_pack(path.read_bytes())
    [dict_id] = trailer.dicts
    flip_a_bit(path, next(f for f in trailer.frames if f.digests == dict_id))
    store.close()
    with Store.open(store.path) as s:
        problems = s.verify()
        assert any(f"pack {name}" in p and "dictionary that is damaged" in p for p in problems), problems
        with pytest.raises(CorruptStore):
            read_back(s, digests)


def test_frames_hold_a_page_each_and_packs_seal_at_target(store: Store) -> None:
    buf = random_pages(600, 7)
    # Each batch of SUBMIT_PAGES raw pages fills a pack; the last 88 pages and the page map are
    # sealed by commit.
    sid, digests = commit_pages(store, buf, pack_target=200_000)
    frames = [f for f in all_frames(store.path) if f.kind == store_pb2.Frame.PAGES]
    assert [len(f.digests) // 16 for f in frames] == [1] * 600
    packs = list(iter_pack_files(store.path / "packs"))
    assert len(packs) == -(-600 // SUBMIT_PAGES) == 3
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
    buf = text_pages(64, 3)
    _, digests = commit_pages(store, buf)
    store.close()
    frames = len(all_frames(store.path)) - 1     # and the page map's
    assert frames == 64
    with Store.open(store.path) as s:
        order = list(range(64)) * 3
        random.Random(1).shuffle(order)
        wanted = b"".join(digests[i * 16 : i * 16 + 16] for i in order) + ZERO_DIGEST
        out = bytearray(len(order) * PAGE_SIZE + PAGE_SIZE)
        s.read_pages_into(wanted, out)
        assert s.frames_decoded == frames
        for k, i in enumerate(order):
            assert out[k * PAGE_SIZE : (k + 1) * PAGE_SIZE] == buf[i * PAGE_SIZE : (i + 1) * PAGE_SIZE]
        assert out[-PAGE_SIZE:] == bytes(PAGE_SIZE)


def _mixed_store(store: Store) -> tuple[bytes, bytes]:
    """Pages of every kind of frame in one store: raw (random), zstd (text), zstd with a
    dictionary (records added one by one), and zero pages: (contents, digests)."""
    records = record_pages(2 * DICT_SAMPLE_PAGES, 11)
    _, scattered = store_scattered(store, records)
    buf = random_pages(300, 12) + text_pages(400, 13) + bytes(3 * PAGE_SIZE)
    _, digests = commit_pages(store, buf)
    return b"".join(records) + buf, scattered + digests


@pytest.mark.parametrize("once", [False, True], ids=["mapped", "fetched"])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_a_read_on_several_threads_gets_every_kind_of_frame_right(store: Store, threads: int, once: bool,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The C read path splits a batch among threads: any split gives the pages asked for, each
    distinct frame decoded once, pages asked for twice included; read from the mapped packs or,
    for a reader that reads them once, fetched from the files into a buffer (one that starts
    too small for a batch here, and grows)."""
    monkeypatch.setattr(ReadPlan.decode, "__defaults__", (threads,))
    monkeypatch.setattr(FetchBuffer.__init__, "__defaults__", (mmap.PAGESIZE,))
    contents, digests = _mixed_store(store)
    n = len(digests) // DIGEST_SIZE
    frames = {f.offset: f for f in all_frames(store.path) if f.kind == store_pb2.Frame.PAGES}
    assert {f.codec for f in frames.values()} == {RAW, ZSTD} and any(f.dict for f in frames.values())
    order = list(range(n)) * 2
    random.Random(4).shuffle(order)
    wanted = b"".join(digests[i * 16 : i * 16 + 16] for i in order)
    with Store.open(store.path) as s:
        got = read_back(s, wanted, once=once)
        packs = iter_pack_files(store.path / "packs")
        dictionaries = sum(len(parse_pack(path.read_bytes()).dicts) for _, path in packs)
        assert s.frames_decoded == len({digests[i * 16 : i * 16 + 16] for i in order} - {ZERO_DIGEST}) + dictionaries
    for k, i in enumerate(order):
        assert got[k * PAGE_SIZE : (k + 1) * PAGE_SIZE] == contents[i * PAGE_SIZE : (i + 1) * PAGE_SIZE]


@pytest.mark.parametrize("once", [False, True], ids=["mapped", "fetched"])
@pytest.mark.parametrize("codec", [RAW, ZSTD])
def test_a_damaged_frame_read_on_several_threads_names_its_pack(store: Store, codec: int, once: bool) -> None:
    contents, digests = _mixed_store(store)
    name, path, frame = [(name, path, f) for name, path in iter_pack_files(store.path / "packs")
                         for f in parse_pack(path.read_bytes()).frames
                         if f.kind == store_pb2.Frame.PAGES and f.codec == codec and not f.dict][-1]
    flip_a_bit(path, frame)
    with Store.open(store.path) as s, pytest.raises(CorruptStore, match=name if codec == ZSTD else "digest"):
        read_back(s, digests, once=once)
    first = digests.find(frame.digests)
    assert first % DIGEST_SIZE == 0
    with Store.open(store.path) as s:            # the pages around it still read
        assert read_back(s, digests[:first], once=once) == contents[: first // DIGEST_SIZE * PAGE_SIZE]


@pytest.mark.parametrize("refusal", ["none", "at open", "at a read"])
def test_a_read_once_goes_past_the_page_cache_where_the_file_system_allows(
    store: Store, monkeypatch: pytest.MonkeyPatch, refusal: str
) -> None:
    """A read-once batch opens its packs with O_DIRECT; a file system that refuses direct I/O at
    open, or as EINVAL at a read, is read through the page cache instead, and the pages are the
    same either way."""
    from incr.pagestore import store as store_module

    contents, digests = _mixed_store(store)
    real_open, real_close = os.open, os.close
    packs: set[int] = set()
    direct_at_close: list[bool] = []

    def open_(path: Any, flags: int, *args: Any) -> int:
        if refusal == "at open" and flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        fd = real_open(path, flags, *args)
        if str(path).startswith(str(store.path / "packs")) and (flags & os.O_DIRECT or refusal == "at open"):
            packs.add(fd)
        return fd

    def close(fd: int) -> None:
        if fd in packs:
            packs.discard(fd)
            direct_at_close.append(bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT))
        real_close(fd)

    if refusal == "at a read":
        # A buffer off the block alignment: the kernel refuses each direct read (EINVAL).
        monkeypatch.setattr(FetchBuffer, "clear", lambda self: setattr(self, "used", 1))
    monkeypatch.setattr(store_module.os, "open", open_)
    monkeypatch.setattr(store_module.os, "close", close)
    with Store.open(store.path) as s:
        assert read_back(s, digests, once=True) == contents
    assert direct_at_close and set(direct_at_close) == {refusal == "none"}


def test_a_pack_cut_short_read_once_names_the_frame_past_its_end(store: Store) -> None:
    _mixed_store(store)
    name, path = max(iter_pack_files(store.path / "packs"), key=lambda p: p[1].stat().st_size)
    frames = [f for f in parse_pack(path.read_bytes()).frames if f.kind == store_pb2.Frame.PAGES]
    wanted = b"".join(f.digests for f in frames)
    with Store.open(store.path) as s:
        s.check_frames = False          # the trailer, cut away too, is what the check reads
        s.read_pages_into(wanted[:DIGEST_SIZE], bytearray(PAGE_SIZE))      # the pack mapped before
        os.chmod(path, 0o600)
        os.truncate(path, frames[-1].offset + frames[-1].length // 2)
        with pytest.raises(CorruptStore, match=f"{name}.*runs past the end of the pack"):
            read_back(s, wanted, once=True)


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
buf = random.Random(int(sys.argv[2])).randbytes(300 * PAGE_SIZE)
with store.writer(pack_target=200_000) as w:
    digests = w.add_pages(buf)
    blob = w.add_blob(encode_page_map([0], [300], digests))
    ref = store_pb2.PageMapRef(region="r", layers=[blob], layer_entries=[300], pages=300)
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
    crashed = random.Random(9).randbytes(300 * PAGE_SIZE)
    with store.writer() as w:
        assert list(store.path.glob("*/*.tmp")) == []
        w.add_pages(crashed)
        # The child's first pack (sealed at 200 kB: a batch of SUBMIT_PAGES raw pages) survived in every case.
        assert w.new_pages == (300 - SUBMIT_PAGES if fault == "pack-written" else 0)
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

    monkeypatch.setattr(PackBuilder, "add_frames", full_disk)
    monkeypatch.setattr(PackBuilder, "add_pages", full_disk)
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
    buf = text_pages(30, 1) + random_pages(300, 2)
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
    flip_a_bit(path, frame)
    store.close()
    with Store.open(store.path) as s:
        problems = s.verify()
        assert any(name in p and "does not match its name" in p for p in problems), problems
        if content == "random":  # a raw frame: the page no longer matches its digest
            assert any(f"pack {name}" in p and "does not match its digest" in p for p in problems), problems
        else:  # a zstd frame: its checksum fails
            assert any(f"pack {name}" in p and f"frame at {frame.offset}" in p for p in problems), problems
        assert any(sid[:12] in p for p in problems), problems  # the snapshot's pages are in a damaged pack
        with pytest.raises(CorruptStore):
            read_back(s, digests)


def test_verify_reports_damaged_manifests(store: Store) -> None:
    sid, _ = commit_pages(store, random_pages(2, 1))
    manifest = store.path / "snapshots" / sid
    manifest.write_bytes(manifest.read_bytes() + b"\x00")
    assert any(sid[:12] in p and "does not match its id" in p for p in store.verify())
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


def _version_2_pack(store: Store, buf: bytes) -> bytes:
    """A pack as written before version 3 (pack version 1), two frames of 64 pages, into
    ``store``; the digests of ``buf``'s 128 pages."""
    digests = page_digests(buf)
    old = PackBuilder(store.path / "packs")
    compressor = new_compressor()
    for start in (0, 64):
        frame = buf[start * PAGE_SIZE : (start + 64) * PAGE_SIZE]
        old.add_frames(store_pb2.Frame.PAGES, [(ZSTD, 1, compressor.compress(frame), len(frame), 0)],
                       digests[start * 16 : (start + 64) * 16])
    old.version = 1
    old.seal()
    return digests


def test_packs_of_version_2_stores_still_read(store: Store) -> None:
    """Before version 3 a frame held up to 64 pages and packs had no dictionaries (pack
    version 1): such a pack, dropped into the store, is indexed and read, each frame once."""
    buf = text_pages(128, 6)
    digests = _version_2_pack(store, buf)
    order = list(range(128))
    random.Random(3).shuffle(order)
    with Store.open(store.path) as s:
        assert read_back(s, b"".join(digests[i * 16 : i * 16 + 16] for i in order)) == b"".join(
            buf[i * PAGE_SIZE : (i + 1) * PAGE_SIZE] for i in order)
        assert s.frames_decoded == 2
        assert s.verify() == []


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
    with pytest.raises(AmbiguousId, match="matches 2 checkpoints"):
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


def test_the_read_path_reads_trailers_as_protobuf_does(store: Store) -> None:
    """frame_table (C) holds what the protobuf trailer says; a damaged trailer is an error."""
    commit_pages(store, random_pages(40, 3) + text_pages(40, 4))
    store_scattered(store, record_pages(2 * DICT_SAMPLE_PAGES, 5))
    _version_2_pack(store, text_pages(128, 6))
    many_page_frames = 0
    for _name, path in iter_pack_files(store.path / "packs"):
        data = path.read_bytes()
        with open(path, "rb") as f:
            mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        frames = parse_pack(data).frames
        assert frame_table(mapped).frames() == {f.offset: f.digests for f in frames if f.length}
        many_page_frames += sum(len(f.digests) > 16 for f in frames)
        damaged = bytearray(data)
        length = int.from_bytes(data[-12:-8], "little")
        damaged[len(data) - 12 - length : len(data) - 12] = b"\xff" * length
        with pytest.raises(PackFormatError):
            frame_table(_mapped(bytes(damaged)))
    assert many_page_frames == 2


def _misplaced(table: FrameTable, want: bytes, *reads: tuple[int, int, int]) -> int:
    """FrameTable.misplaced over a plan of ``reads`` (offset, slot, request page) from one pack,
    the other request pages zero."""
    entries = [b""] * (max((r[2] for r in reads), default=0) + 1)
    for offset, slot, page in reads:
        entries[page] = LOCATION.pack(b"P" * 32, offset, 10, PAGE_SIZE * (slot + 1), slot, ZSTD)
    plan = ReadPlan(entries)
    assert plan.groups == 1 and plan.group_pack(0) == b"P" * 32
    return table.misplaced(plan, 0, want)


def _hand_made_pack(*frames: tuple[int, int, bytes]) -> mmap.mmap:
    """A pack of no real frames whose trailer lists (offset, length, digests) in the order given."""
    trailer = store_pb2.PackTrailer(version=2)
    for offset, length, digests in frames:
        trailer.frames.add(kind=store_pb2.Frame.PAGES, codec=ZSTD, offset=offset, length=length,
                           raw_length=PAGE_SIZE * (len(digests) // 16), digests=digests)
    encoded = trailer.SerializeToString()
    return _mapped(MAGIC + encoded + TAIL.pack(len(encoded), MAGIC))


def test_the_frame_check_finds_the_first_read_a_trailer_contradicts() -> None:
    d = [bytes([k]) * 16 for k in range(1, 8)]
    # Out of offset order (the C side sorts), one frame of three pages, an empty blob's frame
    # sharing the offset of the next.
    table = frame_table(_hand_made_pack((300, 50, d[0]), (8, 90, d[1] + d[2] + d[3]), (100, 0, d[4]),
                                        (100, 200, d[5])))
    assert len(table) == 3
    want = b"".join(d)            # page index k wants d[k]
    assert _misplaced(table, want, (300, 0, 0), (8, 2, 3), (8, 0, 1), (100, 0, 5), (8, 1, 2)) == -1
    assert _misplaced(table, want, (300, 0, 0), (8, 1, 3)) == 3               # another page of the frame
    assert _misplaced(table, want, (8, 0, 1), (300, 0, 0), (100, 0, 4)) == 4  # not the empty blob
    assert _misplaced(table, want, (8, 3, 3)) == 3                            # past the frame's pages
    assert _misplaced(table, want, (9, 0, 1)) == 1                            # no frame there
    assert _misplaced(table, want, (300, 0, 7)) == 7                          # past the digests asked
    with pytest.raises(PackFormatError):
        frame_table(_hand_made_pack((8, 10, d[0]), (8, 20, d[1])))                  # two frames at one place
    with pytest.raises(PackFormatError):
        frame_table(_hand_made_pack((8, 10, d[0][:15])))                           # a digest cut short


def _mapped(data: bytes) -> mmap.mmap:
    m = mmap.mmap(-1, len(data))
    m.write(data)
    return m


def test_an_empty_blob_shares_its_offset_with_the_next_frame_and_both_read(store: Store) -> None:
    """An empty page map is an empty blob: a frame of no bytes at the offset of the frame after
    it.  Both must read back (the read path's frame check took one for the other)."""
    pages = random_pages(4, 9)
    with store.writer() as w:
        empty = w.add_blob(b"")
        digests = w.add_pages(pages)
        sid = w.commit(store_pb2.Snapshot(kind="checkpoint", epoch=1.0))
    store.close()
    with Store.open(store.path) as s:
        assert s.read_blob(empty) == b""
        assert read_back(s, digests) == pages
        assert s.verify() == [], sid


# -- pack files written directly -------------------------------------------------------


@pytest.mark.parametrize("refusal", ["none", "einval", "short", "einval at the end"])
def test_a_pack_file_holds_exactly_what_was_written_however_direct_writes_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refusal: str
) -> None:
    """AppendFile: O_DIRECT chunks, the unaligned tail through the page cache; a file system
    that takes O_DIRECT but refuses a write (EINVAL) turns it to buffered writes, and a short
    write goes on from where it stopped, without losing or repeating a byte."""
    from incr.pagestore import fsutil

    real_write = os.write
    calls = []
    finishing = False

    def write(fd: int, data: Any) -> int:
        direct = bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT)
        calls.append(direct)
        if direct and len(calls) == 2 and refusal == "einval":
            raise OSError(errno.EINVAL, "Invalid argument")
        if direct and finishing and refusal == "einval at the end":
            raise OSError(errno.EINVAL, "Invalid argument")
        if direct and len(calls) == 2 and refusal == "short":
            return real_write(fd, memoryview(data)[: fsutil.DIRECT_ALIGN * 3])
        return real_write(fd, data)

    monkeypatch.setattr(fsutil.os, "write", write)
    rng = random.Random(3)
    path = tmp_path / "pack.tmp"
    f = fsutil.AppendFile(path)
    assert f.direct
    expected = bytearray()
    for _ in range(200):
        chunk = rng.randbytes(rng.randrange(1, 70_000))
        expected += chunk
        f.write(chunk)
    finishing = True
    f.finish()
    f.close()
    assert path.read_bytes() == expected
    assert calls[0] is True and (calls[-1] is False)       # the tail, at least, is buffered
    assert (False in calls[:3]) == (refusal == "einval")


# -- a restore's page source ---------------------------------------------------------------


def test_shared_memory_runs_come_in_shared_batches(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """StorePages.shm_pages: an object's scattered runs of pages are read in batches across runs
    (one read pipeline in all: an MPI job's segments hold thousands of short runs, and a pipeline
    per run cost a thread start each), and still come out run by run, each at its offset."""
    from incr import snapshot as snapshot_module
    from incr.pagestore import layers as pagelayers

    monkeypatch.setattr(snapshot_module, "RESTORE_BATCH_PAGES", 4)
    pipelines = []
    real_executor = snapshot_module.ThreadPoolExecutor

    def executor(*args: Any, **kwargs: Any) -> Any:
        pipelines.append(1)
        return real_executor(*args, **kwargs)

    monkeypatch.setattr(snapshot_module, "ThreadPoolExecutor", executor)
    buf = text_pages(40, 21)
    chosen = [0, 1, 2, 5, 7, 8, 9, 10, 11, 12, 13, 20, *range(30, 40)]
    with store.writer() as w:
        digests = w.add_pages(buf)
        held = {i: digests[i * DIGEST_SIZE:(i + 1) * DIGEST_SIZE] for i in chosen}
        blob = w.add_blob(pagelayers.encode(held))
        ref = store_pb2.PageMapRef(region="shm:k", layers=[blob], layer_entries=[len(held)], pages=len(held))
        sid = w.commit(store_pb2.Snapshot(epoch=1.0, kind="checkpoint", page_maps=[ref]))
    with Store.open(store.path) as s:
        snap = dict(s.snapshots())[sid]
        got = [(offset, bytes(view)) for offset, view in snapshot_module.StorePages(s, snap, 1).shm_pages("k")]
    pages = [offset // PAGE_SIZE + k for offset, data in got for k in range(len(data) // PAGE_SIZE)]
    assert pages == chosen
    for offset, data in got:
        assert data == buf[offset:offset + len(data)]
        first = offset // PAGE_SIZE
        assert all(p in held for p in range(first, first + len(data) // PAGE_SIZE))
    assert len(got) > len(list(pagelayers.runs_of(held)))     # batches of 4 split runs too
    assert pipelines == [1]
