"""A batch of page reads, planned and decoded in C (native/incr_pages.c).

A restore reads every page of a job.  Parsing each page's index entry, sorting the reads by
pack and offset and decoding them one by one in Python cost 3-4 us a page, more than zstd
takes to decompress it; here Python makes one call to plan a batch (entries parsed, sorted,
grouped by pack, dictionaries listed) and one to decode it, on several threads with the GIL
released, straight into the caller's buffer.
"""

from __future__ import annotations

import mmap
import os
from array import array
from collections.abc import Sequence
from typing import Any, Final

from incr._native import ffi, lib

from .digest import DIGEST_SIZE, PAGE_SIZE

#: Threads that decode a batch: both cores of this machine (a 4 KiB zstd frame decodes at
#: ~0.8 GB/s a core here, the first limit of a restore).
DECODE_THREADS: Final = max(1, min(len(os.sched_getaffinity(0)), int(lib.INCR_DECODE_THREADS)))

_REASONS: Final = {
    lib.INCR_DECODE_TRUNCATED: "the frame runs past the end of the pack (truncated?)",
    lib.INCR_DECODE_LENGTH: "the frame does not decode to the length its index entry records",
    lib.INCR_DECODE_CODEC: "unknown codec",
    lib.INCR_DECODE_ZSTD: "zstd frame does not decompress",
    lib.INCR_DECODE_DICT: "the frame's dictionary is missing",
    lib.INCR_DECODE_SLOT: "the index points past the end of a frame",
    lib.INCR_DECODE_NOMEM: "out of memory",
}


class MalformedEntry(Exception):
    """An index entry of a length no entry has (the index is damaged)."""


class FrameDecodeError(Exception):
    """A frame failed to decode: ``pack``, ``offset`` and the reason."""

    def __init__(self, pack: bytes, offset: int, reason: str) -> None:
        super().__init__(f"pack {pack.hex()}, frame at {offset}: {reason}")
        self.pack, self.offset, self.reason = pack, offset, reason


class ReadPlan:
    """The reads of ``entries`` (one index entry a page, b"" for the zero page), sorted by pack,
    offset and slot; page ``i`` of the request is written to page ``i`` of the output."""

    __slots__ = ("_dicts", "_group_first", "_plan", "_raw", "pages", "reads")

    def __init__(self, entries: list[bytes]) -> None:
        n = len(entries)
        room = max(n, 1)
        self.pages = n
        self.reads: Any = ffi.new("struct incr_read[]", room)
        self._group_first: Any = ffi.new("uint32_t[]", room)
        self._dicts: Any = ffi.new("uint8_t[]", DIGEST_SIZE * room)
        self._raw: Any = ffi.new("uint32_t[]", room)
        self._plan: Any = ffi.new("struct incr_plan *")
        lens = array("I", map(len, entries))
        r = lib.incr_plan_reads(b"".join(entries), ffi.from_buffer("uint32_t[]", lens), n, self.reads,
                                self._group_first, self._dicts, self._raw, self._plan)
        if r == -1:
            raise MalformedEntry(f"the index entry of request page {self._plan.bad} is "
                                 f"{len(entries[self._plan.bad])} bytes long")
        if r < 0:
            raise MemoryError("planning a read")

    @property
    def groups(self) -> int:
        """Packs the plan reads from."""
        return int(self._plan.groups)

    def group_pack(self, group: int) -> bytes:
        """Name (32 bytes) of the pack of ``group``."""
        return bytes(ffi.buffer(self.reads[self._group_first[group]].pack, 32))

    def group_span(self, group: int) -> tuple[int, int]:
        """(first read, number of reads) of ``group``."""
        first = int(self._group_first[group])
        end = int(self._group_first[group + 1]) if group + 1 < self._plan.groups else self.pages
        return first, end - first

    def dict_ids(self) -> list[bytes]:
        """Blob ids of the zstd dictionaries the reads need, in the plan's order."""
        flat = bytes(ffi.buffer(self._dicts, DIGEST_SIZE * self._plan.dicts))
        return [flat[k : k + DIGEST_SIZE] for k in range(0, len(flat), DIGEST_SIZE)]

    def raw_pages(self) -> list[int]:
        """Pages (request numbers) read from RAW frames: no checksum protects them."""
        return list(ffi.unpack(self._raw, self._plan.raw))

    def misplaced(self, group: int, frames: Any, count: int, digests: Any, want: bytes) -> int:
        """Request number of the first page of ``group`` that its pack's frame table (``frames``,
        ``count``, ``digests``: a FrameTable's arrays) does not list where its entry says, or -1."""
        first, n = self.group_span(group)
        k = lib.incr_check_reads(frames, count, digests, self.reads, first, n, want, len(want) // DIGEST_SIZE)
        return -1 if k < 0 else int(self.reads[k].page)

    def decode(self, packs: Sequence[mmap.mmap | memoryview], ddicts: list[Any], out: memoryview,
               threads: int = DECODE_THREADS) -> int:
        """Decode every read into ``out`` (writable, ``pages`` pages); ``packs[g]``: the pack of
        group g mapped, or a FetchBuffer's view holding its fetched frames; ``ddicts``: the
        dictionaries of ``dict_ids`` (new_ddict).  Returns the
        frames decoded; raises FrameDecodeError."""
        if out.nbytes != self.pages * PAGE_SIZE or out.readonly:
            raise ValueError("out must be the plan's pages, writable")
        if len(packs) != self.groups or len(ddicts) != self._plan.dicts:
            raise ValueError("a mapped pack for each group and a dictionary for each id")
        if not self.pages:
            return 0
        held = [ffi.from_buffer(m) for m in packs]      # keeps each mapping alive through the call
        bases = ffi.new("uint8_t *[]", held or [ffi.NULL])
        sizes = ffi.new("uint64_t[]", [len(m) for m in packs] or [0])
        dicts = ffi.new("void *[]", ddicts or [ffi.NULL])
        err = ffi.new("struct incr_decode_error *")
        frames = ffi.new("uint64_t *")
        if lib.incr_decode_reads(self.reads, self.pages, bases, sizes, dicts, len(ddicts),
                                 ffi.from_buffer(out, require_writable=True), threads, err, frames) < 0:
            read = self.reads[err.read]
            reason = _REASONS.get(err.code, f"error {err.code}")
            what = ffi.string(err.what).decode(errors="replace")
            raise FrameDecodeError(bytes(ffi.buffer(read.pack, 32)), int(read.offset),
                                   f"{reason}: {what}" if what else reason)
        return int(frames[0])

    def fetch(self, group: int, fd: int, buf: FetchBuffer) -> None:
        """Read the frames of ``group`` from ``fd`` (its pack, opened with O_DIRECT where the
        file system takes it) into ``buf`` after what it holds; decode then with ``buf.view()``
        as the pack of every group fetched.  Raises FrameDecodeError (the pack ends before a
        frame) or OSError."""
        first, n = self.group_span(group)
        used, need, bad = ffi.new("uint64_t *", buf.used), ffi.new("uint64_t *"), ffi.new("size_t *")
        while True:
            rc = lib.incr_fetch_reads(self.reads, first, n, fd, buf.base, buf.capacity, used, FETCH_GAP,
                                      1, need, bad)
            if rc != -1:
                break
            buf.grow(buf.used + int(need[0]))
        if rc == -2:
            read = self.reads[bad[0]]
            raise FrameDecodeError(bytes(ffi.buffer(read.pack, 32)), int(read.offset),
                                   _REASONS[lib.INCR_DECODE_TRUNCATED])
        if rc < 0:
            raise OSError(-rc, os.strerror(-rc))
        buf.used = int(used[0])


class FetchBuffer:
    """Memory a plan's frames are read into by ``ReadPlan.fetch``: page-aligned, as direct I/O
    wants, kept from batch to batch (memory new to this VM costs ~2 s a GiB) and grown on demand.

    A restore reads each frame once.  Read through the page cache, a 1 GiB job's packs took
    ~1.3 s of system time to land in memory new to the guest, and that memory then had to be
    given back; read directly into the same buffer batch after batch, they take ~0.04 s."""

    __slots__ = ("_map", "base", "capacity", "used")

    def __init__(self, capacity: int = 32 << 20) -> None:
        self.used = 0
        self._map = mmap.mmap(-1, capacity)
        self.capacity = capacity
        self.base: Any = ffi.from_buffer(self._map)

    def grow(self, at_least: int) -> None:
        """Room for ``at_least`` bytes, what is held kept."""
        if at_least <= self.capacity:
            return
        size = max(2 * self.capacity, -(-at_least // FETCH_GROWTH) * FETCH_GROWTH)
        bigger = mmap.mmap(-1, size)
        bigger[: self.used] = self._map[: self.used]
        self.base = ffi.from_buffer(bigger)
        self._map, self.capacity = bigger, size     # the old one unmapped once no view of it is left

    def view(self) -> memoryview:
        """What the fetches since ``clear`` read."""
        return memoryview(self._map)[: self.used]

    def clear(self) -> None:
        self.used = 0


#: Frames of a group less than this many bytes apart are read as one span: one direct read
#: of a few extra blocks costs less than another round trip to the disk.
FETCH_GAP: Final = 32 << 10
FETCH_GROWTH: Final = 2 << 20


def new_ddict(data: bytes) -> Any:
    """A zstd dictionary prepared for decoding, freed with the returned object."""
    ddict = lib.incr_ddict_new(data, len(data))
    if ddict == ffi.NULL:
        raise ValueError("not a zstd dictionary")
    return ffi.gc(ddict, lib.incr_ddict_free)
