"""incr's page store: content-addressed, deduplicated, compressed pages and blobs.

Format: docs/store-format.md.  Entry point: ``Store.open(path)``; snapshots
are written with ``Store.writer()`` (a SnapshotWriter).
"""

from .digest import DIGEST_SIZE, PAGE_SIZE, ZERO_DIGEST
from .errors import (
    AmbiguousId,
    CorruptPageMap,
    CorruptStore,
    InvalidSnapshotId,
    NotAStore,
    SnapshotNotFound,
    StoreAccessError,
    StoreError,
    StoreLocked,
    StoreNotFound,
    UnsafeStore,
    UnsupportedStore,
    UnsupportedVersion,
)
from .layers import HOLE_DIGEST, Layer, PageDict
from .layout import STORE_VERSION
from .pagemap import decode_page_map, encode_page_map
from .store import Store
from .writer import SnapshotWriter

__all__ = [
    "DIGEST_SIZE",
    "HOLE_DIGEST",
    "PAGE_SIZE",
    "STORE_VERSION",
    "ZERO_DIGEST",
    "AmbiguousId",
    "CorruptPageMap",
    "CorruptStore",
    "InvalidSnapshotId",
    "Layer",
    "NotAStore",
    "PageDict",
    "SnapshotNotFound",
    "SnapshotWriter",
    "Store",
    "StoreAccessError",
    "StoreError",
    "StoreLocked",
    "StoreNotFound",
    "UnsafeStore",
    "UnsupportedStore",
    "UnsupportedVersion",
    "decode_page_map",
    "encode_page_map",
]
