"""Freezing a process under ptrace (PTRACE_SEIZE + PTRACE_INTERRUPT) and letting it go.

A frozen process is in a ptrace-stop in every thread; incr can read and
inject.  When incr dies (crash, SIGKILL) the kernel detaches it and the job
simply runs on: SEIZE does not leave stray stops behind.

A job in group-stop (kill -STOP) is frozen the same way and stays stopped:
detached, each thread re-enters the group-stop before it dequeues anything.
Seized then interrupted, it traps twice (PTRACE_EVENT_STOP: the remote syscalls
step through such traps).  Injected syscalls let the job dequeue signals; the
ones queued at the freeze are read before the first injection, and those an
injection dequeued are put back at release, SIGSTOP from outside (no mask
holds it).  Killed, every traced thread is reaped, the leader last: the kernel
reports a leader's exit only once its other threads are gone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import struct
from collections.abc import Collection
from dataclasses import dataclass, field

from . import proc, sigframe, signals
from . import ptrace as pt
from .errors import EngineError, NotTraceable, ProcessNotFound, ProcessVanished
from .leftovers import Journal, NoJournal
from .procmem import write_proc_mem
from .tracee import Tracee, find_syscall_insn

log = logging.getLogger(__name__)

_STOP_SIGNALS = {signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU}
SI_TKILL = -6


def _ancestors() -> set[int]:
    """incr's PID and its parents' up to PID 1 (included: a tree walk from PID 1 reaches incr)."""
    pids = set()
    pid = os.getpid()
    while pid > 0:
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
        threads = int(proc.status(pid).get("Threads", "1"))
        if threads > 1:
            # /proc shows a process as its leader: one whose main thread exited (pthread_exit) reads Z.
            others = f"{threads - 1} other threads run" if threads > 2 else "another thread runs"
            raise NotTraceable(pid, f"its main thread has exited (pthread_exit) while {others} on; not "
                                    "supported yet")
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
    stop_signal: int = 0            # was_stopped: the signal of its group stop (engine/jobctl.py)
    tracees: dict[int, Tracee] = field(default_factory=dict)
    syscall_insn: int = 0
    _poked: tuple[int, bytes] | None = None
    _queued: tuple[list[bytes], dict[int, list[bytes]]] | None = None
    released: bool = False
    gadget: sigframe.Gadget | None = None       # the injection safety net's gadget, once installed
    _gadget_tried: bool = False
    journal: Journal = field(default_factory=NoJournal)    # where injections note what they may leave
    for_dump: bool = True           # the dump reads the queued signals: they are taken before any injection
    #: Signals kept out of the image (the stop request a final checkpoint answers): queued ones
    #: are not read into it, and one the freeze caught on its way in (``held``, per thread) is
    #: queued again at the release.  The live job gets them either way.
    hold: frozenset[int] = frozenset()
    held: dict[int, list[bytes]] = field(default_factory=dict)
    left_out: list[int] = field(default_factory=list)   # signal numbers held or not read, one per signal

    def queued_signals(self) -> tuple[list[bytes], dict[int, list[bytes]]]:
        """The signals queued at the freeze: process-wide, and per thread (but those held).  Read
        before the first injection, which may dequeue one (a SIGSTOP cannot even be blocked)."""
        if self._queued is None:
            self._queued = (self._not_held(signals.dump_shared_pending(self.pid)),
                            {tid: self._not_held(signals.dump_thread_pending(self.pid, tid)) for tid in self.tids})
        return self._queued

    def _not_held(self, queued: list[bytes]) -> list[bytes]:
        kept = []
        for info in queued:
            signo = signals.signo(info)
            if signo in self.hold:
                self.left_out.append(signo)
            else:
                kept.append(info)
        return kept

    def tracee(self, tid: int | None = None) -> Tracee:
        """The Tracee for `tid` (default: the thread-group leader), created on first use."""
        tid = self.pid if tid is None else tid
        if tid not in self.tracees:
            if self.for_dump:
                self.queued_signals()
            if not self.syscall_insn:
                self.syscall_insn = find_syscall_insn(self.pid) or self._poke_syscall_insn()
            self.tracees[tid] = Tracee(self.pid, tid, self.syscall_insn, gadget=self._net_gadget(),
                                       journal=self.journal)
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
        for tid, infos in self.held.items():
            try:
                self.tracee(tid).intercepted[:0] = infos     # they came first: queued again first
            except (OSError, EngineError) as exc:
                log.warning("PID %d thread %d: a signal held during the freeze is lost: %s", self.pid, tid, exc)
        stops: list[tuple[int, bytes]] = []
        for tracee in self.tracees.values():
            try:
                stops.extend((tracee.tid, info) for info in tracee.requeue_intercepted())
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
        if stops and self._sigcont_pending():
            # A SIGCONT came during the freeze: it discards pending stop signals, those we hold too.
            stops = []
        for tid, info in stops:
            self._resend_stop(tid, info)
        for tid in self.tids:
            with contextlib.suppress(ProcessLookupError):
                pt.detach(tid)

    def _resend_stop(self, tid: int, info: bytes) -> None:
        """A SIGSTOP a remote syscall dequeued goes back from outside, after the last injection.

        Sent to a traced task it only queues; at detach a job in group-stop stops again
        without dequeuing it (JOBCTL_STOP_PENDING comes first), so the job is as it was:
        stopped, that SIGSTOP still pending.  A running job stops, as it would have.
        Thread-directed (tgkill: SI_TKILL) or process-directed (anything else), as sent.
        """
        with contextlib.suppress(ProcessLookupError):
            if struct.unpack_from("<i", info, 8)[0] == SI_TKILL:
                pt.tgkill(self.pid, tid, signal.SIGSTOP)
            else:
                os.kill(self.pid, signal.SIGSTOP)

    def _sigcont_pending(self) -> bool:
        """A SIGCONT is queued, process-wide or for a thread (traced, even a default one is queued)."""
        bit = 1 << (signal.SIGCONT - 1)
        with contextlib.suppress(ProcessNotFound):
            masks = [proc.status(self.pid)["ShdPnd"], *(_field(proc.read_text(self.pid, f"task/{tid}/status"), "SigPnd")
                                                       for tid in self.tids)]
            return any(int(mask, 16) & bit for mask in masks)
        return False

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


def _field(status: str, name: str) -> str:
    """One field of a /proc status file."""
    return next(line.split(":", 1)[1].strip() for line in status.splitlines() if line.startswith(name + ":"))


def _wait_for_interrupt_stop(pid: int, tid: int, hold: frozenset[int] = frozenset(),
                             held: dict[int, list[bytes]] | None = None) -> int | None:
    """Wait for the PTRACE_EVENT_STOP of INTERRUPT, letting real signals through first (but those
    in `hold`: their siginfo goes to held[tid]); its signal: SIGTRAP, or the stop signal when
    the group-stop of job control is in effect.  None: thread `tid` (not the leader) exited
    meanwhile, as threads do."""
    while True:
        try:
            st = pt.wait(tid)
        except ChildProcessError:
            if tid != pid:
                return None
            raise ProcessVanished(pid, "being frozen") from None
        if st.exited:
            if tid != pid:
                return None
            raise ProcessVanished(pid, "being frozen")
        if st.event == pt.PTRACE_EVENT_STOP:
            return st.stopsig
        # A signal-delivery-stop came first: deliver it (the job would have
        # received it had we not been there) and keep waiting; the interrupt
        # is still pending.  Same as CRIU's compel_wait_task.
        sig = st.stopsig if st.event == 0 else 0
        if sig in hold and held is not None:
            held.setdefault(tid, []).append(pt.get_siginfo(tid))
            sig = 0
        pt.cont(tid, sig)


def _thread_exited(pid: int, tid: int) -> bool:
    """Whether thread `tid` of `pid` has exited (gone, or a zombie or dead task still listed)."""
    try:
        return proc.stat_of_task(pid, tid).state in ("Z", "X")
    except ProcessNotFound:
        return True


def freeze(pid: int, *, options: int = 0, for_dump: bool = True, hold: frozenset[int] = frozenset()) -> Frozen:
    """Seize and stop every thread of pid until a pass over /proc/PID/task finds none new.
    `for_dump`: False for a brief freeze that only injects (arming a tracker, taking out a
    leftover): the queued signals, which the dump must read before any injection (and which a
    job whose other processes run on may have by the ten thousand), are not read.  `hold`:
    signals kept out of the image (Frozen.hold)."""
    if hold & {signal.SIGKILL, signal.SIGSTOP}:
        raise ValueError("SIGKILL and SIGSTOP cannot be held")
    held: dict[int, list[bytes]] = {}
    options |= pt.PTRACE_O_TRACESYSGOOD      # remote syscalls run between syscall-stops
    check_traceable(pid)
    # Stopped or not, the kernel says in the leader's trap: the state in /proc can read
    # "running" a moment after a stopped job was let go (it re-enters its group-stop then).
    was_stopped = False
    seized: list[int] = []
    exiting: set[int] = set()
    try:
        # Every pass waits for the threads it seized to stop before listing
        # again: a thread still running could create another one unseen.
        while True:
            new = [t for t in proc.tasks(pid) if t not in seized and t not in exiting]
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
                    if _thread_exited(pid, tid):
                        exiting.add(tid)            # listed, but past its exit: the kernel refuses it EPERM
                        continue
                    raise
                seized.append(tid)
                stopping.append(tid)
                pt.interrupt(tid)
            for tid in stopping:
                trap = _wait_for_interrupt_stop(pid, tid, hold, held)
                if trap is None:
                    seized.remove(tid)
                elif tid == pid:
                    was_stopped = trap != signal.SIGTRAP
    except BaseException:
        for tid in seized:
            for info in held.get(tid, []):     # let go with what it was about to take
                with contextlib.suppress(OSError):
                    pt.tgkill(pid, tid, signals.signo(info))
            with contextlib.suppress(OSError):
                pt.detach(tid)
        raise
    if pid not in seized:
        raise ProcessNotFound(pid)
    seized.sort(key=lambda t: (t != pid, t))
    return Frozen(pid=pid, tids=seized, was_stopped=was_stopped,
                  stop_signal=_group_stop_signal(pid) if was_stopped else 0, for_dump=for_dump, hold=hold,
                  held={tid: infos for tid, infos in held.items() if tid in seized},
                  left_out=[signals.signo(i) for tid in seized for i in held.get(tid, [])])


def _group_stop_signal(pid: int) -> int:
    """The signal of the group stop that a seized stopped process reports in its trap; read
    before anything is injected, which replaces the trap's siginfo."""
    signo = int(struct.unpack_from("<i", pt.get_siginfo(pid))[0])
    return signo if signo in _STOP_SIGNALS else 0
