"""A thread in ptrace-stop that incr drives: remote syscalls and scratch memory.

At dump time a remote syscall runs in a live job: from a gadget parked in
its [vdso] with a signal frame on the thread's stack as a safety net
(engine/sigframe.py), so that incr dying mid-call leaves the thread as it
was; nothing of the job's text is touched.  At restore time it runs the
``syscall`` in incr's injection page.  A live job's registers are put back
after every remote syscall.
"""

from __future__ import annotations

import contextlib
import logging
import struct

from incr.faults import injection_fault

from . import leftovers, proc, sigframe
from . import ptrace as pt
from .errors import EngineError, RemoteSyscallFailed

log = logging.getLogger(__name__)

SYSCALL_INSN = b"\x0f\x05"
MAX_SIGNAL_RETRIES = 64
RED_ZONE = sigframe.RED_ZONE
ALL_SIGNALS = (1 << 64) - 1
SIGSTOP = 19


def find_syscall_insn(pid: int) -> int:
    """Address of a ``syscall`` instruction in the target's [vdso], or 0."""
    for vma in proc.maps(pid):
        if vma.path == "[vdso]":
            code = bytearray(vma.size)
            pt.vm_read_into(pid, [(vma.start, vma.size)], code)
            at = code.find(SYSCALL_INSN)
            return vma.start + at if at >= 0 else 0
    return 0


class Tracee:
    """One stopped thread of a process; every call must come from the attaching thread."""

    def __init__(self, pid: int, tid: int, syscall_insn: int, *, live: bool = True, vpid: int = 0,
                 vtid: int = 0, gadget: int = 0, journal: leftovers.Journal | None = None) -> None:
        """`live`: a running job's thread, whose registers are put back after every
        remote syscall, so that incr dying mid-dump cannot derail it; `gadget`: where
        the safety net's gadget is in its process (0: none, inject without a net).
        `vpid`, `vtid`: the IDs the thread itself sees, when it runs in a PID namespace
        below incr's.  `journal`: where what an injection may leave in the job is noted."""
        self.pid = pid
        self.tid = tid
        self.vpid = vpid or pid
        self.vtid = vtid or tid
        self.syscall_insn = syscall_insn
        self.regs = pt.get_regs(tid)          # the thread's own registers
        self._base = self.regs.copy()         # template for remote syscalls
        self.intercepted: list[bytes] = []    # siginfo of signals dequeued by our remote syscalls
        # Once resumed for a remote syscall the thread leaves the kernel's
        # syscall-restart path; its registers must then carry the restart.
        self._put_back = with_syscall_restart(self.regs, restart_block=True) if live else None
        self.sigmask = pt.get_sigmask(tid) if live else 0
        self._gadget = gadget if live else 0
        self._net: sigframe.Net | None = None
        self._under_net = b""                 # the stack bytes the frame covers while a call runs
        self._stack: tuple[int, int] | bool | None = False      # the mapping holding rsp (False: not looked up)
        self.journal: leftovers.Journal = journal or leftovers.NoJournal()

    def stack(self) -> tuple[int, int] | None:
        """(start, end) of the mapping holding the thread's stack pointer, if any."""
        if self._stack is False:
            sp = self.regs.rsp
            self._stack = next(((m.start, m.end) for m in proc.maps(self.pid) if m.start <= sp < m.end), None)
        return self._stack if isinstance(self._stack, tuple) else None

    def _spread_net(self) -> sigframe.Net | None:
        if self._gadget and self._net is None and self._put_back is not None:
            self._net = sigframe.spread(self.tid, self._put_back, self.sigmask, self.stack())
            if self._net is None:
                log.debug("PID %d thread %d: injecting without the safety net", self.pid, self.tid)
                self._gadget = 0
            else:
                self._under_net = self.read(self._net.at, len(self._net.frame))
                self._base.set(rsp=self._net.sp)
        return self._net

    def syscall(self, name: str, *args: int) -> int:
        """Run syscall `name` in the tracee; returns the raw result (negative errno on failure)."""
        nr = pt.SYSCALL_NUMBERS[name]
        net = self._spread_net()
        rip = self._gadget if net else self.syscall_insn
        mask = self.sigmask if self._put_back is not None else None
        for _ in range(MAX_SIGNAL_RETRIES):
            try:
                if net:
                    self.write(net.at, net.frame)
                try:
                    ret = pt.remote_syscall(self.tid, self._base, rip, nr, args, self._put_back, mask,
                                            injection_fault() if mask is not None else 0)
                finally:
                    if net:
                        self.write(net.at, self._under_net)
            except pt.SignalIntercepted as sig:
                self.intercepted.append(sig.siginfo)
                continue
            except ProcessLookupError:
                raise EngineError(f"PID {self.pid} died during an injected {name}()") from None
            return ret
        raise EngineError(f"PID {self.pid}: a signal storm prevented the injected {name}()")

    def call(self, name: str, *args: int) -> int:
        """Like syscall() but raises RemoteSyscallFailed on an error return."""
        ret = self.syscall(name, *args)
        if -4096 < ret < 0:
            raise RemoteSyscallFailed(self.pid, name, -ret)
        return ret

    def read(self, addr: int, size: int) -> bytes:
        buf = bytearray(size)
        pt.vm_read_into(self.pid, [(addr, size)], buf)
        return bytes(buf)

    def write(self, addr: int, data: bytes) -> None:
        pt.vm_write(self.pid, [(addr, len(data))], data)

    def requeue_intercepted(self) -> list[bytes]:
        """Put back the signals our single-steps dequeued, in arrival order, but SIGSTOP: returned
        instead, for the caller to send from outside once nothing more is injected (it cannot be
        blocked, so the very next step would dequeue it again, for ever)."""
        if not self.intercepted:
            return []
        stops: list[bytes] = []
        # Everything blocked meanwhile: a re-queued signal must not be
        # delivered (and intercepted again) by the very next single-step.
        mask = pt.get_sigmask(self.tid)
        pt.set_sigmask(self.tid, ALL_SIGNALS)
        try:
            with self.stack_scratch(pt.SIGINFO_SIZE) as scratch:
                while self.intercepted:
                    info = self.intercepted.pop(0)
                    signo = struct.unpack_from("i", info)[0]
                    if signo == SIGSTOP:
                        stops.append(info)
                        continue
                    self.write(scratch.addr, info)
                    self.call("rt_tgsigqueueinfo", self.vpid, self.vtid, signo, scratch.addr)
        finally:
            pt.set_sigmask(self.tid, mask)
        stops.extend(self.intercepted)      # only a SIGSTOP gets past the full mask (the scratch's munmap)
        self.intercepted.clear()
        return stops

    def put_back(self) -> None:
        pt.set_regs(self.tid, self._put_back or self.regs)

    def stack_scratch(self, size: int) -> Scratch:
        return Scratch(self, size)


ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND, ERESTART_RESTARTBLOCK = 512, 513, 514, 516
NR_RESTART_SYSCALL = 219
NR_POLL = 7
EINTR = 4


def with_syscall_restart(regs: pt.Regs, *, restart_block: bool) -> pt.Regs:
    """Registers that restart an interrupted syscall, as the kernel's signal path would.

    `restart_block`: the kernel still holds the thread's restart block (a live
    thread), so restart_syscall() can resume a sleep; otherwise (a restored
    thread) a sleep returns EINTR, as CRIU does.  poll(2) is the exception: the
    kernel restarts it through the restart block even with no timeout, and a
    program with no signal handler never expects EINTR from it.  So a poll with
    no timeout is called again with its own arguments, live or restored (which
    also keeps it a poll for the next freeze, not a restart_syscall() whose
    origin nothing shows), and a restored poll with a timeout is called again
    too, its timeout counting afresh (it may wait longer, never less).
    """
    out = regs.copy()
    if out.signed("orig_rax") >= 0:
        err = -out.signed("rax")
        if err in (ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND):
            out.set(rax=out.orig_rax, rip=out.rip - 2)
        elif err == ERESTART_RESTARTBLOCK:
            poll = out.orig_rax == NR_POLL
            if poll and (out.rdx & 0xFFFFFFFF) >= 0x80000000:         # int timeout < 0: none
                out.set(rax=NR_POLL, rip=out.rip - 2)
            elif restart_block:
                out.set(rax=NR_RESTART_SYSCALL, rip=out.rip - 2)
            elif poll:
                out.set(rax=NR_POLL, rip=out.rip - 2)
            else:
                out.set(rax=-EINTR)
    out.set(orig_rax=-1)
    return out


class Scratch:
    """Bytes below the thread's red zone, saved on entry and put back on exit.

    Only used when that stretch lies inside the stack mapping and within the
    area reserved above the safety net's frame: remote writes do not grow a
    stack (GUP stopped expanding stacks in 6.5), so otherwise a temporary page
    is mapped instead (noted in the tracee's journal while it exists).
    """

    def __init__(self, tracee: Tracee, size: int) -> None:
        self.tracee = tracee
        self.size = (size + 15) & ~15
        self.addr = 0
        self._saved = b""
        self._mapping: contextlib.AbstractContextManager[int] | None = None

    def __enter__(self) -> Scratch:
        sp = self.tracee.regs.rsp
        low = (sp - RED_ZONE - self.size) & ~0xF
        stack = self.tracee.stack()
        if self.size <= sigframe.SCRATCH_RESERVE and stack is not None and stack[0] <= low:
            self.addr = low
            self._saved = self.tracee.read(low, self.size)
        else:
            length = (self.size + pt.PAGE_SIZE - 1) & ~(pt.PAGE_SIZE - 1)
            prot_rw = 0x3
            self._mapping = leftovers.temporary_mapping(self.tracee, self.tracee.journal, self.tracee.pid, length,
                                                        prot_rw)
            self.addr = self._mapping.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._mapping is not None:
            self._mapping.__exit__(None, None, None)
        elif self._saved:
            self.tracee.write(self.addr, self._saved)
