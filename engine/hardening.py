"""Modes a program sets on itself with prctl() that /proc does not show: per thread the TSC mode
(PR_SET_TSC: whether rdtsc faults), per process memory-deny-write-execute (PR_SET_MDWE).

Both are read by injection at dump and set by injection at restore.  MDWE is set last, just before
the injection area goes: once on it refuses the stub's own mappings that gain PROT_EXEC; it cannot
be turned off again.
"""

from __future__ import annotations

import struct

from incr.proto import image_pb2

from .remote import RemoteProcess
from .tracee import Tracee

PR_GET_TSC, PR_SET_TSC = 25, 26
PR_TSC_ENABLE = 1
PR_SET_MDWE, PR_GET_MDWE = 65, 66


def dump_thread(tracee: Tracee, thread: image_pb2.ThreadImage) -> None:
    with tracee.stack_scratch(8) as scratch:
        tracee.call("prctl", PR_GET_TSC, scratch.addr, 0, 0, 0)
        thread.tsc = struct.unpack("<i", tracee.read(scratch.addr, 4))[0]


def dump_process(tracee: Tracee, image: image_pb2.ProcessImage) -> None:
    ret = tracee.syscall("prctl", PR_GET_MDWE, 0, 0, 0, 0)
    image.mdwe = max(ret, 0)                   # EINVAL before Linux 6.3: no MDWE there


def needs_version_3(image: image_pb2.TreeImage) -> bool:
    return any(p.mdwe for p in image.processes) or any(
        t.tsc not in (0, PR_TSC_ENABLE) for p in image.processes for t in p.threads)


def restore_thread(target: RemoteProcess, thread: image_pb2.ThreadImage) -> None:
    """In the thread `target` drives, which has incr's TSC mode (enabled).  0: an older image."""
    if thread.tsc not in (0, PR_TSC_ENABLE):
        target.call("prctl", PR_SET_TSC, thread.tsc, 0, 0, 0)


def restore_process(target: RemoteProcess, image: image_pb2.ProcessImage) -> None:
    """In the main thread, as its last injections but the unmapping of the injection area."""
    if image.mdwe:
        target.call("prctl", PR_SET_MDWE, image.mdwe, 0, 0, 0)
