"""Restore of a process image, driven from outside by ptrace (DESIGN §5).

Everything that can be checked without creating a process is checked first
(preflight), so a refused restore leaves nothing behind; after that, any
failure kills the half-built process (PTRACE_O_EXITKILL covers incr dying).
"""

from __future__ import annotations

import logging
import os
import signal
import time
from dataclasses import dataclass

from incr.proto import image_pb2

from . import cpu, creds, files, fs, memory, mm, proc, rlimits, signals, task, timers
from . import ptrace as pt
from .dump import IMAGE_VERSION
from .errors import PidTaken, RestoreError
from .memory import PageSource
from .remote import RemoteProcess, Stub

log = logging.getLogger(__name__)


@dataclass
class RestoreTiming:
    total_ms: float
    memory_ms: float
    bytes_written: int


def preflight(tree: image_pb2.TreeImage) -> None:
    if tree.version > IMAGE_VERSION:
        raise RestoreError(f"cannot restore: the checkpoint's image is version {tree.version}, this incr reads "
                           f"up to {IMAGE_VERSION}; use a newer incr")
    if tree.arch and tree.arch != "x86_64":
        raise RestoreError(f"cannot restore: the checkpoint is for {tree.arch}, this is x86_64")
    for p in tree.processes:
        for thread in p.threads:           # a thread's TID must be free too
            if proc.exists(thread.tid):
                raise PidTaken(thread.tid, proc.describe(thread.tid))
        mm.preflight(p.mm)
        memory.preflight(p.vmas)
        files.preflight(list(p.files))
        fs.preflight(p.fs)


def _own_creds() -> image_pb2.Creds:
    status = proc.status(os.getpid())
    return image_pb2.Creds(uids=[int(x) for x in status["Uid"].split()],
                           gids=[int(x) for x in status["Gid"].split()],
                           groups=[int(x) for x in status.get("Groups", "").split()])


def restore_process(p: image_pb2.ProcessImage, source: PageSource, *, leave_stopped: bool = False) -> RestoreTiming:
    """Rebuild one process, every thread with its original TID; it is left running (or stopped)."""
    t0 = time.perf_counter()
    stub = Stub(p.pid, setsid=p.sid == p.pid, setpgid=p.pgid == p.pid and p.sid != p.pid)
    try:
        vmas = list(p.vmas)
        dumped = [(v.start, v.end) for v in vmas]
        injection = stub.map_injection_area(dumped)
        specials = memory.clear_stub(stub, injection)
        spare = stub.find_free(sum(m.size for m in specials) + pt.PAGE_SIZE, dumped)
        memory.move_specials(stub, specials, vmas, spare)
        t_mem = time.perf_counter()
        written = memory.map_and_fill(stub, vmas, source)
        t_mem = time.perf_counter() - t_mem
        mm.restore(stub, p.mm)
        rlimits.restore(stub.pid, list(p.rlimits))
        fs.restore(stub, p.fs)
        files.restore(stub, list(p.files), list(p.fds))
        signals.restore_sigactions(stub, list(p.sigactions))
        timers.restore(stub, list(p.itimers))
        task.restore(stub, p)
        # Threads next, while the stub is still root: clone3(set_tid) needs CAP_SYS_ADMIN.
        main, *others = p.threads
        targets: list[RemoteProcess] = [stub]
        targets.extend(stub.clone_thread(t.tid, t.clear_child_tid) for t in others)
        signals.restore_shared_pending(stub, list(p.shared_pending))
        own = _own_creds()
        for target, thread in zip(targets, p.threads, strict=True):
            signals.restore_thread_pending(stub, thread.tid, list(thread.pending))
            cpu.restore_thread_state(target, thread)
            task.restore_thread(target, thread.tid, thread)
            creds.restore(target, p.creds, own)     # per thread: raw set*id() calls change one thread
        # The other threads leave the injection area for good, then the main thread unmaps it,
        # its very last injected call.
        for thread in reversed(others):
            cpu.set_final_state(thread.tid, thread)
        stub.drop_injection_area()
        cpu.set_final_state(stub.pid, main)
        for thread in others:
            pt.detach(thread.tid)
        pt.detach(stub.pid, signal.SIGSTOP if leave_stopped or p.stopped else 0)
    except BaseException:
        stub.kill()
        raise
    return RestoreTiming(total_ms=(time.perf_counter() - t0) * 1e3, memory_ms=t_mem * 1e3, bytes_written=written)
