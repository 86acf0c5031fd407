"""PAGEMAP_SCAN (Linux >= 6.7): page categories of a range of another process."""

from __future__ import annotations

import os
from typing import Any

from incr._native import ffi, lib

from .errors import ProcessNotFound

PAGE_IS_WPALLOWED = 1 << 0
PAGE_IS_WRITTEN = 1 << 1
PAGE_IS_FILE = 1 << 2
PAGE_IS_PRESENT = 1 << 3
PAGE_IS_SWAPPED = 1 << 4
PAGE_IS_PFNZERO = 1 << 5
PAGE_IS_HUGE = 1 << 6
PAGE_IS_SOFT_DIRTY = 1 << 7

PM_SCAN_WP_MATCHING = 1 << 0
PM_SCAN_CHECK_WPASYNC = 1 << 1

_VEC_LEN = 4096

# Flags of pagemap_runs(), from /proc/PID/pagemap entries.
PM_RUN_PRESENT, PM_RUN_SOFT_DIRTY, PM_RUN_FILE, PM_RUN_MARKER = 1, 2, 4, 8


class Pagemap:
    """An open /proc/PID/pagemap; scans return (start, end, categories) regions."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        try:
            self.fd = os.open(f"/proc/{pid}/pagemap", os.O_RDONLY | os.O_CLOEXEC)
        except (FileNotFoundError, ProcessLookupError):
            raise ProcessNotFound(pid) from None
        self._vec: Any = ffi.new("struct incr_page_region[]", _VEC_LEN)
        self._arg: Any = ffi.new("struct incr_pm_scan_arg *")

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Pagemap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def scan(self, start: int, end: int, *, flags: int = 0, category_mask: int = 0,
             category_inverted: int = 0, category_anyof_mask: int = 0, return_mask: int) -> list[tuple[int, int, int]]:
        """All matching regions of [start, end), in address order, each once; continues past a full
        result vector."""
        raw: list[tuple[int, int, int]] = []
        arg = self._arg
        pos = start
        while pos < end:
            arg.flags = flags
            arg.start = pos
            arg.end = end
            arg.walk_end = 0
            arg.vec = int(ffi.cast("uintptr_t", self._vec))
            arg.vec_len = _VEC_LEN
            arg.max_pages = 0
            arg.category_inverted = category_inverted
            arg.category_mask = category_mask
            arg.category_anyof_mask = category_anyof_mask
            arg.return_mask = return_mask
            n = lib.incr_pagemap_scan(self.fd, arg)
            if n < 0:
                raise OSError(-n, f"PAGEMAP_SCAN of PID {self.pid} [{pos:#x}, {end:#x}): {os.strerror(-n)}")
            vec = self._vec
            raw.extend((int(vec[i].start), int(vec[i].end), int(vec[i].categories)) for i in range(n))
            walk_end = int(arg.walk_end)
            if walk_end <= pos:
                break
            pos = walk_end
        return _in_order(raw)


def _in_order(raw: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Regions sorted, each address once, adjacent equal ones merged.  A full vector's walk_end can
    lie behind the regions it returned (measured here: 4 MiB behind, 6.18), so the next call
    reports some again, and may report new ones in the gaps between them (a page written
    meanwhile, which that call write-protected): those must be kept."""
    raw.sort(key=lambda r: r[0])            # stable: for the same start, the earlier call's first
    out: list[tuple[int, int, int]] = []
    for s, e, c in raw:
        if out and s < out[-1][1]:
            if e <= out[-1][1]:
                continue
            s = out[-1][1]
        if out and out[-1][1] == s and out[-1][2] == c:
            out[-1] = (out[-1][0], e, c)
        else:
            out.append((s, e, c))
    return out


_RUNS_MAX = 4096


def pagemap_runs(fd: int, start: int, end: int) -> list[tuple[int, int, int]]:
    """/proc/PID/pagemap (open as fd) over [start, end) as (start, end, PM_RUN_* flags) runs.

    Works on any kernel; PAGEMAP_SCAN is faster where it exists (>= 6.7)."""
    out = ffi.new("uint64_t[]", 3 * _RUNS_MAX)
    runs: list[tuple[int, int, int]] = []
    pos = start
    while pos < end:
        n = lib.incr_pagemap_runs(fd, pos, end, out, _RUNS_MAX)
        if n < 0:
            raise OSError(-n, f"pagemap read: {os.strerror(-n)}")
        runs.extend((int(out[3 * i]), int(out[3 * i + 1]), int(out[3 * i + 2])) for i in range(n))
        if n < _RUNS_MAX:
            break
        pos = runs[-1][1]
    return runs


_HAS_SCAN: bool | None = None


def has_pagemap_scan() -> bool:
    """Whether this kernel answers PAGEMAP_SCAN (Linux >= 6.7); probed once on incr itself."""
    global _HAS_SCAN
    if _HAS_SCAN is None:
        try:
            with Pagemap(os.getpid()) as pm:
                pm.scan(0, 4096, return_mask=PAGE_IS_PRESENT)
            _HAS_SCAN = True
        except OSError:
            _HAS_SCAN = False
    return _HAS_SCAN


def held_regions(pm: Pagemap, start: int, end: int, *, file_backed: bool,
                 return_mask: int = 0) -> list[tuple[int, int, int]]:
    """Regions of [start, end) holding the process's own data: present or swapped pages (of a
    private file mapping: only its copied-on-write ones).

    PAGEMAP_SCAN reports a userfaultfd write-protect marker on an absent page
    as SWAPPED: those stretches are checked against /proc/PID/pagemap, which
    tells a marker from a real swap entry.
    """
    extra = {"category_mask": PAGE_IS_FILE, "category_inverted": PAGE_IS_FILE} if file_backed else {}
    regions = pm.scan(start, end, category_anyof_mask=PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
                      return_mask=return_mask | PAGE_IS_PRESENT, **extra)
    if not any(not cats & PAGE_IS_PRESENT for _, _, cats in regions):
        return [(s, e, c & ~PAGE_IS_PRESENT | (c & return_mask)) for s, e, c in regions]
    out: list[tuple[int, int, int]] = []
    fd = os.open(f"/proc/{pm.pid}/pagemap", os.O_RDONLY | os.O_CLOEXEC)
    try:
        for s, e, cats in regions:
            keep = cats & return_mask
            if cats & PAGE_IS_PRESENT:
                out.append((s, e, keep))
                continue
            for rs, re_, flags in pagemap_runs(fd, s, e):
                if flags & PM_RUN_PRESENT:
                    out.append((rs, re_, keep))
    finally:
        os.close(fd)
    return out
