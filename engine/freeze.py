"""Freezing a process under ptrace (PTRACE_SEIZE + PTRACE_INTERRUPT) and letting it go.

A frozen process is in a ptrace-stop in every thread; incr can read and
inject.  When incr dies (crash, SIGKILL) the kernel detaches it and the job
simply runs on: SEIZE does not leave stray stops behind.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Collection
from dataclasses import dataclass, field

from . import proc, sigframe
from . import ptrace as pt
from .errors import EngineError, NotTraceable, ProcessNotFound, ProcessVanished
from .procmem import write_proc_mem
from .tracee import Tracee, find_syscall_insn

log = logging.getLogger(__name__)

_STOP_SIGNALS = {signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU}


def _ancestors() -> set[int]:
    pids = set()
    pid = os.getpid()
    while pid > 1:
        pids.add(pid)
        try:
            pid = proc.stat(pid).ppid
        except ProcessNotFound:
            break
    return pids


def check_traceable(pid: int, job: Collection[int] = ()) -> proc.Stat:
    """Refuses a process incr cannot freeze; `job`: the PIDs of its tree, if it is part of one."""
    if pid <= 0:
        raise ProcessNotFound(pid)
    st = proc.stat(pid)
    if st.flags & proc.PF_KTHREAD:
        raise NotTraceable(pid, "it is a kernel thread")
    if pid in _ancestors():
        raise NotTraceable(pid, "it is incr itself or one of its parent processes")
    if st.state in ("Z", "X"):
        raise NotTraceable(pid, "it is a zombie (it has exited; its parent has not reaped it)")
    tracer = int(proc.status(pid).get("TracerPid", "0"))
    if tracer in job:
        raise NotTraceable(pid, f"it is traced by {proc.describe(tracer)}, of the same job; processes traced "
                                "inside the job (a debugger, strace) are not supported yet")
    if tracer:
        raise NotTraceable(pid, f"it is already traced by {proc.describe(tracer)}; "
                                "detach that debugger or tracer first")
    return st


@dataclass
class Frozen:
    """A process whose threads are all in ptrace-stop under this thread of incr."""

    pid: int
    tids: list[int]
    was_stopped: bool
    tracees: dict[int, Tracee] = field(default_factory=dict)
    syscall_insn: int = 0
    _poked: tuple[int, bytes] | None = None
    released: bool = False
    gadget: sigframe.Gadget | None = None       # the injection safety net's gadget, once installed
    _gadget_tried: bool = False

    def tracee(self, tid: int | None = None) -> Tracee:
        """The Tracee for `tid` (default: the thread-group leader), created on first use."""
        tid = self.pid if tid is None else tid
        if tid not in self.tracees:
            if not self.syscall_insn:
                self.syscall_insn = find_syscall_insn(self.pid) or self._poke_syscall_insn()
            self.tracees[tid] = Tracee(self.pid, tid, self.syscall_insn, gadget=self._net_gadget())
        return self.tracees[tid]

    def _net_gadget(self) -> int:
        if not self._gadget_tried:
            self._gadget_tried = True
            try:
                self.gadget = sigframe.install_gadget(self.pid)
            except OSError as exc:
                log.debug("PID %d: no safety net for injected syscalls: %s", self.pid, exc)
        return self.gadget.addr if self.gadget else 0

    def _poke_syscall_insn(self) -> int:
        # No [vdso] (vdso=0 on the kernel command line): borrow the leader's
        # current instruction bytes, put back in release().
        rip = pt.get_regs(self.pid).rip
        fd = os.open(f"/proc/{self.pid}/mem", os.O_RDONLY | os.O_CLOEXEC)
        try:
            saved = os.pread(fd, 2, rip)
        finally:
            os.close(fd)
        write_proc_mem(self.pid, rip, b"\x0f\x05")
        self._poked = (rip, saved)
        return rip

    def release(self, *, kill: bool = False) -> None:
        """Thaw the process (or kill it); always leaves no ptrace attachment behind."""
        if self.released:
            return
        self.released = True
        if kill:
            pt.kill_and_reap_group(self.pid, self._traced_tids())
            return
        for tracee in self.tracees.values():
            try:
                tracee.requeue_intercepted()
                tracee.put_back()
            except (OSError, EngineError) as exc:
                log.warning("PID %d thread %d: could not restore its state: %s", self.pid, tracee.tid, exc)
        if self._poked:
            write_proc_mem(self.pid, *self._poked)
        if self.gadget:
            try:
                self.gadget.remove()
            except OSError as exc:        # harmless where it is: padding no code runs
                log.debug("PID %d: the safety net's gadget stays in [vdso]: %s", self.pid, exc)
        for tid in self.tids:
            with contextlib.suppress(ProcessLookupError):
                pt.detach(tid)

    def _traced_tids(self) -> list[int]:
        """Our threads, and any the job's own clone() handed us since (PTRACE_O_TRACECLONE)."""
        try:
            listed = proc.tasks(self.pid)
        except ProcessNotFound:
            listed = []
        return [*self.tids, *(t for t in listed if t not in self.tids)]

    def __enter__(self) -> Frozen:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _wait_for_interrupt_stop(pid: int, tid: int) -> bool:
    """Wait for the PTRACE_EVENT_STOP of INTERRUPT, letting real signals through first.
    False: thread `tid` (not the leader) exited meanwhile, as threads do."""
    while True:
        try:
            st = pt.wait(tid)
        except ChildProcessError:
            if tid != pid:
                return False
            raise ProcessVanished(pid, "being frozen") from None
        if st.exited:
            if tid != pid:
                return False
            raise ProcessVanished(pid, "being frozen")
        if st.event == pt.PTRACE_EVENT_STOP:
            return True
        # A signal-delivery-stop came first: deliver it (the job would have
        # received it had we not been there) and keep waiting; the interrupt
        # is still pending.  Same as CRIU's compel_wait_task.
        sig = st.stopsig if st.event == 0 else 0
        pt.cont(tid, sig)


def freeze(pid: int, *, options: int = 0) -> Frozen:
    """Seize and stop every thread of pid until a pass over /proc/PID/task finds none new."""
    options |= pt.PTRACE_O_TRACESYSGOOD      # remote syscalls run between syscall-stops
    st = check_traceable(pid)
    was_stopped = st.state in ("T", "t") and proc.status(pid).get("TracerPid", "0") == "0"
    seized: list[int] = []
    try:
        # Every pass waits for the threads it seized to stop before listing
        # again: a thread still running could create another one unseen.
        while True:
            new = [t for t in proc.tasks(pid) if t not in seized]
            if not new:
                break
            stopping = []
            for tid in new:
                try:
                    pt.seize(tid, options)
                except ProcessLookupError:
                    continue                        # thread exited meanwhile
                except PermissionError:
                    if tid == pid:
                        raise NotTraceable(pid, "permission denied by the kernel (ptrace); run incr as "
                                                "root or as the job's owner") from None
                    raise
                seized.append(tid)
                stopping.append(tid)
                pt.interrupt(tid)
            for tid in stopping:
                if not _wait_for_interrupt_stop(pid, tid):
                    seized.remove(tid)
    except BaseException:
        for tid in seized:
            with contextlib.suppress(OSError):
                pt.detach(tid)
        raise
    if pid not in seized:
        raise ProcessNotFound(pid)
    seized.sort(key=lambda t: (t != pid, t))
    return Frozen(pid=pid, tids=seized, was_stopped=was_stopped)
