"""Threads' CPU and kernel-side thread state: registers, xstate, signal mask,
rseq, robust futex list, clear_child_tid, sigaltstack.  Dump and restore."""

from __future__ import annotations

import struct

from incr.proto import image_pb2

from . import ptrace as pt
from .remote import RemoteProcess
from .tracee import Tracee, with_syscall_restart

PR_GET_TID_ADDRESS = 40
SS_ONSTACK, SS_DISABLE = 1, 2
_STACK_T = struct.Struct("<QiiQ")      # stack_t: ss_sp, ss_flags, (pad), ss_size


def dump_thread(tracee: Tracee) -> image_pb2.ThreadImage:
    tid = tracee.tid
    img = image_pb2.ThreadImage(tid=tid, regs=tracee.regs.to_bytes(), xstate=pt.get_xstate(tid),
                                sigmask=pt.get_sigmask(tid))
    rseq = pt.get_rseq(tid)
    if rseq.pointer:
        img.rseq.CopyFrom(image_pb2.Rseq(pointer=rseq.pointer, size=rseq.size, signature=rseq.signature))
    img.robust_list, img.robust_list_len = pt.get_robust_list(tid)
    with tracee.stack_scratch(_STACK_T.size) as scratch:
        tracee.call("prctl", PR_GET_TID_ADDRESS, scratch.addr)
        img.clear_child_tid = struct.unpack("<Q", tracee.read(scratch.addr, 8))[0]
        tracee.call("sigaltstack", 0, scratch.addr)
        sp, flags, _, size = _STACK_T.unpack(tracee.read(scratch.addr, _STACK_T.size))
    if not flags & SS_DISABLE:
        img.altstack.CopyFrom(image_pb2.SigAltStack(sp=sp, flags=flags, size=size))
    return img


def restore_thread_state(target: RemoteProcess, thread: image_pb2.ThreadImage) -> None:
    """Kernel-side state of the thread, injected in that thread (before its final registers)."""
    target.call("set_robust_list", thread.robust_list, thread.robust_list_len)
    target.call("set_tid_address", thread.clear_child_tid)
    if thread.HasField("rseq"):
        target.call("rseq", thread.rseq.pointer, thread.rseq.size, 0, thread.rseq.signature)
    # Always set: the stub inherited incr's own alternate stack (pytest's
    # faulthandler has one), and a handler with SA_ONSTACK would run on it.
    if thread.HasField("altstack"):
        ss = _STACK_T.pack(thread.altstack.sp, thread.altstack.flags & ~SS_ONSTACK, 0, thread.altstack.size)
    else:
        ss = _STACK_T.pack(0, SS_DISABLE, 0, 0)
    target.call("sigaltstack", target.put(ss), 0)


def final_registers(thread: image_pb2.ThreadImage) -> pt.Regs:
    """The dumped registers, an interrupted syscall made to restart (sleeps return EINTR)."""
    return with_syscall_restart(pt.Regs(thread.regs), restart_block=False)


def set_final_state(tid: int, thread: image_pb2.ThreadImage) -> None:
    pt.set_regs(tid, final_registers(thread))
    pt.set_xstate(tid, thread.xstate)
    pt.set_sigmask(tid, thread.sigmask)
