"""Page and object digests: BLAKE3 truncated to 128 bits.

128 bits keep the birthday bound far beyond any store's page count (2**64
pages before a collision is likely) while halving the index against a
full-width digest.  The all-zero digest is reserved for the all-zero page,
which is never hashed nor stored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import blake3

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


def prefix_test(view: memoryview) -> Callable[[bytes, int], bool]:
    """Return ``starts_with(prefix, offset)``: whether ``view[offset:]`` starts with ``prefix``.

    Used as ``starts_with(ZERO_PAGE, off)`` to find zero pages.  ``view``
    must be a C-contiguous, one-dimensional memoryview of bytes.  Measured
    here on 4 KiB pages: ``bytes.startswith(ZERO_PAGE, off)`` 0.1 us (a
    memcmp, no copy); ``memoryview == ZERO_PAGE`` 3.3 us on a zero page (it
    compares item by item); copying the page then comparing 0.2-0.3 us.  So
    the bound ``startswith`` of the underlying object is returned whenever
    ``view`` covers a whole bytes or bytearray, a copying test otherwise.
    """
    obj = view.obj
    if isinstance(obj, bytes | bytearray) and view.nbytes == len(obj):
        return obj.startswith

    def copy_test(prefix: bytes, off: int) -> bool:
        return view[off : off + len(prefix)].tobytes() == prefix

    return copy_test
