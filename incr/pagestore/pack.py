"""Pack files: immutable containers of compressed frames with a self-describing trailer.

Layout (docs/store-format.md, "Pack files")::

    MAGIC (8) | frame | frame | ... | PackTrailer | u32 LE trailer length | MAGIC (8)

A pack is named by the hex BLAKE3-256 of its whole content and stored as
``packs/<first 2 hex>/<name>``.  The trailer lists every frame with its
offset, codec and the digests it holds, so the index can be rebuilt from the
packs alone.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import re
import struct
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import blake3
import zstandard
from google.protobuf.message import DecodeError

from incr._native import ffi, lib
from incr.proto import store_pb2

from .digest import DIGEST_SIZE, PAGE_SIZE, page_digest
from .fsutil import AppendFile, fsync_dir, make_dir, temp_name
from .reads import DECODE_THREADS, ReadPlan

MAGIC: Final = b"INCRPK\x00\x01"
#: Version 2 adds zstd dictionaries (PackTrailer.dicts, Frame.dict); version 1 is read too.
PACK_VERSION: Final = 2
_READABLE_PACK_VERSIONS: Final = (1, 2)
#: Trailer length then the closing magic.
TAIL: Final = struct.Struct("<I8s")
#: Smallest valid pack: both magics, an empty trailer and its length.
MIN_PACK_SIZE: Final = len(MAGIC) + TAIL.size

#: Pages at most per frame: older stores hold frames of up to 64 pages, this
#: version one page a frame (below).
MAX_FRAME_PAGES: Final = 64
#: Pages per batch handed to the sink: each batch costs a queue hand-over, a
#: compression call (a thread started for the second core) and a pack write,
#: ~60 us in all, a fifth of what 64 pages cost to compress.
SUBMIT_PAGES: Final = 256
#: A frame is decompressed whole to read any page of it, and the frames of
#: older checkpoints thin out as later ones replace their pages: restoring
#: checkpoint #30 of a job rewriting 1 %/s of its pages at random decompresses
#: 3.4x the pages of #2 with 64-page frames, 1.85x with 4-page frames
#: (expected counts), the same with 1-page frames.  So every page is a frame
#: of its own, and a dictionary (below) wins back what pages share.
#: Pages compressed one by one lose what a job's pages have in common (the
#: same values, layouts and pointers in many pages): zstd -1 of a checkpoint's
#: scattered pages one by one was 1.21x the size of one stream of them.  A
#: dictionary trained on DICT_SAMPLE_PAGES of them wins it back (0.98x the
#: stream; 7 ms to train) and costs nothing to decompress.  Pages arrive in
#: address order, so what they hold changes along the way (a pack of a 2 GiB
#: job's checkpoint went from noisy float64 pages, where no dictionary helps,
#: to integers, where one halves the size): each window of DICT_WINDOW_PAGES
#: pages of a pack trains its own on its first pages, kept only if it shrinks
#: the other half of the sample DICT_GAIN-fold.  A writer storing fewer pages
#: goes without.
DICT_SAMPLE_PAGES: Final = 256
DICT_WINDOW_PAGES: Final = 4096
DICT_SIZE: Final = 64 << 10
DICT_GAIN: Final = 1.05
#: A pack is sealed once it reaches this size: large enough that a store of
#: 1 TiB holds ~32k files, small enough to copy and to rewrite in gc cheaply.
PACK_TARGET_SIZE: Final = 32 << 20
ZSTD_LEVEL: Final = 1
#: Compression must shrink a frame by this factor to be kept: below it the
#: decompression cost on restore buys too little (noisy float64 pages reach
#: only ~1.05 and are stored raw).
MIN_RATIO: Final = 1.1
#: Frame lengths are u32 in the trailer and the index.
MAX_FRAME_BYTES: Final = (1 << 32) - 1

PAGES: Final = store_pb2.Frame.PAGES
BLOB: Final = store_pb2.Frame.BLOB
RAW: Final = store_pb2.Frame.RAW
ZSTD: Final = store_pb2.Frame.ZSTD

_PACK_NAME = re.compile(r"[0-9a-f]{64}")
_SUBDIR_NAME = re.compile(r"[0-9a-f]{2}")


class PackFormatError(ValueError):
    """A pack's bytes do not follow the format; callers name the pack in a CorruptStore."""


def new_compressor() -> zstandard.ZstdCompressor:
    # The content checksum (4 bytes per frame) lets zstd itself notice a
    # damaged compressed frame on every read, at xxhash speed.
    return zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True, write_content_size=True)


def encode_frame(
    raw: bytes | bytearray | memoryview, compressor: zstandard.ZstdCompressor
) -> tuple[store_pb2.Frame.Codec, int, bytes | bytearray | memoryview]:
    """Return ``(codec, level, stored bytes)``: zstd if it shrinks ``raw`` by MIN_RATIO, else raw."""
    packed = compressor.compress(raw)
    if len(packed) * MIN_RATIO < len(raw):
        return ZSTD, ZSTD_LEVEL, packed
    return RAW, 0, raw


#: One encoded frame: (codec, level, stored bytes, raw length, dictionary: 1-based index
#: into the pack's dictionaries, 0 for none).
EncodedFrame = tuple[store_pb2.Frame.Codec, int, bytes | bytearray | memoryview, int, int]


class PageEncoder:
    """Compresses pages a frame each, in C on DECODE_THREADS threads with the GIL released (per
    page in Python, zstd -1 of 4 KiB took 22 us here, the sink's whole budget): the frames
    python-zstandard's ``new_compressor`` makes (with a dictionary: without its id), decoded alike."""

    def __init__(self, threads: int = DECODE_THREADS) -> None:
        encoder = lib.incr_encoder_new(threads, ZSTD_LEVEL)
        if encoder == ffi.NULL:
            raise MemoryError("zstd compression contexts")
        self._encoder = ffi.gc(encoder, lib.incr_encoder_free)
        self._stride = PAGE_SIZE + 128          # >= ZSTD_compressBound(4096)
        self._cdict: Any = ffi.NULL
        self._cdict_of: zstandard.ZstdCompressionDict | None = None

    def _use(self, dictionary: zstandard.ZstdCompressionDict | None) -> Any:
        if dictionary is not self._cdict_of:
            self._cdict, self._cdict_of = ffi.NULL, None
            if dictionary is not None:
                data = dictionary.as_bytes()
                cdict = lib.incr_cdict_new(data, len(data), ZSTD_LEVEL)
                if cdict == ffi.NULL:
                    raise MemoryError("a zstd dictionary")
                self._cdict, self._cdict_of = ffi.gc(cdict, lib.incr_cdict_free), dictionary
        return self._cdict

    def _compress(self, view: memoryview, dictionary: zstandard.ZstdCompressionDict | None,
                  min_ratio: float) -> tuple[bytearray, array[int]]:
        """Each page of ``view`` compressed on its own (at ``stride * i``), and its length (0: it
        did not shrink by ``min_ratio``)."""
        n = view.nbytes // PAGE_SIZE
        dst = bytearray(self._stride * n)
        lens = array("I", bytes(4 * n))
        r = lib.incr_encode_pages(self._encoder, ffi.from_buffer(view), n, self._use(dictionary), min_ratio,
                                  ffi.from_buffer(dst, require_writable=True), self._stride,
                                  ffi.from_buffer("uint32_t[]", lens, require_writable=True))
        if r < 0:
            raise PackFormatError(f"zstd could not compress page {-1 - r} of a frame")
        return dst, lens

    def stored_size(self, raw: bytes | bytearray | memoryview,
                    dictionary: zstandard.ZstdCompressionDict | None = None) -> int:
        """Bytes the pages of ``raw`` take as frames of their own, compressed where it shrinks them."""
        _, lens = self._compress(memoryview(raw).cast("B"), dictionary, 1.0)
        return sum(length or PAGE_SIZE for length in lens)

    def encode(self, raw: bytes | bytearray | memoryview, dictionary: zstandard.ZstdCompressionDict | None = None,
               dict_index: int = 0) -> EncodedPages:
        """A frame for each page of ``raw``, zstd where it shrinks the page by MIN_RATIO, else
        raw; ``dictionary``: the pack's dictionary ``dict_index`` (0: none)."""
        view = memoryview(raw).cast("B")
        dst, lens = self._compress(view, dictionary, MIN_RATIO)
        return EncodedPages(view, dst, self._stride, lens, dict_index)


@dataclass(frozen=True)
class EncodedPages:
    """Pages encoded a frame each by PageEncoder: page i is ``lens[i]`` bytes of zstd at
    ``stride * i`` of ``packed``, or (``lens[i]`` 0) raw, ``raw``'s page i."""

    raw: memoryview
    packed: bytearray
    stride: int
    lens: array[int]
    dict_index: int

    def frames(self) -> list[EncodedFrame]:
        """The frames as PackBuilder.add_frames takes them (one Python object a page)."""
        packed = memoryview(self.packed)
        return [(ZSTD, ZSTD_LEVEL, packed[self.stride * i : self.stride * i + length], PAGE_SIZE, self.dict_index)
                if length else (RAW, 0, self.raw[i * PAGE_SIZE : (i + 1) * PAGE_SIZE], PAGE_SIZE, 0)
                for i, length in enumerate(self.lens)]


def train_dictionary(pages: list[memoryview], encoder: PageEncoder) -> zstandard.ZstdCompressionDict | None:
    """A zstd dictionary learnt from half of ``pages``, if it compresses the other half
    DICT_GAIN better than zstd alone (both judged by ``encoder``, which keeps the dictionary
    ready for the pages it is then chosen for); else None."""
    learn, check = pages[0::2], pages[1::2]
    try:
        # Fixed cover parameters: the default search for the best ones took 4x as long
        # for a dictionary within 2 % of this one.  f=16 (fastcover's frequency table, 2^20
        # by default): the same dictionary on records sharing a pool, 3.5x faster to train
        # (10 against 35-45 ms here, paid on every window of every pack).
        dictionary = zstandard.train_dictionary(DICT_SIZE, [page.tobytes() for page in learn],
                                                level=ZSTD_LEVEL, k=2048, d=8, f=16, steps=1)
    except (zstandard.ZstdError, ValueError):      # too few or too alike samples: go without
        return None
    return dictionary if dictionary_pays(check, dictionary, encoder) else None


def dictionary_pays(pages: list[memoryview], dictionary: zstandard.ZstdCompressionDict, encoder: PageEncoder) -> bool:
    """Whether ``dictionary`` compresses ``pages`` DICT_GAIN better than zstd alone."""
    sample = b"".join(pages)
    return encoder.stored_size(sample, dictionary) * DICT_GAIN < encoder.stored_size(sample)


def decode_frame(
    codec: int, stored: bytes | memoryview, raw_length: int, decompressor: zstandard.ZstdDecompressor
) -> bytes | memoryview:
    """Inverse of encode_frame; raises PackFormatError if the frame does not decode to ``raw_length`` bytes."""
    if codec == RAW:
        data = stored
    elif codec == ZSTD:
        try:
            data = decompressor.decompress(stored, max_output_size=raw_length)
        except zstandard.ZstdError as e:
            raise PackFormatError(f"zstd frame does not decompress: {e}") from e
    else:
        raise PackFormatError(f"unknown codec {codec}")
    if len(data) != raw_length:
        raise PackFormatError(f"frame decodes to {len(data)} bytes, {raw_length} expected")
    return data


def is_pack_name(name: str) -> bool:
    return _PACK_NAME.fullmatch(name) is not None


def pack_path(packs_dir: Path, name: str) -> Path:
    return packs_dir / name[:2] / name


def iter_pack_files(packs_dir: Path) -> Iterator[tuple[str, Path]]:
    """Every sealed pack under ``packs_dir`` as ``(name, path)``; temporary files are skipped."""
    try:
        subdirs = sorted(os.listdir(packs_dir))
    except FileNotFoundError:
        return
    for sub in subdirs:
        if _SUBDIR_NAME.fullmatch(sub) is None:
            continue
        try:
            names = sorted(os.listdir(packs_dir / sub))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for name in names:
            if is_pack_name(name) and name.startswith(sub):
                yield name, packs_dir / sub / name


def _check_trailer(trailer: store_pb2.PackTrailer, frames_end: int) -> None:
    """Every frame must lie between the head magic and the trailer and describe its content sanely."""
    if trailer.version not in _READABLE_PACK_VERSIONS:
        raise PackFormatError(f"pack format version {trailer.version} is not supported")
    if any(len(blob_id) != DIGEST_SIZE for blob_id in trailer.dicts):
        raise PackFormatError("a dictionary id is not 16 bytes")
    dict_frames = {f.digests: f.offset for f in trailer.frames if f.kind == BLOB}
    previous_end = len(MAGIC)
    for i, f in enumerate(trailer.frames):
        if f.offset < previous_end or f.offset + f.length > frames_end:
            raise PackFormatError(f"frame {i} at offset {f.offset} lies outside the frame area")
        previous_end = f.offset + f.length
        if f.codec not in (RAW, ZSTD):
            raise PackFormatError(f"frame {i} has unknown codec {f.codec}")
        if f.codec == RAW and f.length != f.raw_length:
            raise PackFormatError(f"raw frame {i} has length {f.length} but raw length {f.raw_length}")
        if f.kind == PAGES:
            count, rest = divmod(len(f.digests), DIGEST_SIZE)
            if rest or count == 0 or count > 0xFFFF or f.raw_length != count * PAGE_SIZE:
                raise PackFormatError(f"page frame {i} lists {len(f.digests)} digest bytes for {f.raw_length} bytes")
            if f.dict:
                if f.codec != ZSTD or f.dict > len(trailer.dicts):
                    raise PackFormatError(f"page frame {i} names dictionary {f.dict} of {len(trailer.dicts)}")
                if dict_frames.get(trailer.dicts[f.dict - 1], f.offset) >= f.offset:
                    raise PackFormatError(f"page frame {i} needs a dictionary not stored before it in the pack")
        elif f.kind == BLOB:
            if len(f.digests) != DIGEST_SIZE:
                raise PackFormatError(f"blob frame {i} has a {len(f.digests)}-byte id")
        else:
            raise PackFormatError(f"frame {i} has unknown kind {f.kind}")


def _decode_trailer(head: bytes, tail: bytes, trailer_bytes: bytes, size: int) -> store_pb2.PackTrailer:
    if head != MAGIC:
        raise PackFormatError("pack does not start with the pack magic")
    trailer = store_pb2.PackTrailer()
    try:
        trailer.ParseFromString(trailer_bytes)
    except DecodeError as e:
        raise PackFormatError(f"trailer does not decode: {e}") from e
    _check_trailer(trailer, size - TAIL.size - len(trailer_bytes))
    return trailer


def _trailer_length(tail: bytes, size: int) -> int:
    length, magic = TAIL.unpack(tail)
    if magic != MAGIC:
        raise PackFormatError("pack does not end with the pack magic (truncated?)")
    if length > size - MIN_PACK_SIZE:
        raise PackFormatError(f"trailer length {length} exceeds the pack")
    return int(length)


def read_trailer(fd: int) -> tuple[store_pb2.PackTrailer, int]:
    """Trailer and size of the pack open on ``fd``, reading only its head and tail."""
    size = os.fstat(fd).st_size
    if size < MIN_PACK_SIZE:
        raise PackFormatError(f"pack is {size} bytes, too short")
    tail = os.pread(fd, TAIL.size, size - TAIL.size)
    length = _trailer_length(tail, size)
    head = os.pread(fd, len(MAGIC), 0)
    trailer_bytes = os.pread(fd, length, size - TAIL.size - length)
    return _decode_trailer(head, tail, trailer_bytes, size), size


def parse_pack(data: bytes) -> store_pb2.PackTrailer:
    """Trailer of a pack held whole in memory (verify reads every byte anyway)."""
    size = len(data)
    if size < MIN_PACK_SIZE:
        raise PackFormatError(f"pack is {size} bytes, too short")
    tail = data[size - TAIL.size :]
    length = _trailer_length(tail, size)
    start = size - TAIL.size - length
    return _decode_trailer(data[: len(MAGIC)], tail, data[start : size - TAIL.size], size)


class FrameTable:
    """The frames of a pack, from its trailer, held in C arrays (no Python object a frame): for
    the read path, which checks every page it reads against this, so that an index entry gone
    wrong never yields another page, intact, whose zstd checksum passes."""

    __slots__ = ("_count", "_digests", "_frames")

    def __init__(self, frames: Any, digests: Any, count: int) -> None:   # cffi arrays
        self._frames, self._digests, self._count = frames, digests, count

    def __len__(self) -> int:
        return self._count

    def frames(self) -> dict[int, bytes]:
        """Frame offset -> the digests the frame holds (for tests and debugging: Python objects)."""
        flat = ffi.buffer(self._digests, DIGEST_SIZE * sum(self._frames[k].count for k in range(self._count)))
        return {f.offset: flat[DIGEST_SIZE * f.first : DIGEST_SIZE * (f.first + f.count)]
                for f in (self._frames[k] for k in range(self._count))}

    def misplaced(self, plan: ReadPlan, group: int, want: bytes) -> int:
        """Request number of the first page of ``plan``'s ``group`` (reads from this pack) that
        the trailer does not list where the index says, or -1.  ``want``: the request's digests."""
        return plan.misplaced(group, self._frames, self._count, self._digests, want)


def frame_table(data: mmap.mmap) -> FrameTable:
    """The frame table of a mapped pack (frames of no bytes, empty blobs, left out: their offset
    is the next frame's).  Only the magics and the protobuf are checked here (not every frame's
    bounds and codec, as ``parse_pack`` does: that costs more than the restore reading the pack)."""
    size = len(data)
    if size < MIN_PACK_SIZE or data[: len(MAGIC)] != MAGIC:
        raise PackFormatError("pack does not start with the pack magic")
    length = _trailer_length(data[size - TAIL.size :], size)
    encoded = data[size - TAIL.size - length : size - TAIL.size]
    # A frame of bytes takes 20 trailer bytes or more, a digest 16.
    room, digest_room = length // 20 + 1, length // 16 + 1
    frames, digests = ffi.new("struct incr_frame[]", room), ffi.new("uint8_t[]", DIGEST_SIZE * digest_room)
    n = lib.incr_trailer_table(encoded, length, frames, room, digests, digest_room)
    if n < 0:
        raise PackFormatError("trailer does not decode" if n == -1 else "trailer lists more frames than fit")
    return FrameTable(frames, digests, n)


@dataclass(frozen=True)
class SealedPack:
    """A pack durably stored under its content name."""

    name: str
    size: int
    trailer: store_pb2.PackTrailer


# PackTrailer's fields (store.proto) as protobuf tags: field number << 3 | wire type.
_TRAILER_VERSION_TAG: Final = bytes([1 << 3])
_TRAILER_FRAME_TAG: Final = bytes([2 << 3 | 2])
_TRAILER_DICT_TAG: Final = bytes([3 << 3 | 2])


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


class PackBuilder:
    """One pack being filled by one writer.

    The file grows under a random ``*.tmp`` name in ``packs/``, so no reader
    ever sees a partial pack under a content name: ``seal()`` is the only way
    a pack gets its name, and it renames only after the content is fsynced.
    Not thread-safe; owned by a single SnapshotWriter.
    """

    def __init__(self, packs_dir: Path) -> None:
        self._packs_dir = packs_dir
        self.tmp = temp_name(packs_dir)
        self._file: AppendFile | None = AppendFile(self.tmp)
        self._hash = blake3.blake3()
        # The trailer as it will be written: PackTrailer.frames entries serialized (field 2, in
        # order) and the dictionaries' ids; parsed only once sealed (a Frame object a page,
        # added in Python, was a third of the sink's Python time).
        self._frames = bytearray()
        self._dicts: list[bytes] = []
        self.version = PACK_VERSION         # what the trailer says (an older one: for tests of old stores)
        self.size = 0
        self.renamed: SealedPack | None = None
        try:
            self._append(MAGIC)
        except BaseException:
            self.discard()
            raise

    def _append(self, data: bytes | bytearray | memoryview) -> None:
        assert self._file is not None, "pack already sealed or discarded"
        self._file.write(data)
        self._hash.update(data)
        self.size += len(data)

    def add_frames(self, kind: store_pb2.Frame.Kind, frames: list[EncodedFrame], digests: bytes) -> None:
        """Append frames with one write: PAGES frames hold the pages of ``digests`` in order
        (16 bytes each); a BLOB is a single frame whose ``digests`` is the blob id."""
        for _codec, _level, stored, raw_length, dictionary in frames:
            if len(stored) > MAX_FRAME_BYTES or raw_length > MAX_FRAME_BYTES:
                raise ValueError(f"frame of {raw_length} bytes exceeds the 4 GiB format limit")
            if dictionary > len(self._dicts):
                raise ValueError(f"dictionary {dictionary} was not added to this pack")
        offset, first = self.size, 0
        self._append(frames[0][2] if len(frames) == 1 else b"".join(frame[2] for frame in frames))
        for codec, level, stored, raw_length, dictionary in frames:
            if kind == PAGES:
                pages = raw_length // PAGE_SIZE
                frame_digests = digests[first * DIGEST_SIZE : (first + pages) * DIGEST_SIZE]
                first += pages
            else:
                frame_digests = digests
            entry = store_pb2.Frame(kind=kind, codec=codec, level=level, offset=offset, length=len(stored),
                                    raw_length=raw_length, digests=frame_digests,
                                    dict=dictionary).SerializeToString(deterministic=True)
            self._frames += _TRAILER_FRAME_TAG + _varint(len(entry)) + entry
            offset += len(stored)

    def add_pages(self, pages: EncodedPages, digests: bytes) -> None:
        """Append the frames of ``pages`` (one a page, ``digests`` theirs in order) with one
        write, their trailer entries made in C."""
        n = len(pages.lens)
        if pages.dict_index > len(self._dicts):
            raise ValueError(f"dictionary {pages.dict_index} was not added to this pack")
        if len(digests) != n * DIGEST_SIZE or pages.raw.nbytes != n * PAGE_SIZE:
            raise ValueError(f"{n} pages encoded, {pages.raw.nbytes // PAGE_SIZE} given, "
                             f"{len(digests) // DIGEST_SIZE} digests")
        out = bytearray(n * PAGE_SIZE)
        entries = bytearray(n * lib.INCR_FRAME_ENTRY_MAX)
        stored = ffi.new("uint64_t *")
        length = lib.incr_pack_pages(ffi.from_buffer(pages.raw), n, ffi.from_buffer(pages.packed), pages.stride,
                                     ffi.from_buffer("uint32_t[]", pages.lens), digests, self.size, ZSTD_LEVEL,
                                     pages.dict_index, ffi.from_buffer(out, require_writable=True), stored,
                                     ffi.from_buffer(entries, require_writable=True))
        self._append(memoryview(out)[: stored[0]])
        self._frames += memoryview(entries)[:length]

    def add_dict(self, dictionary: zstandard.ZstdCompressionDict, compressor: zstandard.ZstdCompressor) -> int:
        """Store a zstd dictionary as a blob of this pack; return its index for Frame.dict."""
        data = dictionary.as_bytes()
        blob_id = page_digest(data)
        self.add_frames(BLOB, [(*encode_frame(data, compressor), len(data), 0)], blob_id)
        self._dicts.append(blob_id)
        return len(self._dicts)

    def add_stored_dict(self, codec: store_pb2.Frame.Codec, level: int, stored: bytes, raw_length: int,
                        blob_id: bytes) -> int:
        """Copy a dictionary frame of another pack as it is stored; return its index for Frame.dict."""
        self.add_frames(BLOB, [(codec, level, stored, raw_length, 0)], blob_id)
        self._dicts.append(blob_id)
        return len(self._dicts)

    def _trailer_bytes(self) -> bytes:
        """The PackTrailer, serialized as ``SerializeToString(deterministic=True)`` makes it:
        fields by number (version, frames, dicts)."""
        dicts = b"".join(_TRAILER_DICT_TAG + _varint(len(d)) + d for d in self._dicts)
        return _TRAILER_VERSION_TAG + _varint(self.version) + bytes(self._frames) + dicts

    def seal(self) -> SealedPack:
        """Write the trailer, fsync, and rename to ``packs/xx/<name>`` (directory fsynced too).

        On failure before the rename the temporary file is deleted; after it (the directory
        fsync failed), ``renamed`` is the pack now on disk under its name: the caller owns it.
        """
        try:
            trailer_bytes = self._trailer_bytes()
            trailer = store_pb2.PackTrailer.FromString(trailer_bytes)
            self._append(trailer_bytes + TAIL.pack(len(trailer_bytes), MAGIC))
            assert self._file is not None
            self._file.finish()
            file, self._file = self._file, None
            file.close()
            name = self._hash.hexdigest()
            subdir = self._packs_dir / name[:2]
            if make_dir(subdir):
                fsync_dir(self._packs_dir)
            # Same name means same bytes (a crashed writer's identical pack): replacing it is harmless.
            os.rename(self.tmp, subdir / name)
        except BaseException:
            self.discard()
            raise
        self.renamed = SealedPack(name=name, size=self.size, trailer=trailer)
        fsync_dir(subdir)
        return self.renamed

    def discard(self) -> None:
        """Drop an unsealed pack (abort): close it, delete its temporary file; harmless if already
        sealed or discarded."""
        if self._file is not None:
            file, self._file = self._file, None
            with contextlib.suppress(OSError):      # an I/O error is what brought us here
                file.close()
        if self.renamed is None:
            # Left by a failing disk, the next writer deletes it with the other stale temporaries.
            with contextlib.suppress(OSError):
                os.unlink(self.tmp)
