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
import os
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import blake3
import zstandard
from google.protobuf.message import DecodeError

from incr.proto import store_pb2

from .digest import DIGEST_SIZE, PAGE_SIZE
from .fsutil import create_file, fsync_dir, make_dir, temp_name, write_all

MAGIC: Final = b"INCRPK\x00\x01"
PACK_VERSION: Final = 1
#: Trailer length then the closing magic.
TAIL: Final = struct.Struct("<I8s")
#: Smallest valid pack: both magics, an empty trailer and its length.
MIN_PACK_SIZE: Final = len(MAGIC) + TAIL.size

#: Pages per frame.  Measured on heap pages (DESIGN §4): 1 page/frame 146 MB/s
#: and 26.7 % of the raw size, 64 pages/frame 254 MB/s and 22.6 %.  More pages
#: per frame cost reads of pages nobody asked for.
MAX_FRAME_PAGES: Final = 64
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


def decode_frame(
    codec: int, stored: bytes, raw_length: int, decompressor: zstandard.ZstdDecompressor
) -> bytes:
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
    if trailer.version != PACK_VERSION:
        raise PackFormatError(f"pack format version {trailer.version} is not supported")
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


@dataclass(frozen=True)
class SealedPack:
    """A pack durably stored under its content name."""

    name: str
    size: int
    trailer: store_pb2.PackTrailer


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
        self._fd: int | None = create_file(self.tmp)
        self._hash = blake3.blake3()
        self._trailer = store_pb2.PackTrailer(version=PACK_VERSION)
        self.size = 0
        self._append(MAGIC)

    @property
    def frame_count(self) -> int:
        return len(self._trailer.frames)

    def _append(self, data: bytes | bytearray | memoryview) -> None:
        assert self._fd is not None, "pack already sealed or discarded"
        write_all(self._fd, data)
        self._hash.update(data)
        self.size += len(data)

    def add_frame(
        self,
        kind: store_pb2.Frame.Kind,
        codec: store_pb2.Frame.Codec,
        level: int,
        stored: bytes | bytearray | memoryview,
        raw_length: int,
        digests: bytes,
    ) -> None:
        """Append one frame; ``digests`` are its pages' digests (PAGES) or the blob id (BLOB)."""
        if len(stored) > MAX_FRAME_BYTES or raw_length > MAX_FRAME_BYTES:
            raise ValueError(f"frame of {raw_length} bytes exceeds the 4 GiB format limit")
        offset = self.size
        self._append(stored)
        self._trailer.frames.add(
            kind=kind,
            codec=codec,
            level=level,
            offset=offset,
            length=len(stored),
            raw_length=raw_length,
            digests=digests,
        )

    def seal(self) -> SealedPack:
        """Write the trailer, fsync, and rename to ``packs/xx/<name>`` (directory fsynced too)."""
        trailer_bytes = self._trailer.SerializeToString(deterministic=True)
        self._append(trailer_bytes + TAIL.pack(len(trailer_bytes), MAGIC))
        assert self._fd is not None
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = None
        name = self._hash.hexdigest()
        subdir = self._packs_dir / name[:2]
        if make_dir(subdir):
            fsync_dir(self._packs_dir)
        # Same name means same bytes (a crashed writer's identical pack): replacing it is harmless.
        os.rename(self.tmp, subdir / name)
        fsync_dir(subdir)
        return SealedPack(name=name, size=self.size, trailer=self._trailer)

    def discard(self) -> None:
        """Drop an unsealed pack (abort); harmless if already sealed or discarded."""
        if self._fd is None:
            return
        os.close(self._fd)
        self._fd = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp)
