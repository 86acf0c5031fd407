"""Dump of a frozen process: every resource module's dump, in an order that
fails fast (cheap /proc checks before injected syscalls before copying memory)."""

from __future__ import annotations

import os

from incr.proto import image_pb2

from . import cpu, creds, files, fs, memory, mm, proc, rlimits, signals, task, timers
from .errors import Unsupported
from .freeze import Frozen

IMAGE_VERSION = 1


def check_shape(pid: int) -> None:
    """Refuse what the engine cannot restore yet: child processes."""
    kids = proc.children(pid)
    if kids:
        listed = ", ".join(str(k) for k in kids[:5])
        raise Unsupported(pid, f"child process(es) {listed}", "process trees are not supported yet")


def check_supported(pid: int, skip_fds: set[int]) -> None:
    """The checks describe_state() makes that need no freeze, on the running process: a job
    with an unsupported resource is refused before incr touches it or the store."""
    check_shape(pid)
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
    check_shape(pid)
    st = proc.stat(pid)
    status = proc.status(pid)
    image = image_pb2.ProcessImage(pid=pid, ppid=st.ppid, pgid=st.pgid, sid=st.sid, comm=st.comm,
                                   cmdline=proc.cmdline(pid), stopped=frozen.was_stopped)
    task.dump(pid, image)
    image.creds.CopyFrom(creds.dump(pid, status))
    image.fs.CopyFrom(fs.dump(pid, status))
    file_list, fd_list = files.dump(pid, skip=skip_fds or set())
    image.files.extend(file_list)
    image.fds.extend(fd_list)
    image.vmas.extend(memory.dump_vmas(pid))
    image.rlimits.extend(rlimits.dump(pid))
    # Queued signals first: an injected syscall may dequeue one.
    image.shared_pending.extend(signals.dump_shared_pending(pid))
    private = {tid: signals.dump_thread_pending(tid) for tid in frozen.tids}
    for tid in frozen.tids:                  # the thread-group leader first
        thread = cpu.dump_thread(frozen.tracee(tid))
        thread.pending.extend(private[tid])
        task.dump_thread(pid, thread)
        image.threads.append(thread)
    tracee = frozen.tracee()
    image.sigactions.extend(signals.dump_sigactions(tracee, status))
    image.itimers.extend(timers.dump(tracee))
    image.mm.CopyFrom(mm.dump(tracee, st))
    return image


def tree_image(images: list[image_pb2.ProcessImage]) -> image_pb2.TreeImage:
    return image_pb2.TreeImage(version=IMAGE_VERSION, arch=os.uname().machine, root_pid=images[0].pid,
                               processes=images, kernel=os.uname().release)
