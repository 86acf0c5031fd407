"""Dump of a frozen process: every resource module's dump, in an order that
fails fast (cheap /proc checks before injected syscalls before copying memory)."""

from __future__ import annotations

import mmap
import os
from collections.abc import Callable
from dataclasses import dataclass

from incr.proto import image_pb2

from . import cpu, creds, files, fs, memory, mm, proc, rlimits, signals, task, timers
from .errors import Unsupported
from .freeze import Frozen
from .memory import MemoryCopy, PageRun

IMAGE_VERSION = 1


@dataclass
class ProcessDump:
    image: image_pb2.ProcessImage
    memory: MemoryCopy


def check_shape(frozen: Frozen) -> None:
    """Refuse what the engine cannot restore yet: more threads, child processes."""
    pid = frozen.pid
    if len(frozen.tids) > 1:
        raise Unsupported(pid, f"{len(frozen.tids)} threads", "multi-threaded processes are not supported yet")
    kids = proc.children(pid)
    if kids:
        listed = ", ".join(str(k) for k in kids[:5])
        raise Unsupported(pid, f"child process(es) {listed}", "process trees are not supported yet")


def describe_state(frozen: Frozen) -> image_pb2.ProcessImage:
    """Everything but memory contents; raises Unsupported before anything is copied."""
    pid = frozen.pid
    check_shape(frozen)
    st = proc.stat(pid)
    status = proc.status(pid)
    image = image_pb2.ProcessImage(pid=pid, ppid=st.ppid, pgid=st.pgid, sid=st.sid, comm=st.comm,
                                   cmdline=proc.cmdline(pid), stopped=frozen.was_stopped)
    task.dump(pid, image, st)
    image.creds.CopyFrom(creds.dump(pid, status))
    image.fs.CopyFrom(fs.dump(pid, status))
    file_list, fd_list = files.dump(pid)
    image.files.extend(file_list)
    image.fds.extend(fd_list)
    image.vmas.extend(memory.dump_vmas(pid))
    image.rlimits.extend(rlimits.dump(pid))
    # Queued signals first: an injected syscall may dequeue one.
    shared, private = signals.dump_pending(pid, pid)
    image.shared_pending.extend(shared)
    tracee = frozen.tracee()
    thread = cpu.dump_thread(tracee)
    thread.pending.extend(private)
    image.threads.append(thread)
    image.sigactions.extend(signals.dump_sigactions(tracee, status))
    image.itimers.extend(timers.dump(tracee))
    image.mm.CopyFrom(mm.dump(tracee, st))
    return image


PagePlanner = Callable[[int, list[image_pb2.Vma]], list[PageRun]]


def dump(frozen: Frozen, plan: PagePlanner, buffer: mmap.mmap | None = None) -> ProcessDump:
    """State plus a copy of the pages `plan` (a dirty tracker) picks among the VMAs,
    into `buffer` (allocated before the freeze) when it is large enough."""
    image = describe_state(frozen)
    vmas = list(image.vmas)
    copy = memory.copy_pages(frozen.pid, vmas, plan(frozen.pid, vmas), buffer)
    return ProcessDump(image=image, memory=copy)


def tree_image(dumps: list[ProcessDump]) -> image_pb2.TreeImage:
    return image_pb2.TreeImage(version=IMAGE_VERSION, arch=os.uname().machine, root_pid=dumps[0].image.pid,
                               processes=[d.image for d in dumps], kernel=os.uname().release)


def preallocate(pid: int, plan: PagePlanner) -> mmap.mmap:
    """A populated buffer for the copy ahead, sized from the running process.

    Also refuses unsupported mappings before the job is frozen at all.
    """
    estimate = memory.planned_bytes(plan(pid, memory.dump_vmas(pid)))
    return memory.allocate_buffer(estimate + estimate // 16 + (16 << 20))
