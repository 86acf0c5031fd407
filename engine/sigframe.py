"""The safety net under syscalls injected into a live job.

A remote syscall points a thread's registers at a ``syscall`` instruction
with the call's number and arguments, resumes the thread until the call's
exit, and puts the thread's own registers back.  If incr is killed in
between (any instant: the crash model, docs/crash-model.md), the kernel
detaches the thread and it runs on from the injected registers: without a
net, on into [vdso] with garbage registers, and the job dies (measured here:
SIGSEGV).  So the call runs from a gadget parked in the zero padding at the
end of the job's [vdso] mapping::

    syscall                   the injected call
    mov $15, %eax             __NR_rt_sigreturn
    syscall

with the stack pointer at a signal frame, written below the thread's red zone
and scratch area, that holds the thread's own registers (an interrupted
syscall set to restart), its signal mask and its FPU/SSE/AVX state.  While
incr lives it stops the thread at the injected call's exit and puts the
registers back itself: the gadget's second half never runs.  If incr dies
at any instant in between, the thread finishes the call and rt_sigreturn
restores it exactly.  (One difference remains: rt_sigreturn resets the
restart block, so a sleep the thread was in returns EINTR, as after any
signal handler.)  The frame asks rt_sigreturn not to touch the alternate
signal stack (an invalid ss_flags, whose error the kernel ignores), since
incr does not know it before its first injection.

Where the net cannot be spread (no [vdso] or no padding in it, too little
stack below the thread's stack pointer, shadow stacks), injection works as
before, without it; `incr check` would not know, the log says so at debug
level.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass

from . import proc
from . import ptrace as pt
from .errors import EngineError
from .procmem import read_proc_mem, write_proc_mem

log = logging.getLogger(__name__)

GADGET = b"\x0f\x05" + b"\xb8\x0f\x00\x00\x00" + b"\x0f\x05"      # syscall; mov $15,%eax; syscall
GADGET_SLOT = 16                      # bytes at the end of [vdso] the gadget takes (zero before)
RED_ZONE = 128
SCRATCH_RESERVE = 1024                # below the red zone: Tracee.stack_scratch's area, above the frame

# struct rt_sigframe (x86-64): pretcode, ucontext, siginfo; the FPU state follows, 64-byte aligned.
_UC_OFFSET = 8
_UCONTEXT = struct.Struct("<QQQiiQ")  # uc_flags, uc_link, uc_stack {ss_sp, ss_flags, pad, ss_size}
_SIGCONTEXT = struct.Struct("<18Q4H5Q64x")   # r8..flags, cs gs fs ss, err trapno oldmask cr2 fpstate, reserved
_SIGINFO_SIZE = 128
_SIGMASK_OFFSET = _UC_OFFSET + _UCONTEXT.size + _SIGCONTEXT.size
_FRAME_HEAD = _SIGMASK_OFFSET + 8 + _SIGINFO_SIZE
UC_FP_XSTATE, UC_SIGCONTEXT_SS, UC_STRICT_RESTORE_SS = 1, 2, 4
SS_INVALID = 7                        # neither 0, SS_ONSTACK nor SS_DISABLE: the altstack stays as it is
FP_XSTATE_MAGIC1, FP_XSTATE_MAGIC2 = 0x46505853, 0x46505845
_SW_BYTES_AT = 464                    # struct _fpx_sw_bytes inside the legacy FXSAVE area
_SW_BYTES = struct.Struct("<IIQI28x")  # magic1, extended_size, xfeatures, xstate_size, padding
_XSTATE_HEADER_AT = 512               # XSTATE_BV: the components not in their initial state
_XTILEDATA_BIT = 18                   # AMX tile data, a dynamic feature (arch_prctl ARCH_REQ_XCOMP_PERM)
_XTILEDATA, _XTILEDATA_SIZE = 1 << _XTILEDATA_BIT, 8192

_SIGCONTEXT_REGS = ("r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rdi", "rsi", "rbp", "rbx", "rdx",
                    "rax", "rcx", "rsp", "rip", "eflags")


# ---------------------------------------------------------------- the gadget in [vdso]

@dataclass
class Gadget:
    """The gadget written into one process's [vdso]; `saved` is what was there before."""

    pid: int
    addr: int
    saved: bytes

    def remove(self) -> None:
        if self.saved != GADGET.ljust(GADGET_SLOT, b"\0"):
            write_proc_mem(self.pid, self.addr, self.saved)


def install_gadget(pid: int) -> Gadget | None:
    """Park the gadget at the end of process pid's [vdso], in padding no code uses; None if it has none."""
    vdso = next((m for m in proc.maps(pid) if m.path == "[vdso]"), None)
    if vdso is None:
        return None
    image = read_proc_mem(pid, vdso.start, vdso.size)
    addr = vdso.end - GADGET_SLOT
    slot = image[-GADGET_SLOT:]
    if _elf_end(image) > len(image) - GADGET_SLOT or slot not in (bytes(GADGET_SLOT),
                                                                  GADGET.ljust(GADGET_SLOT, b"\0")):
        log.debug("PID %d: no padding at the end of [vdso] for the injection safety net", pid)
        return None
    write_proc_mem(pid, addr, GADGET)
    return Gadget(pid, addr, slot)


def _elf_end(image: bytes) -> int:
    """Where the vdso's ELF image ends (program segments and section headers): padding follows."""
    if image[:4] != b"\x7fELF":
        return len(image)
    phoff, shoff = struct.unpack_from("<QQ", image, 0x20)
    phentsize, phnum, shentsize, shnum = struct.unpack_from("<HHHH", image, 0x36)
    end: int = shoff + shentsize * shnum
    for i in range(phnum):
        _, _, offset, _, _, filesz = struct.unpack_from("<IIQQQQ", image, phoff + i * phentsize)
        end = max(end, offset + filesz)
    return end


# ---------------------------------------------------------------- the frame on the thread's stack

@dataclass
class Net:
    """A frame ready to be written at `at` (its bytes), and the stack pointer the gadget runs with."""

    at: int
    frame: bytes
    sp: int


def spread(tid: int, regs: pt.Regs, sigmask: int, stack: tuple[int, int] | None) -> Net | None:
    """The net for thread tid: a frame that rt_sigreturn turns back into `regs` (the registers the
    thread must resume with) and `sigmask`, placed inside `stack` (the mapping holding its stack
    pointer) below the red zone and scratch area; None when it does not fit or cannot work."""
    if stack is None or _shadow_stack(tid):
        return None
    xstate = bytearray(pt.get_xstate(tid))
    xstate_size = len(xstate)
    # The regset carries XCR0 where a signal frame carries its software bytes (gdb reads it there).
    xcr0 = struct.unpack_from("<Q", xstate, _SW_BYTES_AT)[0] if xstate_size > _SW_BYTES_AT + 8 else 0
    if not xcr0:
        return None                    # no XSAVE layout to hand back: rt_sigreturn would lose state
    xstate, xcr0 = _without_unused_tiles(xstate, xcr0)
    xstate_size = len(xstate)
    _SW_BYTES.pack_into(xstate, _SW_BYTES_AT, FP_XSTATE_MAGIC1, xstate_size + 4, xcr0, xstate_size)
    top = regs.rsp - RED_ZONE - SCRATCH_RESERVE
    fpstate = (top - xstate_size - 4) & ~63
    frame_at = ((fpstate - _FRAME_HEAD) & ~15) - 8
    if frame_at < stack[0]:
        return None                    # remote writes cannot grow a stack
    frame = bytearray(top - frame_at)
    _UCONTEXT.pack_into(frame, _UC_OFFSET, UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS, 0, 0,
                        SS_INVALID, 0, 0)
    _SIGCONTEXT.pack_into(frame, _UC_OFFSET + _UCONTEXT.size, *(getattr(regs, r) for r in _SIGCONTEXT_REGS),
                          regs.cs, regs.gs, regs.fs, regs.ss, 0, 0, 0, 0, fpstate)
    struct.pack_into("<Q", frame, _SIGMASK_OFFSET, sigmask)
    at = fpstate - frame_at
    frame[at:at + xstate_size] = xstate
    struct.pack_into("<I", frame, at + xstate_size, FP_XSTATE_MAGIC2)
    return Net(at=frame_at, frame=bytes(frame), sp=frame_at + 8)


def _without_unused_tiles(xstate: bytearray, xcr0: int) -> tuple[bytearray, int]:
    """The regset is as large as every feature the CPU has, AMX tile data included (8 KiB, the last
    component), but a thread's signal frames are only as large as what it may use: rt_sigreturn takes
    a larger frame for a foreign one and restores only the legacy FXSAVE area, losing the upper halves
    of the vector registers (measured here on a Xeon with AMX).  A thread whose tile data is in its
    initial state (XSTATE_BV) gets a frame without it: all a thread without AMX permission can have."""
    xstate_bv = struct.unpack_from("<Q", xstate, _XSTATE_HEADER_AT)[0] if len(xstate) >= _XSTATE_HEADER_AT + 8 else 0
    cut = len(xstate) - _XTILEDATA_SIZE
    if not xcr0 & _XTILEDATA or xstate_bv & _XTILEDATA or xcr0 >> (_XTILEDATA_BIT + 1) or \
            cut < _XSTATE_HEADER_AT + 64:
        return xstate, xcr0
    return xstate[:cut], xcr0 & ~_XTILEDATA


def _shadow_stack(tid: int) -> bool:
    """rt_sigreturn would want a token on a user shadow stack, which the frame cannot provide."""
    try:
        return "shstk" in proc.status(tid).get("x86_Thread_features", "")
    except EngineError:                # the thread is gone: nothing to net
        return False
