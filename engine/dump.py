"""Dump of a frozen process: every resource module's dump, in an order that
fails fast (cheap /proc checks before injected syscalls before copying memory)."""

from __future__ import annotations

import os

from incr.proto import image_pb2

from . import cpu, creds, files, fs, memory, mm, proc, rlimits, signals, task, timers
from .errors import Unsupported
from .freeze import Frozen

IMAGE_VERSION = 1


def check_shape(pid: int, threads: int) -> None:
    """Refuse what the engine cannot restore yet: more threads, child processes."""
    if threads > 1:
        raise Unsupported(pid, f"{threads} threads", "multi-threaded processes are not supported yet")
    kids = proc.children(pid)
    if kids:
        listed = ", ".join(str(k) for k in kids[:5])
        raise Unsupported(pid, f"child process(es) {listed}", "process trees are not supported yet")


def check_supported(pid: int, skip_fds: set[int]) -> None:
    """The checks describe_state() makes that need no freeze, on the running process: a job
    with an unsupported resource is refused before incr touches it or the store."""
    check_shape(pid, len(proc.tasks(pid)))
    status = proc.status(pid)
    creds.dump(pid, status)
    fs.dump(pid, status)
    files.dump(pid, skip=skip_fds)
    memory.dump_vmas(pid)
    timers.check_posix_timers(pid)


def describe_state(frozen: Frozen, skip_fds: set[int] | None = None) -> image_pb2.ProcessImage:
    """Everything but memory contents; raises Unsupported before anything is copied.

    `skip_fds`: descriptors incr itself keeps in the job (a parked tracker), not the job's."""
    pid = frozen.pid
    check_shape(pid, len(frozen.tids))
    st = proc.stat(pid)
    status = proc.status(pid)
    image = image_pb2.ProcessImage(pid=pid, ppid=st.ppid, pgid=st.pgid, sid=st.sid, comm=st.comm,
                                   cmdline=proc.cmdline(pid), stopped=frozen.was_stopped)
    task.dump(pid, image, st)
    image.creds.CopyFrom(creds.dump(pid, status))
    image.fs.CopyFrom(fs.dump(pid, status))
    file_list, fd_list = files.dump(pid, skip=skip_fds or set())
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


def tree_image(images: list[image_pb2.ProcessImage]) -> image_pb2.TreeImage:
    return image_pb2.TreeImage(version=IMAGE_VERSION, arch=os.uname().machine, root_pid=images[0].pid,
                               processes=images, kernel=os.uname().release)
