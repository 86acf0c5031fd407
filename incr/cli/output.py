"""Formatting shared by the commands: sizes, durations and counts for people, aligned tables."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from incr.units import size as size  # (re-exported: the commands format sizes through here)


def duration_ms(ms: float) -> str:
    """Milliseconds for people, in the unit that keeps the number short: '0.42 ms', '6.2 ms',
    '118 ms', '1.4 s', '10.6 s', '2.5 min' (never '10575.3 ms')."""
    if ms < 1:
        return f"{ms:.2f} ms"
    if ms < 100:
        return f"{ms:.1f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    if ms < 3_600_000:
        return f"{ms / 60_000:.1f} min"
    return f"{ms / 3_600_000:.1f} h"


def count(n: int) -> str:
    """A count for people: exact below ten thousand, then '12.3k', '1.5M'."""
    if n < 10_000:
        return str(n)
    if n < 1_000_000:
        return f"{n / 1000:.1f}k"
    return f"{n / 1_000_000:.1f}M"


def table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> list[str]:
    """Lines of an aligned table, two spaces between columns; columns whose index is in `right`
    are right-aligned (numbers), the last column is never padded."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        out = []
        for i, cell in enumerate(cells):
            last = i == len(cells) - 1
            out.append(cell.rjust(widths[i]) if i in right else cell if last else cell.ljust(widths[i]))
        return "  ".join(out).rstrip()

    return [line(header), *(line(r) for r in rows)]


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2)
    sys.stdout.write("\n")
