"""Zombies: processes of the tree that have exited and that their parent has not reaped yet.

Dumped as their wait status (/proc/PID/stat, exit_code), restored by making a fresh stub
end the same way: exit_group() with the same code, or death by the same signal at its
default action.  The parent's waitpid() then sees the very same status, the core-dump flag
(WCOREDUMP) included: the kernel sets that flag only when a core file was written, so a stub
that must have it dumps a small core (coredump_filter 0: headers and notes, no memory) into
a private directory of incr's, removed at once.  That is possible when core_pattern names a
plain file (written in the dying process's working directory); with a pipe (systemd-coredump,
apport) or a path elsewhere it is not, and the restore says so.
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .remote import Stub

log = logging.getLogger(__name__)

CORE_PATTERN = Path("/proc/sys/kernel/core_pattern")
# Signals whose default action dumps core (signal(7)).
CORE_SIGNALS = frozenset({signal.SIGQUIT, signal.SIGILL, signal.SIGTRAP, signal.SIGABRT, signal.SIGBUS,
                          signal.SIGFPE, signal.SIGSEGV, signal.SIGXCPU, signal.SIGXFSZ, signal.SIGSYS})
# A core limit of 1 byte stops every core dump: a file needs at least a page, and the kernel
# refuses a pipe to a process so limited (0 would not stop a pipe).
NO_CORE = 1


def restore(stub: Stub, parent: Stub, status: int) -> None:
    """End `stub` (a child of `parent`) with wait status `status`; the SIGCHLD this sends to the
    parent is discarded (the image holds the parent's pending signals as they were)."""
    if os.WIFSIGNALED(status):
        _die(stub, os.WTERMSIG(status), core=os.WCOREDUMP(status))
    else:
        stub.exit_as(os.WEXITSTATUS(status))
    parent.discard_pending(signal.SIGCHLD)


def _die(stub: Stub, sig: int, *, core: bool) -> None:
    if sig not in CORE_SIGNALS:
        stub.die_of(sig)
        return
    why = _why_no_core(stub.pid) if core else ""
    if not core or why:
        _set_core_limit(stub.pid, NO_CORE)
        stub.die_of(sig)
        if core:
            log.warning("PID %d: restored as a zombie killed by %s, but without the core-dump flag its "
                        "parent would have seen: %s", stub.vpid, signal.Signals(sig).name, why)
        return
    with _private_cwd(stub):
        _set_core_limit(stub.pid, resource.RLIM_INFINITY)
        Path(f"/proc/{stub.pid}/coredump_filter").write_text("0")
        got = stub.die_of(sig)
    if not os.WCOREDUMP(got):
        log.warning("PID %d: restored as a zombie killed by %s, but the kernel wrote no core: its parent "
                    "will not see the core-dump flag", stub.vpid, signal.Signals(sig).name)


def _why_no_core(pid: int) -> str:
    """Why a core cannot be dumped where incr alone sees it ("" when it can)."""
    pattern = CORE_PATTERN.read_text().rstrip("\n")
    if pattern.startswith("|"):
        return f"core_pattern {pattern!r} hands cores to a program"
    if "/" in pattern or not pattern:
        return f"core_pattern {pattern!r} is not a plain file name"
    _, hard = resource.prlimit(pid, resource.RLIMIT_CORE)
    if hard != resource.RLIM_INFINITY:
        return f"the hard limit of core size is {hard} bytes (raising it needs CAP_SYS_RESOURCE)"
    return ""


def _set_core_limit(pid: int, soft: int) -> None:
    _, hard = resource.prlimit(pid, resource.RLIMIT_CORE)
    resource.prlimit(pid, resource.RLIMIT_CORE, (soft, hard))


@contextlib.contextmanager
def _private_cwd(stub: Stub) -> Iterator[None]:
    """The stub works in a directory of incr's own while it dies; removed with the core afterwards."""
    where = tempfile.mkdtemp(prefix="incr-core-")
    try:
        stub.call("chdir", stub.put(os.fsencode(where) + b"\0"))
        yield
    finally:
        shutil.rmtree(where, ignore_errors=True)
