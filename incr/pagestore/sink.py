"""The pack sink: compresses frames and appends them to packs on one background thread.

``add_pages`` hashes and deduplicates on the caller's thread (~3 us per page,
most of it BLAKE3); compressing (in C on both cores: PageEncoder), writing and
fsyncing (all release the GIL) overlap with it here.
"""

from __future__ import annotations

import functools
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Final

import zstandard

from incr.faults import fault_point
from incr.proto import store_pb2

from .digest import PAGE_SIZE
from .pack import (
    DICT_SAMPLE_PAGES,
    DICT_WINDOW_PAGES,
    PAGES,
    PackBuilder,
    PageEncoder,
    SealedPack,
    dictionary_pays,
    encode_frame,
    new_compressor,
    train_dictionary,
)

#: Batches waiting for the sink (each at most SUBMIT_PAGES = 1 MiB): bounds the
#: memory held while the disk is slower than hashing, and is the backpressure.
QUEUE_FRAMES: Final = 8


class _Command:
    def __init__(self, name: str) -> None:
        self.name = name


_SEAL: Final = _Command("seal")
_STOP: Final = _Command("stop")

_Frame = tuple[store_pb2.Frame.Kind, bytes | bytearray, bytes]


class PackSink:
    """Frames in, sealed packs out.

    Contract: a single thread submits (``submit``, ``seal``, ``close``).  One
    worker thread handles frames in submission order, so packs are byte for
    byte what writing inline would produce.  An error in the worker is raised
    to the submitter at its next call; from then on the sink drops all work
    until closed.  ``written`` (bytes appended to pack files, magic and
    trailers included) is updated by the worker: exact after ``seal()``,
    approximate before.  ``sealed`` is only read after ``seal()``.
    """

    def __init__(self, packs_dir: Path, pack_target: int) -> None:
        self._packs_dir = packs_dir
        self._pack_target = pack_target
        self._queue: queue.Queue[_Frame | _Command] = queue.Queue(maxsize=QUEUE_FRAMES)
        self._error: BaseException | None = None
        self._pack: PackBuilder | None = None
        # Pages waiting for the current pack's dictionary to be trained on them.
        self._held: list[tuple[bytes | bytearray, bytes]] = []
        self._held_pages = 0
        self._chosen = False        # whether the current window's dictionary (or none) is chosen
        self._page_dict: zstandard.ZstdCompressionDict | None = None    # the chosen one's dictionary
        self._encoder = PageEncoder()
        self._dict_index = 0
        self._window_left = 0       # pages the current choice of compressor still applies to
        self.sealed: list[SealedPack] = []
        self.written = 0
        self._thread = threading.Thread(target=self._run, name="incr-pack-sink", daemon=True)
        self._thread.start()

    @property
    def error(self) -> BaseException | None:
        """What made the worker give up (raised to the submitter at its next call), or None."""
        return self._error

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def submit(self, kind: store_pb2.Frame.Kind, raw: bytes | bytearray, digests: bytes) -> None:
        """Queue a blob or a batch of pages; ``raw`` now belongs to the sink and must not be modified."""
        self._check()
        self._queue.put((kind, raw, digests))

    def seal(self) -> list[SealedPack]:
        """Wait until every queued frame is in a sealed, fsynced pack; return all packs sealed so far."""
        self._check()
        self._queue.put(_SEAL)
        self._queue.join()
        self._check()
        return self.sealed

    def drain(self) -> None:
        """Wait until the worker has handled every queued frame (the pack stays open; up to
        DICT_SAMPLE_PAGES pages may stay held for the pack's dictionary until more come)."""
        self._check()
        self._queue.join()
        self._check()

    def close(self) -> None:
        """Stop the worker; an unsealed pack is discarded (its temporary file deleted).  ``sealed``
        is then every pack this sink put on disk under its name, whatever failed."""
        self._queue.put(_STOP)
        self._thread.join()

    def _run(self) -> None:
        compressor = new_compressor()
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    if self._pack is not None:
                        self._pack.discard()
                        self._pack = None
                    return
                if self._error is not None:
                    continue
                if item is _SEAL:
                    while self._held:       # released pages are held again if a pack fills meanwhile
                        self._release_held(compressor)
                    if self._pack is not None:
                        self._seal()
                elif isinstance(item, tuple):
                    kind, raw, digests = item
                    if kind == PAGES:
                        self._add_pages(raw, digests, compressor)
                    else:
                        frames = [(*encode_frame(raw, compressor), len(raw), 0)]
                        self._append(functools.partial(PackBuilder.add_frames, kind=kind, frames=frames,
                                                       digests=digests))
            except BaseException as e:
                if self._error is None:
                    self._error = e
            finally:
                self._queue.task_done()

    def _add_pages(self, raw: bytes | bytearray, digests: bytes, compressor: zstandard.ZstdCompressor) -> None:
        if not self._chosen:
            self._held.append((raw, digests))
            self._held_pages += len(raw) // PAGE_SIZE
            if self._held_pages >= DICT_SAMPLE_PAGES:
                self._release_held(compressor)
            return
        dictionary, dict_index = self._page_dict, self._dict_index
        self._window_left -= len(raw) // PAGE_SIZE
        if self._window_left <= 0:
            self._chosen = False        # the next pages choose the next window's dictionary
        encoded = self._encoder.encode(raw, dictionary, dict_index)
        self._append(functools.partial(PackBuilder.add_pages, pages=encoded, digests=digests))

    def _release_held(self, compressor: zstandard.ZstdCompressor) -> None:
        """Choose the current pack's page compressor (with a dictionary if there are enough held
        pages and one pays on them: the pack's last one, else one trained on them), then store
        the held pages."""
        if not self._held:
            return
        # The dictionary of the pack's last window, if it had one (a new pack has none).
        last, last_index = (self._page_dict, self._dict_index) if self._pack is not None else (None, 0)
        held, self._held, self._held_pages = self._held, [], 0
        self._chosen, self._dict_index, self._window_left = True, 0, DICT_WINDOW_PAGES
        self._page_dict = None
        pages = [memoryview(raw)[at : at + PAGE_SIZE] for raw, _ in held for at in range(0, len(raw), PAGE_SIZE)]
        dictionary = None
        if len(pages) >= DICT_SAMPLE_PAGES:
            if last is not None and last_index and dictionary_pays(pages[1::2], last, self._encoder):
                # Still good on this window's pages: training another costs 6 ms of the ~25
                # its 4096 pages take to compress (the 1 GiB sparse job's pages took 0.698 of
                # their size in the store either way).
                self._page_dict, self._dict_index = last, last_index
            else:
                dictionary = train_dictionary(pages, self._encoder)
        if dictionary is not None:
            if self._pack is None:
                self._new_pack()
            assert self._pack is not None
            before = self._pack.size
            self._dict_index = self._pack.add_dict(dictionary, compressor)
            self.written += self._pack.size - before
            self._page_dict = dictionary
        for raw, digests in held:
            self._add_pages(raw, digests, compressor)           # a pack sealed meanwhile holds them again

    def _new_pack(self) -> None:
        self._pack = PackBuilder(self._packs_dir)
        self.written += self._pack.size

    def _append(self, add: Callable[[PackBuilder], None]) -> None:
        """``add`` frames to the current pack (a new one if none), sealing it once full."""
        if self._pack is None:
            self._new_pack()
        assert self._pack is not None
        before = self._pack.size
        add(self._pack)
        self.written += self._pack.size - before
        if self._pack.size >= self._pack_target:
            self._seal()

    def _seal(self) -> None:
        pack, self._pack = self._pack, None
        self._chosen, self._dict_index = False, 0      # the next pack learns its own
        assert pack is not None
        before = pack.size
        try:
            sealed = pack.seal()
        except BaseException:
            if pack.renamed is not None:        # on disk under its name: SnapshotWriter.abort() decides
                self.sealed.append(pack.renamed)
            raise
        self.written += sealed.size - before
        self.sealed.append(sealed)
        fault_point("pack-written")
