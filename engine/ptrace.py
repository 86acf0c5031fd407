"""Typed ptrace and memory primitives over ``incr._native``.

Errors come back from C as negative errno values and are raised here as
OSError, so every caller sees one convention.  ptrace is per *thread*: every
call for a tracee must come from the thread that attached it (the main thread).
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ptrace.syscall.linux.x86_64 import SYSCALL_NAMES

from incr._native import ffi, lib

PTRACE_O_TRACESYSGOOD = 0x1
PTRACE_O_TRACEFORK = 0x2
PTRACE_O_TRACECLONE = 0x8
PTRACE_O_EXITKILL = 1 << 20
PTRACE_EVENT_STOP = 128
PTRACE_PEEKSIGINFO_SHARED = 1
NT_X86_XSTATE = 0x202
XSTATE_MAX = 16384
SIGINFO_SIZE = 128
PAGE_SIZE = 4096

# python-ptrace's table also lists the x32 ABI's numbers (512 and up) under
# the same names: the native x86-64 number is the lowest.
SYSCALL_NUMBERS: dict[str, int] = {}
for _nr, _name in sorted(SYSCALL_NAMES.items()):
    SYSCALL_NUMBERS.setdefault(_name, _nr)

# Names python-ptrace's table (last release 2024) does not know yet, or knows by another name.
SYSCALL_NUMBERS.setdefault("close_range", 436)
SYSCALL_NUMBERS.setdefault("clone3", 435)
SYSCALL_NUMBERS.setdefault("timerfd_create", 283)
SYSCALL_NUMBERS.setdefault("mseal", 462)

REG_NAMES = (
    "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx", "rdx", "rsi", "rdi",
    "orig_rax", "rip", "cs", "eflags", "rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs", "gs",
)
REGS_SIZE = 8 * len(REG_NAMES)


def _check(ret: int, what: str) -> int:
    if ret < 0:
        raise OSError(-ret, f"{what}: {os.strerror(-ret)}")
    return ret


class Regs:
    """x86-64 ``struct user_regs_struct``; attribute access by register name."""

    __slots__ = ("_c",)

    def __init__(self, raw: bytes | None = None) -> None:
        self._c: Any = ffi.new("struct user_regs_struct *")
        if raw is not None:
            if len(raw) != REGS_SIZE:
                raise ValueError(f"register image has {len(raw)} bytes, expected {REGS_SIZE}")
            ffi.memmove(self._c, raw, REGS_SIZE)

    def __getattr__(self, name: str) -> int:
        if name in REG_NAMES:
            return int(getattr(self._c, name))
        raise AttributeError(name)

    def set(self, **values: int) -> None:
        for name, value in values.items():
            setattr(self._c, name, value & 0xFFFFFFFFFFFFFFFF)

    def signed(self, name: str) -> int:
        value = int(getattr(self._c, name))
        return value - (1 << 64) if value >= 1 << 63 else value

    def copy(self) -> Regs:
        return Regs(self.to_bytes())

    def to_bytes(self) -> bytes:
        return bytes(ffi.buffer(self._c, REGS_SIZE))

    @property
    def cdata(self) -> Any:
        return self._c


@dataclass(frozen=True)
class WaitStatus:
    pid: int
    status: int

    @property
    def stopped(self) -> bool:
        return os.WIFSTOPPED(self.status)

    @property
    def stopsig(self) -> int:
        return os.WSTOPSIG(self.status) if self.stopped else 0

    @property
    def event(self) -> int:
        return (self.status >> 16) & 0xFF

    @property
    def exited(self) -> bool:
        return os.WIFEXITED(self.status) or os.WIFSIGNALED(self.status)

    def describe(self) -> str:
        if os.WIFEXITED(self.status):
            return f"exited with status {os.WEXITSTATUS(self.status)}"
        if os.WIFSIGNALED(self.status):
            return f"killed by signal {os.WTERMSIG(self.status)}"
        return f"stopped by signal {self.stopsig} (event {self.event})"


def seize(pid: int, options: int = 0) -> None:
    _check(lib.incr_ptrace_seize(pid, options), f"PTRACE_SEIZE {pid}")


def interrupt(pid: int) -> None:
    _check(lib.incr_ptrace_interrupt(pid), f"PTRACE_INTERRUPT {pid}")


def detach(pid: int, sig: int = 0) -> None:
    _check(lib.incr_ptrace_detach(pid, sig), f"PTRACE_DETACH {pid}")


def cont(pid: int, sig: int = 0) -> None:
    _check(lib.incr_ptrace_cont(pid, sig), f"PTRACE_CONT {pid}")


def singlestep(pid: int, sig: int = 0) -> None:
    _check(lib.incr_ptrace_singlestep(pid, sig), f"PTRACE_SINGLESTEP {pid}")


def set_options(pid: int, options: int) -> None:
    _check(lib.incr_ptrace_setoptions(pid, options), f"PTRACE_SETOPTIONS {pid}")


def keep_exit_status(pid: int, keep: bool = True) -> None:
    """Leave child `pid`'s exit to its parent's own wait (keep=False: no longer): a wait of the
    engine's that finds it exited leaves it a zombie instead of reaping it.  For the job `incr
    run` started, which a checkpoint traces: as tracer and parent, the engine's waits (also those
    inside a remote syscall) would take the status for good, and `incr run` could not exit with it."""
    _check(lib.incr_keep_exit_status(pid, 1 if keep else 0), f"keep the exit status of {pid}")


def wait(pid: int, options: int = 0) -> WaitStatus:
    status = ffi.new("int *")
    got = _check(lib.incr_wait(pid, status, options), f"waitpid {pid}")
    return WaitStatus(got, int(status[0]))


def get_regs(tid: int) -> Regs:
    regs = Regs()
    _check(lib.incr_getregs(tid, regs.cdata), f"PTRACE_GETREGS {tid}")
    return regs


def set_regs(tid: int, regs: Regs) -> None:
    _check(lib.incr_setregs(tid, regs.cdata), f"PTRACE_SETREGS {tid}")


def get_xstate(tid: int) -> bytes:
    buf = ffi.new("char[]", XSTATE_MAX)
    n = _check(lib.incr_getregset(tid, NT_X86_XSTATE, buf, XSTATE_MAX), f"GETREGSET xstate {tid}")
    return bytes(ffi.buffer(buf, n))


def set_xstate(tid: int, xstate: bytes) -> None:
    _check(lib.incr_setregset(tid, NT_X86_XSTATE, xstate, len(xstate)), f"SETREGSET xstate {tid}")


def get_sigmask(tid: int) -> int:
    mask = ffi.new("uint64_t *")
    _check(lib.incr_getsigmask(tid, mask), f"PTRACE_GETSIGMASK {tid}")
    return int(mask[0])


def set_sigmask(tid: int, mask: int) -> None:
    _check(lib.incr_setsigmask(tid, mask), f"PTRACE_SETSIGMASK {tid}")


def get_siginfo(tid: int) -> bytes:
    """The siginfo of the tracee's current ptrace-stop."""
    buf = ffi.new("char[]", SIGINFO_SIZE)
    _check(lib.incr_getsiginfo(tid, buf), f"PTRACE_GETSIGINFO {tid}")
    return bytes(ffi.buffer(buf, SIGINFO_SIZE))


@dataclass(frozen=True)
class RseqConfig:
    pointer: int
    size: int
    signature: int
    flags: int


def get_rseq(tid: int) -> RseqConfig:
    cfg = ffi.new("struct incr_rseq_cfg *")
    _check(lib.incr_get_rseq(tid, cfg), f"PTRACE_GET_RSEQ_CONFIGURATION {tid}")
    return RseqConfig(int(cfg.rseq_abi_pointer), int(cfg.rseq_abi_size), int(cfg.signature), int(cfg.flags))


class TooManyQueued(Exception):
    """More signals are queued than peek_siginfo was allowed to read."""


def peek_siginfo(tid: int, shared: bool, most: int | None = None) -> list[bytes]:
    """Every queued siginfo of the thread (or of the process when shared), in order; TooManyQueued
    when there are more than `most`.  (The kernel walks the queue from its head for every entry it
    returns: n entries cost n*n/2 steps, 0.13 s for 10 000 here, 3.9 s for 40 000, minutes beyond 100 000.)"""
    out: list[bytes] = []
    batch = 32
    buf = ffi.new("char[]", SIGINFO_SIZE * batch)
    flags = PTRACE_PEEKSIGINFO_SHARED if shared else 0
    if most is not None and _check(lib.incr_peeksiginfo(tid, most, flags, 1, buf), f"PTRACE_PEEKSIGINFO {tid}"):
        raise TooManyQueued(most)
    while True:
        n = _check(lib.incr_peeksiginfo(tid, len(out), flags, batch, buf), f"PTRACE_PEEKSIGINFO {tid}")
        raw = bytes(ffi.buffer(buf, SIGINFO_SIZE * n))
        out.extend(raw[i * SIGINFO_SIZE:(i + 1) * SIGINFO_SIZE] for i in range(n))
        if n < batch:
            return out


class SignalIntercepted(Exception):
    """A signal was dequeued while a remote syscall ran; its siginfo must be re-queued."""

    def __init__(self, signo: int, siginfo: bytes) -> None:
        super().__init__(f"signal {signo} arrived during a remote syscall")
        self.signo = signo
        self.siginfo = siginfo


def remote_syscall(tid: int, base: Regs, rip: int, nr: int, args: Sequence[int], put_back: Regs | None,
                   mask_after: int | None = None, fault: int = 0) -> int:
    """Run one syscall in a stopped tracee; returns the raw (signed) rax.

    With `put_back`, those registers are set again right after the call; with
    `mask_after`, every signal is blocked meanwhile and that mask set after.
    `fault` (tests only): SIGKILL this process at that stage (lib.INCR_REMOTE_FAULT_*).
    """
    argv = ffi.new("long[6]", [_to_long(a) for a in (*args, 0, 0, 0, 0, 0, 0)[:6]])
    ret = ffi.new("long *")
    info = ffi.new("char[]", SIGINFO_SIZE)
    mask = ffi.new("uint64_t *", mask_after) if mask_after is not None else ffi.NULL
    rc = lib.incr_remote_syscall(tid, base.cdata, rip, nr, argv, ret, info,
                                 put_back.cdata if put_back is not None else ffi.NULL, mask, fault)
    if rc > 0:
        raise SignalIntercepted(rc, bytes(ffi.buffer(info, SIGINFO_SIZE)))
    _check(rc, f"remote syscall {SYSCALL_NAMES.get(nr, nr)} in {tid}")
    return int(ret[0])


def _to_long(value: int) -> int:
    value &= 0xFFFFFFFFFFFFFFFF
    return value - (1 << 64) if value >= 1 << 63 else value


def _iov_arrays(ranges: Sequence[tuple[int, int]]) -> tuple[Any, Any]:
    addrs = ffi.new("uint64_t[]", [a for a, _ in ranges])
    lens = ffi.new("uint64_t[]", [n for _, n in ranges])
    return addrs, lens


def vm_read_into(pid: int, ranges: Sequence[tuple[int, int]], out: memoryview | bytearray) -> None:
    """Copy the (address, length) ranges of pid, in order, into out (contiguous)."""
    total = sum(n for _, n in ranges)
    if total == 0:
        return
    if len(out) < total:
        raise ValueError("buffer too small")
    addrs, lens = _iov_arrays(ranges)
    got = _check(lib.incr_vm_read(pid, ffi.from_buffer(out, require_writable=True), addrs, lens, len(ranges)),
                 f"process_vm_readv {pid}")
    if got != total:
        raise OSError(errno.EFAULT, f"process_vm_readv {pid}: short read {got} of {total}")


def vm_write(pid: int, ranges: Sequence[tuple[int, int]], data: bytes | memoryview | bytearray) -> None:
    total = sum(n for _, n in ranges)
    if total == 0:
        return
    addrs, lens = _iov_arrays(ranges)
    got = _check(lib.incr_vm_write(pid, ffi.from_buffer(data), addrs, lens, len(ranges)),
                 f"process_vm_writev {pid}")
    if got != total:
        raise OSError(errno.EFAULT, f"process_vm_writev {pid}: short write {got} of {total}")


def _stub_flags(setsid: bool, setpgid: bool, own_session: bool) -> int:
    return (lib.INCR_STUB_SETSID if setsid else 0) | (lib.INCR_STUB_SETPGID if setpgid else 0) | \
        (lib.INCR_STUB_OWN_SESSION if own_session else 0)


def spawn_stub(pid: int, *, setsid: bool = False, setpgid: bool = False, own_session: bool = False) -> int:
    """A stub with PID `pid`; `own_session`: in a new session led by a helper that has exited (incr_native.h)."""
    return _check(lib.incr_spawn_stub(pid, _stub_flags(setsid, setpgid, own_session)), f"clone3(set_tid={pid})")


def spawn_adopted(pid: int, *, setsid: bool = False, setpgid: bool = False, own_session: bool = False) -> int:
    """A stub with PID `pid` whose parent is already our nearest subreaper or init, waiting in pause()
    to be seized (incr_native.h)."""
    return _check(lib.incr_spawn_adopted(pid, _stub_flags(setsid, setpgid, own_session)), f"clone3(set_tid={pid})")


def spawn_pidns(pid: int, *, setsid: bool = False, setpgid: bool = False, own_session: bool = False,
                new_ipc: bool = False) -> int:
    """A new PID namespace (and IPC namespace if `new_ipc`) whose init (a child of ours;
    returned) has created a stub with PID `pid` in it, reset and waiting in pause() to be seized;
    `own_session`: the init leads a new session, the stub's."""
    flags = _stub_flags(setsid, setpgid, own_session)
    flags |= lib.INCR_NS_IPC if new_ipc else 0
    ready, ready_w = os.pipe()
    try:
        init = _check(lib.incr_spawn_pidns(pid, flags, ready_w), "clone3(CLONE_NEWPID)")
        os.close(ready_w)
        ready_w = -1
        if os.read(ready, 1) != b"\x01":      # EOF: the init ended before its stub was ready
            _, status = os.waitpid(init, 0)
            why = f"could not create PID {pid} in it" if os.WEXITSTATUS(status) == 125 else "its stub did not start"
            raise OSError(errno.ESRCH, f"new PID namespace: {why} ({WaitStatus(init, status).describe()})")
        return init
    finally:
        os.close(ready)
        if ready_w >= 0:
            os.close(ready_w)


def pidfd_getfd(pidfd: int, fd: int) -> int:
    return _check(lib.incr_pidfd_getfd(pidfd, fd), f"pidfd_getfd fd {fd}")


KCMP_FILE, KCMP_VM, KCMP_FILES, KCMP_FS, KCMP_SIGHAND = 0, 1, 2, 3, 4


def kcmp_files(pid1: int, fd1: int, pid2: int, fd2: int) -> int:
    """0 when both fds share one open file description; otherwise an ordering."""
    return _check(lib.incr_kcmp(pid1, pid2, KCMP_FILE, fd1, fd2), "kcmp")


KCMP_EPOLL_TFD = 7


def kcmp_epoll_target(pid1: int, fd1: int, pid2: int, epfd: int, tfd: int) -> int:
    """0 when fd1 of pid1 is the file epoll `epfd` of pid2 watches as number `tfd` (the first such watch)."""
    slot = ffi.new("uint32_t[3]", [epfd, tfd, 0])      # struct kcmp_epoll_slot: efd, tfd, toff
    return _check(lib.incr_kcmp(pid1, pid2, KCMP_EPOLL_TFD, fd1, int(ffi.cast("uintptr_t", slot))), "kcmp")


def kcmp(pid1: int, pid2: int, kind: int) -> int:
    """0 when tasks pid1 and pid2 share resource `kind` (KCMP_VM, KCMP_FILES, KCMP_FS, KCMP_SIGHAND);
    otherwise 1 or 2, an ordering of the two that is the same for every pair (sorting by it works)."""
    return _check(lib.incr_kcmp(pid1, pid2, kind, 0, 0), "kcmp")


def get_robust_list(tid: int) -> tuple[int, int]:
    head = ffi.new("uint64_t *")
    length = ffi.new("uint64_t *")
    _check(lib.incr_get_robust_list(tid, head, length), f"get_robust_list {tid}")
    return int(head[0]), int(length[0])


def tgkill(tgid: int, tid: int, sig: int) -> None:
    """A signal for thread `tid` alone (kill(2) of a TID signals its whole thread group)."""
    _check(lib.incr_tgkill(tgid, tid, sig), f"tgkill {tid}")


def reap(tid: int) -> None:
    """Wait until the traced task `tid` has exited and is reaped; nothing to wait for if it is gone
    already or not ours (a thread that exec()ed has taken its leader's TID and left its own)."""
    while True:
        try:
            if wait(tid).exited:
                return
        except ChildProcessError:
            return


def kill_and_reap(tid: int) -> None:
    """SIGKILL a tracee and wait for it: a killed tracee keeps its TID until its tracer reaps it."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(tid, 9)
    reap(tid)


def kill_and_reap_group(pid: int, tids: Sequence[int]) -> None:
    """SIGKILL thread group `pid` and reap each of its traced threads `tids`, the leader last.

    The kernel reports a leader's exit only once every other thread of its group is gone (a
    traced thread stays a zombie until its tracer reaps it): waiting for the leader first
    waits forever.  Afterwards no TID of the group is held by incr (the leader passes to
    its parent, as a zombie to reap).
    """
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, 9)
    for tid in tids:
        if tid != pid:
            reap(tid)
    reap(pid)
