"""Quantities for people, shared by the command line and the supervisor's log."""

from __future__ import annotations


def size(n: float) -> str:
    """Bytes for people: '512 B', '3.2 MiB'."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")
