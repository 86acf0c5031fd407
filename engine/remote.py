"""The process being restored: a stub with the original PID, driven by remote syscalls.

The stub is a clone3(set_tid=[pid]) child of incr that stops itself under
PTRACE_TRACEME before running any Python.  Restore then replaces everything
it inherited through syscalls executed from an injection area: one page of
code (a ``syscall`` instruction) followed by scratch data for paths and
structs, mapped at an address no dumped VMA uses.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import struct
from collections.abc import Iterable
from typing import Protocol

from . import proc
from . import ptrace as pt
from .errors import EngineError, PidTaken, RestoreError
from .tracee import ALL_SIGNALS, Tracee, find_syscall_insn

log = logging.getLogger(__name__)

INJECTION_SIZE = 16 * pt.PAGE_SIZE
DATA_OFFSET = 64
DATA_END = INJECTION_SIZE - pt.PAGE_SIZE       # the last page: the stack of the clone3 instant
CLONE_THREAD, CLONE_PARENT = 0x10000, 0x8000
CLONE_THREAD_FLAGS = 0x100 | 0x200 | 0x400 | 0x800 | CLONE_THREAD | 0x40000 | 0x200000
# CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM | CLONE_CHILD_CLEARTID
_CLONE_ARGS = struct.Struct("<11Q")
RSEQ_FLAG_UNREGISTER = 1
PROT_RWX, MAP_PRIVATE_ANON, MAP_FIXED_NOREPLACE = 0x7, 0x22, 0x100000
_SEARCH_FROM, _SEARCH_TO = 0x10000000, 0x7F0000000000


class RemoteProcess(Protocol):
    """What the resource modules need from the process they restore into."""

    pid: int        # as incr sees it: for ptrace, /proc and syscalls made by incr
    vpid: int       # as the process sees it: for syscalls injected into the job

    def call(self, name: str, *args: int) -> int: ...
    def syscall(self, name: str, *args: int) -> int: ...
    def put(self, data: bytes) -> int: ...


_TRACE_OPTIONS = pt.PTRACE_O_EXITKILL | pt.PTRACE_O_TRACECLONE | pt.PTRACE_O_TRACEFORK


class Stub:
    """`pid`/`tid` are incr's view; `vpid` and the keys of `by_vtid` the job's own, which
    differ inside a new PID namespace (`init`: that namespace's PID 1, a child of incr)."""

    def __init__(self, pid: int, *, setsid: bool = False, setpgid: bool = False, own_session: bool = False,
                 new_pidns: bool = False, new_ipcns: bool = False, adopted: bool = False) -> None:
        """`adopted`: not incr's child but already its nearest subreaper's (or init's), as after a detached restore."""
        self.init = 0
        try:
            if new_pidns:
                self.init = pt.spawn_pidns(pid, setsid=setsid, setpgid=setpgid, own_session=own_session,
                                           new_ipc=new_ipcns)
                try:
                    self.pid = proc.host_child(self.init, pid)
                except BaseException:
                    self._end_init()
                    raise
            elif adopted:
                self.pid = pt.spawn_adopted(pid, setsid=setsid, setpgid=setpgid, own_session=own_session)
            else:
                self.pid = pt.spawn_stub(pid, setsid=setsid, setpgid=setpgid, own_session=own_session)
        except FileExistsError:
            raise PidTaken(pid, proc.describe(pid)) from None
        except OSError as exc:
            self._end_init()
            raise RestoreError(f"cannot restore PID {pid}: {exc.strerror or exc}") from None
        self.vpid = pid
        self._alive = True
        try:
            if new_pidns or adopted:
                # Waiting in pause(), not stopped: a group-stop would outlive the tracer.
                pt.seize(self.pid, _TRACE_OPTIONS)
                pt.interrupt(self.pid)
                st = pt.wait(self.pid)
                started = st.stopped and st.event == pt.PTRACE_EVENT_STOP
            else:
                st = pt.wait(self.pid)
                started = st.stopped and st.stopsig == signal.SIGSTOP
                # incr dies -> the half-built process dies; threads and children it clones are ours at once.
                pt.set_options(self.pid, _TRACE_OPTIONS)
            if not started:
                raise RestoreError(f"restore stub for PID {pid} did not start: {st.describe()}")
            self.tracee = Tracee(self.pid, self.pid, find_syscall_insn(self.pid), live=False, vpid=pid)
            # The stub inherited glibc's rseq registration; its area is about to
            # be unmapped and the first preemption would then kill the stub.
            rseq = pt.get_rseq(self.pid)
            if rseq.pointer:
                self.call("rseq", rseq.pointer, rseq.size, RSEQ_FLAG_UNREGISTER, rseq.signature)
        except BaseException:
            self.kill()
            raise
        self.injection = 0
        self._data_at = 0
        self.threads: dict[int, StubThread] = {}

    def call(self, name: str, *args: int) -> int:
        return self.tracee.call(name, *args)

    def syscall(self, name: str, *args: int) -> int:
        return self.tracee.syscall(name, *args)

    def map_injection_area(self, avoid: Iterable[tuple[int, int]]) -> tuple[int, int]:
        """Map the injection area away from `avoid` and the stub's own mappings; returns its span."""
        addr = self.find_free(INJECTION_SIZE, avoid)
        got = self.call("mmap", addr, INJECTION_SIZE, PROT_RWX, MAP_PRIVATE_ANON | MAP_FIXED_NOREPLACE, -1, 0)
        if got != addr:
            raise RestoreError(f"cannot restore: injection area placed at {got:#x}, not {addr:#x}")
        # `syscall; jmp .`: a thread cloned here waits on the jmp (it is stopped before anyway)
        self.tracee.write(addr, b"\x0f\x05\xeb\xfe")
        self.tracee.syscall_insn = addr
        self.injection = addr
        self._data_at = addr + DATA_OFFSET
        return addr, addr + INJECTION_SIZE

    def find_free(self, size: int, avoid: Iterable[tuple[int, int]]) -> int:
        """A `size`-aligned free range clear of `avoid` and of the stub's current mappings."""
        taken = sorted([*avoid, *((m.start, m.end) for m in proc.maps(self.pid))])
        addr = _SEARCH_FROM
        for start, end in taken:
            if addr + size <= start:
                break
            addr = max(addr, (end + size - 1) // size * size)
        if addr + size > _SEARCH_TO:
            raise RestoreError("cannot restore: no free address range left in the stub")
        return addr

    def put(self, data: bytes) -> int:
        """Copy data into the injection area for the next remote call(s); returns its address.

        Consecutive puts coexist until the area is full, then it starts over:
        a value must be used before a few dozen KiB of further puts.
        """
        if not self.injection:
            raise EngineError("injection area not mapped yet")
        size = (len(data) + 15) & ~15
        if size > DATA_END - DATA_OFFSET:
            raise RestoreError(f"cannot restore: {len(data)} bytes do not fit the injection area")
        if self._data_at + size > self.injection + DATA_END:
            self._data_at = self.injection + DATA_OFFSET
        addr = self._data_at
        self.tracee.write(addr, data)
        self._data_at += size
        return addr

    @classmethod
    def forked(cls, pid: int, vpid: int, parent: Stub) -> Stub:
        """The stub of a child `parent` forked (PTRACE_O_TRACEFORK: already ours and stopped)."""
        stub = cls.__new__(cls)
        stub.pid, stub.vpid, stub.init = pid, vpid, 0
        stub._alive = True
        stub.tracee = Tracee(pid, pid, parent.injection, live=False, vpid=vpid)   # the injection area came along
        stub.injection = parent.injection
        stub._data_at = parent.injection + DATA_OFFSET
        stub.threads = {}
        return stub

    def _cloned(self, vtid: int, flags: int, clear_child_tid: int, stack: int, stack_size: int,
                what: str) -> int:
        """clone3(set_tid=[vtid]) injected; the new task's TID here, stopped (auto-attached)."""
        thread = bool(flags & CLONE_THREAD)
        # (clone3 wants exit_signal 0 with CLONE_PARENT: the child gets this stub's, SIGCHLD)
        args = _CLONE_ARGS.pack(flags, 0, clear_child_tid, 0, 0 if flags & (CLONE_THREAD | CLONE_PARENT) else
                                signal.SIGCHLD, stack, stack_size,
                                0, self.put(struct.pack("<i", vtid)), 1, 0)
        got = self.syscall("clone3", self.put(args), _CLONE_ARGS.size)
        if got == -errno.EEXIST:
            raise PidTaken(vtid, proc.describe(vtid))
        if got != vtid:
            raise RestoreError(f"cannot restore {what} {vtid}: clone3 gave {got}")
        if self.vpid == self.pid:
            tid = vtid
        elif thread:
            tid = proc.host_task(self.pid, vtid)
        elif flags & CLONE_PARENT:
            tid = proc.host_child(self.init, vtid)
        else:
            tid = proc.host_child(self.pid, vtid)
        st = pt.wait(tid)
        if not st.stopped:
            raise RestoreError(f"cannot restore {what} {vtid}: {st.describe()}")
        return tid

    def fork_child(self, vpid: int, flags: int = 0) -> Stub:
        """A child of this stub with PID `vpid` (an injected clone3(set_tid)): a copy of the stub as it is,
        but for what `flags` (CLONE_FILES, CLONE_FS) make it share with this one."""
        return Stub.forked(self._cloned(vpid, flags, 0, 0, 0, "PID"), vpid, self)

    def fork_sibling(self, vpid: int) -> Stub:
        """A helper with PID `vpid` that no process of the job ever sees: a copy of this stub, the root's,
        cloned with CLONE_PARENT, so that its parent is the root's (incr, or the new PID namespace's init,
        which reaps whatever ends there).  For what the kernel records of the caller's PID, done in the
        name of a process that has exited; end it with kill()."""
        return Stub.forked(self._cloned(vpid, CLONE_PARENT, 0, 0, 0, "helper PID"), vpid, self)

    def exit_as(self, code: int) -> None:
        """End this stub with exit code `code`, leaving a zombie for its parent to reap."""
        self._alive = False
        nr = pt.SYSCALL_NUMBERS["exit_group"]
        with contextlib.suppress(ProcessLookupError):       # the step saw it exit, and reaped it here
            pt.remote_syscall(self.pid, self.tracee.regs, self.injection, nr, [code], None)

    def die_of(self, sig: int) -> int:
        """End this stub by signal `sig` at its default action, leaving a zombie; its wait status."""
        if sig != signal.SIGKILL:
            self.call("rt_sigaction", sig, self.put(bytes(32)), 0, 8)      # SIG_DFL
        # The stub blocks every signal: a blocked one would stay pending for ever.
        pt.set_sigmask(self.pid, ALL_SIGNALS & ~(1 << (sig - 1)))
        self._alive = False
        os.kill(self.pid, sig)
        deliver = 0
        while True:
            with contextlib.suppress(ProcessLookupError):      # SIGKILL: dead already
                pt.cont(self.pid, deliver)
            st = pt.wait(self.pid)
            if st.exited:
                return st.status
            deliver = sig if st.event == 0 and st.stopsig == sig else 0

    def discard_pending(self, sig: int) -> None:
        """Dequeue `sig` if pending (the stub blocks it): e.g. the SIGCHLD of a child made a zombie."""
        mask = self.put(struct.pack("<Q", 1 << (sig - 1)))
        now = self.put(bytes(16))                              # a zero timeout: never waits
        while self.syscall("rt_sigtimedwait", mask, 0, now, 8) == sig:
            pass

    def clone_thread(self, vtid: int, clear_child_tid: int) -> StubThread:
        """A thread of the stub with TID `vtid` (clone3 set_tid), stopped before its first instruction."""
        tid = self._cloned(vtid, CLONE_THREAD_FLAGS, clear_child_tid, self.injection + DATA_END, pt.PAGE_SIZE,
                           "thread")
        thread = StubThread(self, Tracee(self.pid, tid, self.injection, live=False, vpid=self.vpid, vtid=vtid))
        self.threads[tid] = thread
        return thread

    def drop_injection_area(self) -> None:
        """The stub's last injected call: nothing may be injected after it."""
        self.call("munmap", self.injection, INJECTION_SIZE)
        self.injection = 0

    def kill(self) -> None:
        if not self._alive:
            return
        self._alive = False
        try:
            pt.kill_and_reap_group(self.pid, list(self.threads))   # each traced thread keeps its TID until reaped
        except OSError as exc:
            if exc.errno != errno.ESRCH:
                log.warning("could not end the half-restored PID %d: %s", self.vpid, exc)
        self._end_init()

    def _end_init(self) -> None:
        if self.init:
            pt.kill_and_reap(self.init)
            self.init = 0


class StubThread:
    """One more thread of the process being restored; remote calls run in it."""

    def __init__(self, stub: Stub, tracee: Tracee) -> None:
        self.stub = stub
        self.tracee = tracee
        self.pid, self.vpid = stub.pid, stub.vpid
        self.tid = tracee.tid

    def call(self, name: str, *args: int) -> int:
        return self.tracee.call(name, *args)

    def syscall(self, name: str, *args: int) -> int:
        return self.tracee.syscall(name, *args)

    def put(self, data: bytes) -> int:
        return self.stub.put(data)
