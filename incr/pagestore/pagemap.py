"""Page maps: which pages of one memory region a snapshot holds, as runs of page indices.

A map is stored as a blob (``store_pb2.PageMap``).  Runs are sorted, do not
overlap and are never empty; ``digests`` holds 16 bytes per page of every run,
in order, the zero digest standing for an all-zero page.  A map lists only the
pages a snapshot wrote, so its size scales with what the job dirtied.
"""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf.message import DecodeError

from incr.proto import store_pb2

from .digest import DIGEST_SIZE
from .errors import CorruptPageMap


def _check_runs(run_first: Sequence[int], run_count: Sequence[int], digest_bytes: int) -> str | None:
    """Why the runs are invalid, or None."""
    if len(run_first) != len(run_count):
        return f"{len(run_first)} run starts but {len(run_count)} run lengths"
    end = 0
    total = 0
    for i, (first, count) in enumerate(zip(run_first, run_count, strict=True)):
        if count <= 0:
            return f"run {i} is empty"
        if first < end or first < 0:
            return f"run {i} starts at page {first}, before the end of the previous run ({end})"
        end = first + count
        total += count
    if total * DIGEST_SIZE != digest_bytes:
        return f"runs hold {total} pages but there are {digest_bytes} digest bytes ({total * DIGEST_SIZE} expected)"
    return None


def encode_page_map(run_first: list[int], run_count: list[int], digests: bytes) -> bytes:
    """Serialized PageMap; ValueError if the runs are unsorted, overlap, or disagree with ``digests``."""
    problem = _check_runs(run_first, run_count, len(digests))
    if problem is not None:
        raise ValueError(f"invalid page map: {problem}")
    return store_pb2.PageMap(run_first=run_first, run_count=run_count, digests=digests).SerializeToString(
        deterministic=True
    )


def decode_page_map(data: bytes) -> store_pb2.PageMap:
    """Parse and validate a page map blob; CorruptPageMap if it is not one."""
    page_map = store_pb2.PageMap()
    try:
        page_map.ParseFromString(data)
    except DecodeError as e:
        raise CorruptPageMap(f"it does not decode ({e})") from e
    problem = _check_runs(page_map.run_first, page_map.run_count, len(page_map.digests))
    if problem is not None:
        raise CorruptPageMap(problem)
    return page_map
