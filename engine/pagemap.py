"""PAGEMAP_SCAN (Linux >= 6.7): page categories of a range of another process."""

from __future__ import annotations

import os
from typing import Any

from incr._native import ffi, lib

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


class Pagemap:
    """An open /proc/PID/pagemap; scans return (start, end, categories) regions."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.fd = os.open(f"/proc/{pid}/pagemap", os.O_RDONLY | os.O_CLOEXEC)
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
        """All matching regions of [start, end); continues past a full result vector."""
        out: list[tuple[int, int, int]] = []
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
            for i in range(n):
                region = (int(vec[i].start), int(vec[i].end), int(vec[i].categories))
                if out and out[-1][1] == region[0] and out[-1][2] == region[2]:
                    out[-1] = (out[-1][0], region[1], region[2])
                else:
                    out.append(region)
            walk_end = int(arg.walk_end)
            if walk_end <= pos:
                break
            pos = walk_end
        return out
