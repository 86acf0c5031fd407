"""A progress line on stderr for long work, drawn only when stderr is a terminal."""

from __future__ import annotations

import sys
import time
from typing import Final, TextIO

from incr.cli.output import size

#: Steps whose units are bytes (the others count items).
BYTE_STEPS: Final = frozenset({"reading packs", "rewriting packs"})
_INTERVAL: Final = 0.1


class ProgressLine:
    """``ProgressLine()(what, done, total)`` redraws one line, at most ten times a second."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self.enabled = self._stream.isatty()
        self._last = 0.0
        self._start = time.monotonic()
        self._step = ""
        self._drawn = False

    def __call__(self, what: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if what != self._step:
            self._step, self._start = what, now
        elif now - self._last < _INTERVAL and done < total:
            return
        self._last = now
        pct = f"{100 * done / total:3.0f}%" if total else ""
        if what in BYTE_STEPS:
            elapsed = now - self._start
            rate = f", {done / 1e6 / elapsed:.0f} MB/s" if elapsed > 0.2 else ""
            counts = f"{size(done)} of {size(total)}{rate}"
        else:
            counts = f"{done} of {total}"
        self._stream.write(f"\r\x1b[K{what}: {pct} ({counts})")
        self._stream.flush()
        self._drawn = True

    def close(self) -> None:
        """Erase the line, so that what follows starts on a clean one."""
        if self._drawn:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
            self._drawn = False
