"""Baselines measured in the benchmark's own process, on the job's own pages: what zstd -1 and
the page digest do with them on one core, and the copy limit of a restore (process_vm_writev of
as many bytes into a fresh mapping of another process)."""

from __future__ import annotations

import ctypes
import mmap
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import zstandard

from incr.engine import ptrace
from incr.pagestore.digest import PAGE_SIZE, ZERO_PAGE, page_digest

#: Pages read from the job for the baselines, at most (they are a sample beyond that).
MOST_SAMPLED = 512 << 20
_CHUNK = 16 << 20


@dataclass(frozen=True)
class PageBaselines:
    """Single-core throughput on the job's non-zero pages (MB/s of page bytes)."""

    pages: int
    zstd_mb_s: float            # zstd -1 of the pages as one stream (what `zstd -1` does to a dump)
    zstd_page_mb_s: float       # zstd -1 of each page as its own frame (the store's unit)
    digest_mb_s: float          # the store's page digest (BLAKE3-128)
    zstd_bytes_per_page: float  # zstd -1 size of a page as its own frame, on average
    unzstd_page_mb_s: float = 0.0   # decompressing those frames (a restore's first limit)


def job_pids(root: int) -> list[int]:
    """The root and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _writable_regions(pid: int) -> Iterator[tuple[int, int, tuple[str, str, str] | None]]:
    """(start, end, what it maps if shared: device, inode, offset) of each writable mapping."""
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        fields = line.split()
        if "w" not in fields[1] or (len(fields) > 5 and fields[5] in ("[vvar]", "[vsyscall]")):
            continue
        start, end = (int(x, 16) for x in fields[0].split("-"))
        yield start, end, (fields[3], fields[4], fields[2]) if fields[1][3] == "s" else None


def read_job_pages(root: int, most: int = MOST_SAMPLED) -> tuple[list[bytes], int]:
    """The job's non-zero pages of writable memory (every process), up to `most` bytes of them,
    and how many non-zero pages it has in all."""
    pages: list[bytes] = []
    count = 0
    buf = bytearray(_CHUNK)
    shared: set[tuple[str, str, str]] = set()          # a region several processes map counts once
    for pid in job_pids(root):
        try:
            regions = list(_writable_regions(pid))
        except OSError:
            continue
        for start, end, maps in regions:
            if maps is not None:
                if maps in shared:
                    continue
                shared.add(maps)
            for at in range(start, end, _CHUNK):
                n = min(_CHUNK, end - at)
                try:
                    ptrace.vm_read_into(pid, [(at, n)], buf)
                except OSError:
                    break                       # a guard page, or the process ended: the next region
                view = memoryview(buf)[:n]
                for off in range(0, n, PAGE_SIZE):
                    page = view[off : off + PAGE_SIZE]
                    if page != ZERO_PAGE:
                        count += 1
                        if count * PAGE_SIZE <= most:
                            pages.append(bytes(page))
    return pages, count


def measure_pages(pages: list[bytes]) -> PageBaselines:
    """zstd -1 and digest throughput over `pages`, single-threaded, in this process."""
    if not pages:
        return PageBaselines(0, 0.0, 0.0, 0.0, 0.0)
    total = len(pages) * PAGE_SIZE / 1e6
    t0 = time.perf_counter()
    stream = zstandard.ZstdCompressor(level=1).compressobj()
    for page in pages:
        stream.compress(page)
    stream.flush()
    t_stream = time.perf_counter() - t0
    framed = zstandard.ZstdCompressor(level=1)
    t0 = time.perf_counter()
    frames = [framed.compress(page) for page in pages]
    t_pages = time.perf_counter() - t0
    compressed = sum(map(len, frames))
    unframed = zstandard.ZstdDecompressor()
    t0 = time.perf_counter()
    for frame in frames:
        unframed.decompress(frame)
    t_unpages = time.perf_counter() - t0
    del frames
    t0 = time.perf_counter()
    for page in pages:
        page_digest(page)
    t_digest = time.perf_counter() - t0
    return PageBaselines(len(pages), total / t_stream, total / t_pages, total / t_digest, compressed / len(pages),
                         total / t_unpages)


#: madvise(2) MADV_POPULATE_WRITE (Linux 5.14; Python 3.11's mmap module lacks the name).
_MADV_POPULATE_WRITE = 23
#: Below this the difference is lost in the noise (16 MiB: ~30 ms at most): nothing to do.
WARM_FROM_BYTES = 128 << 20


def warm_free_memory(nbytes: int) -> None:
    """Leave twice `nbytes` of memory just freed, so that a restore of a job of `nbytes` (its
    pages, and the page cache of what it reads) starts on memory the guest holds.

    In a VM with free page reporting (this one) the guest gives memory freed a while ago back to
    the host, gradually, and memory taken back faults in on the host's side too: writing 1 GiB
    into a fresh mapping took 0.42 s on memory just freed, 1.5-2.5 s on memory given back
    (measured here, 3 December 2026).  Which a restore meets depended on what ran before it
    (a peer's images written through the page cache, incr's packs written past it), not on the
    engine: a 2 GiB restore by CRIU took 0.84 s, below that copy limit taken cold.  Every
    engine's restore, and the copy limit, are timed after this, alike: what they cost on a
    machine that is not short of memory.
    """
    if nbytes < WARM_FROM_BYTES:
        return
    area = mmap.mmap(-1, 2 * nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    try:
        try:
            area.madvise(_MADV_POPULATE_WRITE)
        except OSError:             # older kernels: a write a page
            for at in range(0, len(area), PAGE_SIZE):
                area[at] = 1
    finally:
        area.close()


def copy_limit_s(nbytes: int, repeat: int = 3) -> float:
    """Median time to process_vm_writev `nbytes` into a fresh anonymous mapping of another
    process (its pages faulted in by the copy, as a restore's are, each time after
    warm_free_memory): what no restore can beat."""
    nbytes = max(PAGE_SIZE, nbytes // PAGE_SIZE * PAGE_SIZE)
    data = os.urandom(1 << 20) * (nbytes // (1 << 20)) + os.urandom(nbytes % (1 << 20))
    times = []
    for _ in range(repeat):
        warm_free_memory(nbytes)
        pid, addr = _target(nbytes)
        try:
            t0 = time.perf_counter()
            ptrace.vm_write(pid, [(addr, nbytes)], data)
            times.append(time.perf_counter() - t0)
        finally:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    return sorted(times)[len(times) // 2]


def _target(nbytes: int) -> tuple[int, int]:
    """A child process holding a fresh mapping of `nbytes`; (its PID, the mapping's address)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:                                   # the child: map, say where, wait to be killed
        try:
            os.close(r)
            area = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
            addr = ctypes.addressof(ctypes.c_char.from_buffer(area))
            os.write(w, addr.to_bytes(8, "little"))
            while True:
                signal.pause()
        finally:
            os._exit(0)
    os.close(w)
    try:
        got = os.read(r, 8)
    finally:
        os.close(r)
    if len(got) != 8:
        os.waitpid(pid, 0)
        raise OSError("the copy-limit target process did not start")
    return pid, int.from_bytes(got, "little")
