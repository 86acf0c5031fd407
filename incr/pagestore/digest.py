"""Page and object digests: BLAKE3 truncated to 128 bits.

128 bits keep the birthday bound far beyond any store's page count (2**64
pages before a collision is likely) while halving the index against a
full-width digest.  The all-zero digest is reserved for the all-zero page,
which is never hashed nor stored.
"""

from __future__ import annotations

from typing import Final

import blake3

from incr._native import ffi, lib

PAGE_SIZE: Final = 4096
DIGEST_SIZE: Final = 16
ZERO_DIGEST: Final = bytes(DIGEST_SIZE)
ZERO_PAGE: Final = bytes(PAGE_SIZE)

#: Name of the digest recorded in the store's config.
DIGEST_NAME: Final = "blake3-128"

_blake3 = blake3.blake3


def page_digest(page: bytes | bytearray | memoryview) -> bytes:
    """Digest of one page (or of any object: blobs use the same function)."""
    return _blake3(page).digest(DIGEST_SIZE)


def hex_id(data: bytes | bytearray | memoryview) -> str:
    """Hex id of a blob or a manifest: the same digest, as 32 hex digits."""
    return _blake3(data).hexdigest(DIGEST_SIZE)


def pack_digest(data: bytes | bytearray | memoryview) -> str:
    """Name of a pack: hex of the full 256-bit BLAKE3 of its bytes (names need no truncation)."""
    return _blake3(data).hexdigest()


def zero_pages(view: memoryview) -> bytes:
    """One byte a page of ``view`` (whole pages, C-contiguous bytes): 1 where the page is all
    zero.  One C call: a test per page in Python copied each page of a mapped buffer (3 us)."""
    n = view.nbytes // PAGE_SIZE
    flags = bytearray(n)
    if n:
        lib.incr_zero_pages(ffi.from_buffer(view), n, ffi.from_buffer(flags, require_writable=True))
    return bytes(flags)
