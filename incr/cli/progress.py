"""A progress line on stderr for long work, drawn only when stderr is a terminal.

A log line (a warning during a restore, say) erases the line first (ClearsProgress, a logging
filter the command line installs), and the next update draws it again below."""

from __future__ import annotations

import logging
import sys
import time
from typing import ClassVar, Final, TextIO

from incr.cli.output import size

#: Steps whose units are bytes (the others count items).
BYTE_STEPS: Final = frozenset({"reading packs", "rewriting packs"})
#: Steps whose units are 4 KiB pages, shown as bytes (incr.snapshot: checkpoint and restore).
PAGE_STEPS: Final = frozenset({"storing pages", "restoring pages"})
PAGE: Final = 4096
_INTERVAL: Final = 0.1


class ProgressLine:
    """``ProgressLine()(what, done, total)`` redraws one line, at most ten times a second."""

    #: The line drawn now, if any: a log line erases it first.
    active: ClassVar[ProgressLine | None] = None

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
        unit = PAGE if what in PAGE_STEPS else 1 if what in BYTE_STEPS else 0
        if unit:
            elapsed = now - self._start
            rate = f", {done * unit / 1e6 / elapsed:.0f} MB/s" if elapsed > 0.2 else ""
            counts = f"{size(done * unit)} of {size(total * unit)}{rate}"
        else:
            counts = f"{done} of {total}"
        self._stream.write(f"\r\x1b[K{what}: {pct} ({counts})")
        self._stream.flush()
        self._drawn = True
        ProgressLine.active = self

    def close(self) -> None:
        """Erase the line, so that what follows starts on a clean one."""
        if self._drawn:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
            self._drawn = False
        if ProgressLine.active is self:
            ProgressLine.active = None


class ClearsProgress(logging.Filter):
    """Erases the progress line before a log record is written to the same terminal."""

    def filter(self, record: logging.LogRecord) -> bool:
        line = ProgressLine.active
        if line is not None:
            line.close()
        return True
