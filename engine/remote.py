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
from .tracee import Tracee, find_syscall_insn

log = logging.getLogger(__name__)

INJECTION_SIZE = 16 * pt.PAGE_SIZE
DATA_OFFSET = 64
DATA_END = INJECTION_SIZE - pt.PAGE_SIZE       # the last page: the stack of the clone3 instant
CLONE_THREAD_FLAGS = 0x100 | 0x200 | 0x400 | 0x800 | 0x10000 | 0x40000 | 0x200000
# CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM | CLONE_CHILD_CLEARTID
_CLONE_ARGS = struct.Struct("<11Q")
RSEQ_FLAG_UNREGISTER = 1
PROT_RWX, MAP_PRIVATE_ANON, MAP_FIXED_NOREPLACE = 0x7, 0x22, 0x100000
_SEARCH_FROM, _SEARCH_TO = 0x10000000, 0x7F0000000000


class RemoteProcess(Protocol):
    """What the resource modules need from the process they restore into."""

    pid: int

    def call(self, name: str, *args: int) -> int: ...
    def syscall(self, name: str, *args: int) -> int: ...
    def put(self, data: bytes) -> int: ...


class Stub:
    def __init__(self, pid: int, *, setsid: bool = False, setpgid: bool = False) -> None:
        try:
            self.pid = pt.spawn_stub(pid, setsid=setsid, setpgid=setpgid)
        except FileExistsError:
            raise PidTaken(pid, proc.describe(pid)) from None
        self._alive = True
        try:
            st = pt.wait(self.pid)
            if not st.stopped or st.stopsig != signal.SIGSTOP:
                raise RestoreError(f"restore stub for PID {pid} did not start: {st.describe()}")
            # incr dies -> the half-built process dies; threads and children it clones are ours at once.
            pt.set_options(self.pid, pt.PTRACE_O_EXITKILL | pt.PTRACE_O_TRACECLONE | pt.PTRACE_O_TRACEFORK)
            self.tracee = Tracee(self.pid, self.pid, find_syscall_insn(self.pid), live=False)
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
    def forked(cls, pid: int, parent: Stub) -> Stub:
        """The stub of a child `parent` forked (PTRACE_O_TRACEFORK: already ours and stopped)."""
        stub = cls.__new__(cls)
        stub.pid = pid
        stub._alive = True
        stub.tracee = Tracee(pid, pid, parent.injection, live=False)   # the injection area came along
        stub.injection = parent.injection
        stub._data_at = parent.injection + DATA_OFFSET
        stub.threads = {}
        return stub

    def fork_child(self, pid: int) -> Stub:
        """A child of this stub with PID `pid` (an injected clone3(set_tid)): a copy of the stub as it is."""
        args = _CLONE_ARGS.pack(0, 0, 0, 0, signal.SIGCHLD, 0, 0, 0, self.put(struct.pack("<i", pid)), 1, 0)
        got = self.syscall("clone3", self.put(args), _CLONE_ARGS.size)
        if got == -errno.EEXIST:
            raise PidTaken(pid, proc.describe(pid))
        if got != pid:
            raise RestoreError(f"cannot restore PID {pid}: clone3 gave {got}")
        st = pt.wait(pid)
        if not st.stopped:
            raise RestoreError(f"cannot restore PID {pid}: {st.describe()}")
        return Stub.forked(pid, self)

    def exit_as(self, status: int) -> None:
        """End this stub with wait status `status`, leaving a zombie for its parent to reap."""
        self._alive = False
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            os.kill(self.pid, sig)
            while True:
                st = pt.wait(self.pid)
                if st.exited:
                    return
                pt.cont(self.pid, st.stopsig if st.stopsig == sig else 0)
        nr = pt.SYSCALL_NUMBERS["exit_group"]
        with contextlib.suppress(ProcessLookupError):
            pt.remote_syscall(self.pid, self.tracee.regs, self.injection, nr, [os.WEXITSTATUS(status)], None)

    def clone_thread(self, tid: int, clear_child_tid: int) -> StubThread:
        """A thread of the stub with TID `tid` (clone3 set_tid), stopped before its first instruction."""
        stack = self.injection + DATA_END
        args = _CLONE_ARGS.pack(CLONE_THREAD_FLAGS, 0, clear_child_tid, 0, 0, stack, pt.PAGE_SIZE, 0,
                                self.put(struct.pack("<i", tid)), 1, 0)
        got = self.syscall("clone3", self.put(args), _CLONE_ARGS.size)
        if got == -errno.EEXIST:
            raise PidTaken(tid, proc.describe(tid))
        if got != tid:
            raise RestoreError(f"cannot restore thread {tid}: clone3 gave {got}")
        st = pt.wait(tid)                   # auto-attached (PTRACE_O_TRACECLONE): stopped at once
        if not st.stopped:
            raise RestoreError(f"cannot restore thread {tid}: {st.describe()}")
        thread = StubThread(self, Tracee(self.pid, tid, self.injection, live=False))
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
            for tid in [*self.threads, self.pid]:   # every traced thread keeps its TID until reaped
                pt.kill_and_reap(tid)
        except OSError as exc:
            if exc.errno != errno.ESRCH:
                log.warning("could not end the half-restored PID %d: %s", self.pid, exc)


class StubThread:
    """One more thread of the process being restored; remote calls run in it."""

    def __init__(self, stub: Stub, tracee: Tracee) -> None:
        self.stub = stub
        self.tracee = tracee
        self.pid = stub.pid
        self.tid = tracee.tid

    def call(self, name: str, *args: int) -> int:
        return self.tracee.call(name, *args)

    def syscall(self, name: str, *args: int) -> int:
        return self.tracee.syscall(name, *args)

    def put(self, data: bytes) -> int:
        return self.stub.put(data)
