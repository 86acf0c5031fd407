"""What the writer, gc and verify use of an open store.

``store.Store`` makes writers, runs gc and verify, so those modules must not import it back:
they are written against this protocol, which ``Store`` satisfies.  The dependencies point one
way: store -> writer, gc, verify -> handle.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from incr.proto import store_pb2

from .index import Index
from .layout import Layout
from .pack import SealedPack


class StoreHandle(Protocol):
    path: Path
    config: store_pb2.StoreConfig
    _layout: Layout
    _index: Index

    def has_snapshot(self, snapshot_id: str) -> bool: ...

    def load(self, id_or_prefix: str) -> tuple[str, store_pb2.Snapshot]: ...

    def read_blob(self, blob_id: str) -> bytes: ...

    def _snapshot_ids(self) -> list[str]: ...

    def _read_manifest(self, snapshot_id: str) -> store_pb2.Snapshot: ...

    def _load_packs(self) -> Iterator[SealedPack]: ...

    def _forget_read_caches(self) -> None: ...

    def _writer_closed(self, writer: Any) -> None: ...
