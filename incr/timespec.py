"""Times and durations as users type them: `--at`, `--every`, `--keep-within`."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from incr.errors import UsageError

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


class TimeSpecError(UsageError, ValueError):
    """A time or duration the user typed cannot be understood (exit code 2; a ValueError too, so that
    argparse takes it as a bad argument when raised by a type= function)."""


def parse_duration(text: str) -> float:
    """'30s', '10m', '1h30m', '2d' -> seconds."""
    s = text.strip().lower()
    pos, total = 0, 0.0
    for m in _DURATION.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if not s or pos != len(s):
        raise TimeSpecError(f"cannot read duration {text!r}: use a number with a unit, e.g. 30s, 10m, 1h30m, 2d")
    return total


def parse_at(text: str, now: float | None = None) -> float:
    """A point in time as Unix seconds.

    Accepts ISO-8601 ('2026-11-27T03:10', naive means local time, or with an
    offset or Z), Unix seconds ('1795000000.5'), or a duration meaning that
    long ago ('5m').
    """
    now = time.time() if now is None else now
    s = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", s) and float(s) > 1e8:
        return float(s)
    if _DURATION.match(s.lower()):
        try:
            return now - parse_duration(s)
        except TimeSpecError:
            pass
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00") if s.endswith("Z") else s)
    except ValueError:
        raise TimeSpecError(
            f"cannot read time {text!r}: use ISO-8601 (2026-11-27T03:10, local time unless an offset "
            "is given), Unix seconds (1795000000), or an age such as 5m or 2h") from None
    if dt.tzinfo is None:
        return dt.timestamp()            # naive: local time
    return dt.astimezone(UTC).timestamp()


def iso_utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def local_short(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")
