"""Signals: dispositions (sigaction) and queued signals.  Dump and restore.

Dispositions are read by injecting rt_sigaction(sig, NULL, &old) for each
signal /proc reports as caught or ignored, and for SIGCHLD always: its flags
act even at SIG_DFL (SA_NOCLDWAIT: children are reaped by the kernel;
SA_NOCLDSTOP).  The rest are SIG_DFL, which the restore stub already has; their
flags and masks act on nothing and are not read (one injected call per signal).
Queued signals, per thread and process-wide, are read with PTRACE_PEEKSIGINFO
and re-queued with their full siginfo.
"""

from __future__ import annotations

import os
import struct

from incr.proto import image_pb2

from . import ptrace as pt
from .errors import Unsupported
from .remote import RemoteProcess
from .tracee import Tracee

_KSIGACTION = struct.Struct("<QQQQ")    # handler, flags, restorer, mask (x86-64 kernel layout)
SIGKILL, SIGSTOP, SIGCHLD = 9, 19, 17


def dump_sigactions(tracee: Tracee, status: dict[str, str]) -> list[image_pb2.SigAction]:
    interesting = int(status["SigCgt"], 16) | int(status["SigIgn"], 16) | 1 << (SIGCHLD - 1)
    out = []
    with tracee.stack_scratch(_KSIGACTION.size) as scratch:
        for sig in range(1, 65):
            if sig in (SIGKILL, SIGSTOP) or not interesting >> (sig - 1) & 1:
                continue
            tracee.call("rt_sigaction", sig, 0, scratch.addr, 8)
            handler, flags, restorer, mask = _KSIGACTION.unpack(tracee.read(scratch.addr, _KSIGACTION.size))
            out.append(image_pb2.SigAction(signo=sig, handler=handler, flags=flags, restorer=restorer, mask=mask))
    return out


#: Queued signals read per queue; more are refused: the kernel reads them back in quadratic time
#: (pt.peek_siginfo), the job frozen: 10 000 took 0.13 s here, 40 000 3.9 s.
MOST_QUEUED = 16384


def dump_shared_pending(pid: int) -> list[bytes]:
    """Queued process-wide siginfo."""
    return _peek(pid, pid, shared=True)


def dump_thread_pending(pid: int, tid: int) -> list[bytes]:
    """Queued thread-private siginfo."""
    return _peek(pid, tid, shared=False)


def _peek(pid: int, tid: int, *, shared: bool) -> list[bytes]:
    try:
        return pt.peek_siginfo(tid, shared=shared, most=MOST_QUEUED)
    except pt.TooManyQueued:
        where = "process-wide" if shared else f"for thread {tid}"
        raise Unsupported(pid, "queued signals", f"more than {MOST_QUEUED} signals are queued {where} (sent faster "
                          "than they are handled, or blocked); the kernel reads them back in quadratic time: "
                          "checkpoint it once they are handled") from None


def restore_sigactions(target: RemoteProcess, actions: list[image_pb2.SigAction]) -> None:
    for act in actions:
        raw = _KSIGACTION.pack(act.handler, act.flags, act.restorer, act.mask)
        target.call("rt_sigaction", act.signo, target.put(raw), 0, 8)


def signo(info: bytes) -> int:
    """The signal number of a siginfo."""
    return int(struct.unpack_from("<i", info)[0])


def restore_shared_pending(target: RemoteProcess, shared: list[bytes]) -> None:
    """Re-queue process-wide signals; they stay pending behind the full mask until the final sigmasks.
    Not SIGSTOP, which no mask holds back: see queue_stops()."""
    for info in shared:
        if signo(info) != SIGSTOP:
            target.call("rt_sigqueueinfo", target.vpid, signo(info), target.put(info))


def restore_thread_pending(target: RemoteProcess, tid: int, private: list[bytes]) -> None:
    """Re-queue a thread's own signals (injected in the thread-group leader, a signal to itself);
    not SIGSTOP (see queue_stops())."""
    for info in private:
        if signo(info) != SIGSTOP:
            target.call("rt_tgsigqueueinfo", target.vpid, tid, signo(info), target.put(info))


def queue_stops(pid: int, host_tids: dict[int, int], image: image_pb2.ProcessImage) -> None:
    """The SIGSTOPs pending in the image, sent from outside once nothing more is injected into
    process `pid` (injected, the very next step would dequeue them: no mask blocks SIGSTOP).
    `host_tids`: each thread's TID as incr sees it, by its TID in the image.  Who sent a
    SIGSTOP cannot be observed (no handler, no sigwaitinfo, no signalfd takes it)."""
    if any(signo(info) == SIGSTOP for info in image.shared_pending):
        os.kill(pid, SIGSTOP)
    for thread in image.threads:
        if any(signo(info) == SIGSTOP for info in thread.pending):
            pt.tgkill(pid, host_tids[thread.tid], SIGSTOP)
