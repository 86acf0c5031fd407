"""Between the engine and the page store: pages of a dump into page maps, and
page maps back into the pages a restore writes.

A region of a snapshot is one VMA of one process, named "PID:START" (hex);
its page map lists the pages the checkpoint holds for it.  The store sees
only regions, digests and blobs; the engine sees only (address, bytes) runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from incr.engine.dump import ProcessDump
from incr.engine.memory import PAGE
from incr.pagestore import DIGEST_SIZE, ZERO_DIGEST, SnapshotWriter, Store, decode_page_map, encode_page_map
from incr.proto import image_pb2, store_pb2

# Pages read from the store per write into the restored process: bounds
# restore's memory use while keeping process_vm_writev calls large.
RESTORE_BATCH_PAGES = 16384


def region_name(pid: int, vma: image_pb2.Vma) -> str:
    return f"{pid}:{vma.start:x}"


@dataclass
class PageCounts:
    total: int = 0
    copied: int = 0
    zero: int = 0


def store_pages(writer: SnapshotWriter, dump: ProcessDump, counts: PageCounts) -> list[store_pb2.PageMapRef]:
    """Hash, deduplicate and store a dump's pages; one page-map blob per VMA with pages."""
    by_vma: dict[int, list[tuple[int, int, bytes]]] = {}
    for run in dump.memory.runs:
        if run.offset >= 0:
            digests = writer.add_pages(dump.memory.data(run))
            counts.copied += run.count
            counts.zero += count_zero_digests(digests)
        else:
            digests = ZERO_DIGEST * run.count
            counts.zero += run.count
        by_vma.setdefault(run.vma, []).append((run.first, run.count, digests))
    refs = []
    for index, runs in sorted(by_vma.items()):
        vma = dump.image.vmas[index]
        blob = writer.add_blob(encode_page_map([r[0] for r in runs], [r[1] for r in runs],
                                               b"".join(r[2] for r in runs)))
        pages = sum(r[1] for r in runs)
        counts.total += pages
        refs.append(store_pb2.PageMapRef(region=region_name(dump.image.pid, vma), blob=blob, pages=pages))
    return refs


def count_zero_digests(digests: bytes) -> int:
    return sum(1 for i in range(0, len(digests), DIGEST_SIZE) if digests[i:i + DIGEST_SIZE] == ZERO_DIGEST)


class StorePages:
    """engine.memory.PageSource over one snapshot of a store."""

    def __init__(self, store: Store, snapshot: store_pb2.Snapshot, pid: int) -> None:
        self.store = store
        self.pid = pid
        self.maps = {ref.region: ref for ref in snapshot.page_maps}
        self.buffer = bytearray(RESTORE_BATCH_PAGES * PAGE)

    def pages(self, index: int, vma: image_pb2.Vma) -> Iterator[tuple[int, memoryview]]:
        ref = self.maps.get(region_name(self.pid, vma))
        if ref is None:
            return
        pm = decode_page_map(self.store.read_blob(ref.blob))
        # Fresh anonymous memory is already zero; a copied-on-write file page
        # that became zero must still be written over the file's data.
        skip_zero = vma.kind == image_pb2.Vma.ANON
        pos = 0
        for first, count in zip(pm.run_first, pm.run_count, strict=True):
            digests = pm.digests[pos * DIGEST_SIZE:(pos + count) * DIGEST_SIZE]
            pos += count
            for sub_first, sub_count in _nonzero_spans(digests, skip_zero):
                yield from self._read(vma.start + (first + sub_first) * PAGE,
                                      digests[sub_first * DIGEST_SIZE:(sub_first + sub_count) * DIGEST_SIZE])

    def _read(self, addr: int, digests: bytes) -> Iterator[tuple[int, memoryview]]:
        view = memoryview(self.buffer)
        step = RESTORE_BATCH_PAGES * DIGEST_SIZE
        for at in range(0, len(digests), step):
            chunk = digests[at:at + step]
            n = len(chunk) // DIGEST_SIZE
            self.store.read_pages_into(chunk, view[:n * PAGE])
            yield addr + at // DIGEST_SIZE * PAGE, view[:n * PAGE]


def _nonzero_spans(digests: bytes, skip_zero: bool) -> Iterator[tuple[int, int]]:
    """(first, count) page spans to write: all of them, or those with a non-zero digest."""
    n = len(digests) // DIGEST_SIZE
    if not skip_zero:
        if n:
            yield 0, n
        return
    start = -1
    for i in range(n):
        zero = digests[i * DIGEST_SIZE:(i + 1) * DIGEST_SIZE] == ZERO_DIGEST
        if not zero and start < 0:
            start = i
        elif zero and start >= 0:
            yield start, i - start
            start = -1
    if start >= 0:
        yield start, n - start
