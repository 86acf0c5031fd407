"""Layered page maps: a region's map is a stack of page-map blobs, oldest first.

The bottom layer is complete; every layer above it lists only the pages that
changed, a HOLE_DIGEST entry saying "no longer held" (fresh zero memory, or
the file's page again).  A snapshot names all the layers of each region, so
reading a region never walks parent snapshots.

Bounds, both ways (docs/store-format.md, "Layered page maps"):

* a new snapshot adds one layer holding only what changed;
* then, while the layer below the top is at most MERGE_RATIO times the top's
  size, the two are merged (into a new complete bottom layer when the lower
  one is the bottom).  Layer sizes thus grow geometrically downwards: a region
  has at most about log2(pages) + 1 layers, reading it costs at most about
  twice its complete map, and each changed entry is rewritten O(log) times.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from incr.proto import store_pb2

from .digest import DIGEST_SIZE
from .pagemap import decode_page_map, encode_page_map

HOLE_DIGEST = b"\xff" * DIGEST_SIZE
MERGE_RATIO = 2

PageDict = dict[int, bytes]          # page index (relative to the region) -> digest


def runs_of(pages: PageDict) -> Iterator[tuple[int, int]]:
    """Maximal runs (first, count) of consecutive page indices."""
    first = count = -1
    for index in sorted(pages):
        if count > 0 and index == first + count:
            count += 1
            continue
        if count > 0:
            yield first, count
        first, count = index, 1
    if count > 0:
        yield first, count


def encode(pages: PageDict) -> bytes:
    runs = list(runs_of(pages))
    digests = b"".join(pages[i] for first, count in runs for i in range(first, first + count))
    return encode_page_map([r[0] for r in runs], [r[1] for r in runs], digests)


def decode(blob: bytes) -> PageDict:
    pm = decode_page_map(blob)
    out: PageDict = {}
    pos = 0
    d = pm.digests
    for first, count in zip(pm.run_first, pm.run_count, strict=True):
        for i in range(first, first + count):
            out[i] = d[pos:pos + DIGEST_SIZE]
            pos += DIGEST_SIZE
    return out


def apply(base: PageDict, delta: PageDict, *, keep_holes: bool) -> PageDict:
    """`delta` over `base`; holes delete (or stay, to be applied further down, with keep_holes)."""
    out = dict(base)
    for index, digest in delta.items():
        if digest == HOLE_DIGEST and not keep_holes:
            out.pop(index, None)
        else:
            out[index] = digest
    return out


@dataclass
class Layer:
    entries: int
    blob: str = ""                  # set once written
    pages: PageDict | None = None   # in memory (new or merged, not yet written)


def region_layers(ref: store_pb2.PageMapRef) -> list[Layer]:
    """The layers a manifest names for a region (a version-1 manifest: one complete map)."""
    if ref.layers:
        return [Layer(entries=n, blob=b) for b, n in zip(ref.layers, ref.layer_entries, strict=True)]
    return [Layer(entries=ref.pages, blob=ref.blob)] if ref.blob else []


BlobReader = Callable[[str], bytes]
BlobWriter = Callable[[bytes], str]


def _load(layer: Layer, read_blob: BlobReader) -> PageDict:
    if layer.pages is None:
        layer.pages = decode(read_blob(layer.blob))
    return layer.pages


def read_region(layers: list[Layer], read_blob: BlobReader) -> PageDict:
    """The complete map of a region: every layer applied in order, holes removed."""
    merged: PageDict = {}
    for layer in layers:
        merged = apply(merged, _load(layer, read_blob), keep_holes=False)
    return merged


def push(layers: list[Layer], delta: PageDict, read_blob: BlobReader, write_blob: BlobWriter) -> list[Layer]:
    """Layers after adding `delta` on top, consolidated; every layer written."""
    stack = [*layers, Layer(entries=len(delta), pages=delta)] if delta else list(layers)
    while len(stack) >= 2 and stack[-2].entries <= MERGE_RATIO * stack[-1].entries:
        top, below = stack.pop(), stack.pop()
        bottom = not stack
        merged = apply(_load(below, read_blob), _load(top, read_blob), keep_holes=not bottom)
        stack.append(Layer(entries=len(merged), pages=merged))
    for layer in stack:
        if not layer.blob:
            assert layer.pages is not None
            layer.blob = write_blob(encode(layer.pages))
    return stack
