"""Named fault-injection points (CRIU's CRIU_FAULT habit).

Setting ``INCR_FAULT=<point>`` makes the process SIGKILL itself when it
reaches that point, so tests can prove that a crash anywhere leaves the store
and the job as they were.  The points are listed in ``POINTS`` (checkpoint)
and ``RESTORE_POINTS``.
"""

from __future__ import annotations

import os
import signal

POINTS = (
    "frozen",           # job frozen, state partly read
    "thawed",           # job running again, nothing stored yet
    "pack-written",     # a pack file fsynced, not yet indexed
    "indexed",          # packs indexed, manifest not written
    "manifest-written", # manifest fsynced under its temporary name
)
RESTORE_POINTS = (
    "restoring",        # every process of the tree half-built: memory and descriptors in, no registers
)

_ACTIVE = os.environ.get("INCR_FAULT", "")


def fault_point(name: str) -> None:
    """Die here, as abruptly as a node failure, if INCR_FAULT names this point."""
    if name == _ACTIVE:
        os.kill(os.getpid(), signal.SIGKILL)
