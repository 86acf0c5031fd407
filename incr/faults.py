"""Named fault-injection points (CRIU's CRIU_FAULT habit).

Setting ``INCR_FAULT=<point>`` makes the process SIGKILL itself when it
reaches that point, so tests can prove that a crash anywhere leaves the store
and the job as they were.  With ``INCR_FAULT_ERRNO=<name>`` (``EIO``,
``ENOSPC``...) as well, the point raises that OSError instead, as a failing
disk would, so tests can prove that an I/O error anywhere aborts cleanly;
with ``INCR_FAULT_SIGNAL=<name>`` (``SIGINT``: a Ctrl-C there), the process
sends itself that signal instead.
The points are listed in ``POINTS`` (checkpoint), ``GC_POINTS`` (forget and
prune), ``RESTORE_POINTS``, ``GHOST_POINTS``, ``NET_POINTS``, ``UNIX_POINTS`` and ``PTY_POINTS``.
"""

from __future__ import annotations

import errno
import os
import signal

POINTS = (
    "frozen",           # job frozen, state partly read
    "thawed",           # job running again, nothing stored yet
    "pack-written",     # a pack file fsynced, not yet indexed
    "indexed",          # packs indexed, manifest not written
    "manifest-written", # manifest fsynced under its temporary name
)
GC_POINTS = (
    "forget-listed",        # the list of snapshots to forget is durable (the commit point)
    "forget-unlinked",      # one forgotten manifest unlinked
    "prune-pack-sealed",    # a pack of copied live frames sealed, not indexed
    "prune-packs-written",  # every new pack sealed, the index still the old one
    "prune-indexed",        # the index names only what stays; old packs still on disk
    "prune-deleted",        # one old pack unlinked
)
RESTORE_POINTS = (
    "restoring",        # every process of the tree half-built: memory and descriptors in, no registers
)
# Reached only by a restore of a job that held deleted files (tests/test_ghost_files.py).
GHOST_POINTS = (
    "ghost-named",      # a deleted file made again under its name, the job not holding it yet
)

# Reached only by a checkpoint of a job with queued UDP datagrams and TCP connections (tests/test_inet.py).
NET_POINTS = (
    "udp-peek",         # a UDP socket's peek offset moved to read its queue
    "tcp-repair",       # one socket of the job in repair mode, the network lock on
)

# Reached only by a checkpoint of a job whose datagram pair holds an empty datagram behind others, which
# no peek sees (engine/unixsock.py: its queue is read out and sent back; tests/test_unixsock.py).
UNIX_POINTS = (
    "dgram-drained",    # a datagram pair's queue read out into incr, not yet sent back
)

# Reached only by a checkpoint of a job whose pseudo-terminal holds bytes waiting to be read (engine/pty.py:
# they are read out and put back; tests/test_terminals.py), or whose output is stopped by VSTOP.
PTY_POINTS = (
    "pty-drained",      # a pty's queues (or its packet-mode status) read out into incr, not yet put back
    "pty-started",      # a stopped pty's output started to learn how it was stopped, not yet stopped again
)

# Inside a remote syscall into a live job (engine/tracee.py): the native call kills incr at that stage.
INJECTION_POINTS = {"injected-set": 1, "injected-entry": 2, "injected-exit": 3}

_ACTIVE = os.environ.get("INCR_FAULT", "")
_ERRNO: int = getattr(errno, os.environ.get("INCR_FAULT_ERRNO") or "-", 0)
_SIGNAL: int = getattr(signal, os.environ.get("INCR_FAULT_SIGNAL") or "-", 0)
_injections_left = int(os.environ.get("INCR_FAULT_AFTER", "0"))


def fault_point(name: str) -> None:
    """Die here, as abruptly as a node failure, if INCR_FAULT names this point (or fail as a disk
    does, if INCR_FAULT_ERRNO names an error; or be sent INCR_FAULT_SIGNAL)."""
    if name != _ACTIVE:
        return
    if _ERRNO:
        raise OSError(_ERRNO, f"{os.strerror(_ERRNO)} (injected by INCR_FAULT at {name})")
    os.kill(os.getpid(), _SIGNAL or signal.SIGKILL)


def injection_fault() -> int:
    """The stage at which the native remote syscall must kill incr (0: none): when INCR_FAULT names
    an injection point, at the (INCR_FAULT_AFTER+1)-th live injection."""
    global _injections_left
    stage = INJECTION_POINTS.get(_ACTIVE, 0)
    if not stage:
        return 0
    if _injections_left > 0:
        _injections_left -= 1
        return 0
    return stage
