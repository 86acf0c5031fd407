"""Dump of a frozen process: every resource module's dump, in an order that
fails fast (cheap /proc checks before injected syscalls before copying memory)."""

from __future__ import annotations

import contextlib
import os

from incr.proto import image_pb2

from . import (
    aio,
    cpu,
    creds,
    fifos,
    files,
    fown,
    fs,
    ghost,
    hardening,
    inet,
    inflight,
    jobctl,
    locks,
    memory,
    mm,
    namespaces,
    netlink,
    pipes,
    prctl,
    proc,
    pty,
    rlimits,
    sched,
    seccomp,
    sem,
    sessions,
    sharing,
    shm,
    signals,
    task,
    timerfd,
    timers,
    unixnamed,
    unixsock,
    vmflags,
)
from .errors import ProcessNotFound, Unsupported
from .freeze import Frozen
from .holders import Holder
from .tree import FrozenTree, gone

IMAGE_VERSION = 9        # the newest this incr reads and writes; see minimal_version()


def check_supported(root: int, skip: dict[int, set[int]], ghost_limit: int | None = ghost.DEFAULT_LIMIT,
                    external_ok: bool = False) -> None:
    """The checks describe_tree() makes that need no freeze, on the running tree: a job with an
    unsupported resource is refused before incr touches it or the store.  `skip`: each live
    process of the tree (as the caller listed them) -> its descriptors to leave out;
    `ghost_limit`: the largest deleted file the checkpoint may store (ghost.py); `external_ok`:
    descriptors leading out of the job are recorded as external, not refused (external.py)."""
    table = files.FileTable(skip, ghost_limit=ghost_limit, external_ok=external_ok)
    for pid in skip:
        try:
            sharing.check_running(pid, skip)
            _check_process(pid, table)
        except (ProcessNotFound, FileNotFoundError, ProcessLookupError):
            # The tree runs: a child exited, or a descriptor closed, under our feet.  The
            # frozen dump checks all of it again on a tree that cannot change.
            if pid == root and not proc.exists(root):
                raise ProcessNotFound(root) from None
        except Unsupported:
            if pid == root or not gone(pid):
                raise                   # (a process tearing itself down is no reason to refuse)


def _check_process(pid: int, table: files.FileTable) -> None:
    if proc.nested_pidns(pid):
        # Its PIDs inside differ from the ones /proc shows incr; the image would mix the two.
        raise Unsupported(pid, "PID namespace", "the process runs in a PID namespace of its own (e.g. "
                          "restored with --new-pidns); checkpointing it is not supported yet")
    namespaces.check(pid)
    status = proc.status(pid)
    creds.dump(pid, status)
    creds.check_threads(pid, proc.tasks(pid))
    fs.dump(pid, status)
    table.add(pid)
    memory.dump_vmas(pid, ghost_limit=table.ghost_limit)
    timers.check_posix_timers(pid)


def describe_tree(tree: FrozenTree, skip: dict[int, set[int]], *, ends_job: bool = False,
                  vm_flags: dict[int, proc.VmFlags] | None = None,
                  ghost_limit: int | None = ghost.DEFAULT_LIMIT, external_ok: bool = False,
                  tcp_established: bool = False) -> image_pb2.TreeImage:
    """Everything but memory contents, for every process of a frozen tree (parents first), and the
    contents of the pipes between them; raises Unsupported before anything is copied.  `ends_job`:
    the tree is killed right after, never thawed (checkpoint --kill).  `vm_flags`: each process's
    VmFlags read just before the freeze (memory.dump_vmas).  `ghost_limit`, `external_ok`: as for
    check_supported().  `tcp_established`: TCP connections to peers outside the job are checkpointed
    (inet.capture; with `ends_job` their ports stay locked until the restore: tree.settlers)."""
    table = files.FileTable({p: skip.get(p, set()) for p in tree.frozen}, frozen=True, ghost_limit=ghost_limit,
                            external_ok=external_ok)
    images = []
    for pid in tree.order:
        if pid in tree.zombies:
            st = proc.stat(pid)
            images.append(image_pb2.ProcessImage(pid=pid, ppid=st.ppid, pgid=st.pgid, sid=st.sid, comm=st.comm,
                                                 zombie=True, exit_status=st[52], start_time=st[22]))
        else:
            images.append(describe_state(tree.frozen[pid], table, (vm_flags or {}).get(pid)))
    sharing.dump(images)
    prctl.check_parent_threads(images)
    sessions.check(images)
    sem.check({p.pid for p in images})
    jobctl.dump_reports(images, tree.frozen)
    timerfd.settle(images)
    image = tree_image(images)
    fown.check_tree(image)
    locks.dump(image, table.locked)
    image.boot_id = proc.boot_id()
    image.ended_job = ends_job
    try:
        # Sockets first: a description only in flight is found there, and a pipe's bytes are read
        # through incr's copy of it (FileTable.carried), kept until its pipe is captured.
        carrier = inflight.Carrier(table.carried, table.job)
        image.socketpairs.extend(_capture_socketpairs(table, carrier))
        unixsock.check_creators(image)
        named, leftovers = unixnamed.capture(unixnamed.Survey(
            {f.socket: table.holders[f.id] for f in table.files if f.kind == image_pb2.OpenFile.UNIX}, table.unix,
            carrier))
        image.unix_sockets.extend(named)
        image.socket_paths.extend(leftovers)
        unixnamed.check_creators(image)
        image.in_flight.extend(table.files[i] for i in table.in_flight)
        unixnamed.check_carried(image)
        fs.check_chroot_sockets(image)
        inet_sockets, hold = inet.capture(
            {f.socket: table.holders[f.id] for f in table.files if f.kind == image_pb2.OpenFile.INET},
            lambda pid: tree.frozen[pid].journal, image.root_pid, outside_ok=tcp_established, ends_job=ends_job)
        image.inet_sockets.extend(inet_sockets)
        image.netlink_sockets.extend(netlink.capture(table.holders[f.id].pid, table.holders[f.id].fd, f.socket,
                                                     f"fd {table.holders[f.id].fd}")
                                     for f in table.files if f.kind == image_pb2.OpenFile.NETLINK)
        if hold is not None:
            tree.settlers.append(hold)
        image.pipes.extend(_capture_pipes(table))
        image.fifos.extend(_capture_fifos(table))
    finally:
        table.close_carried()
    image.shm.extend(shared_objects(image))
    image.ptys.extend(_capture_ptys(table))
    image.version = minimal_version(image)
    return image


def _needs_version_8(image: image_pb2.TreeImage) -> bool:
    processes = [p for p in image.processes if not p.zombie]
    return (inet.needs_version_8(image) or netlink.needs_version_8(image) or namespaces.uses_uts(image)
            or pty.needs_version_8(image) or any(s.owner.uid or s.owner.gid for s in image.unix_sockets)
            or any(p.packets for p in image.pipes) or any(p.seccomp for p in processes)
            or any(p.fs.root not in ("", "/") for p in processes)
            or any(f.kind == image_pb2.OpenFile.FANOTIFY for p in processes for f in p.files))


def minimal_version(image: image_pb2.TreeImage) -> int:
    """The oldest image version that describes `image`, so that an older incr can restore it if it can:
    1, 2 with named FIFOs, 3 with any attribute a version-2 reader would silently drop, 4 with ghost
    files (a version-3 reader would make one a memfd), external descriptors, pidfds, /proc files,
    O_PATH symlinks, removed directories and FIFOs, AIO rings; 5 with Unix sockets beyond pairs; 6 with
    descriptors and credentials in flight, AIO rings holding unread events, and pseudo-terminals; 7 with
    TCP and UDP sockets; 8 with half-closed TCP connections, connections leading outside the job,
    chroot'ed processes, UTS namespaces, pipes in packet mode, seccomp filters, netlink sockets and
    fanotify groups; 9 with a pseudo-terminal's output stopped or its packet-mode status unread."""
    if pty.needs_version_9(image):
        return 9
    if _needs_version_8(image):
        return 8
    if inet.needs_version_7(image):
        return 7
    if inflight.needs_version_6(image) or pty.needs_version_6(image) or aio.needs_version_6(image):
        return 6
    if unixnamed.needs_version_5(image):
        return 5
    if any(o.kind == image_pb2.ShmImage.GHOST for o in image.shm) or any(
            f.kind in (image_pb2.OpenFile.EXTERNAL, image_pb2.OpenFile.PIDFD, image_pb2.OpenFile.PROCFS,
                       image_pb2.OpenFile.SYMLINK) or f.HasField("removed")
            for p in image.processes for f in p.files
    ) or any(p.fs.HasField("cwd_removed") or any(v.kind == image_pb2.Vma.AIO for v in p.vmas)
             or any(w.HasField("via") for f in p.files for w in f.epoll.watches) or p.mm.exe_shm
             for p in image.processes) \
            or any(pair.widowed for pair in image.socketpairs):
        return 4
    if needs_version_3(image):
        return 3
    return 2 if image.fifos else 1


def needs_version_3(image: image_pb2.TreeImage) -> bool:
    """Whether the image holds state that an incr reading version 2 would ignore, restoring a job that
    differs from the one checkpointed (docs/store-format.md lists the fields)."""
    return any(_vma_needs_version_3(v) for p in image.processes for v in p.vmas) or any(
        p.thp_disable or p.merge_any or p.lock_future for p in image.processes) or fown.needs_version_3(image) \
        or sharing.needs_version_3(image) or image.ended_job or _shares_files_outside(image) \
        or creds.needs_version_3(image) or sched.needs_version_3(image) or hardening.needs_version_3(image) \
        or locks.needs_version_3(image) or unixsock.needs_version_3(image) or any(p.widowed for p in image.pipes) \
        or any(prctl.newer_than_version_2(p) or jobctl.newer_than_version_2(p) for p in image.processes) \
        or any(o.unlinked or o.alias for o in image.shm)


def _vma_needs_version_3(vma: image_pb2.Vma) -> bool:
    return (vma.kind == image_pb2.Vma.DROPPABLE or bool(vma.advice) or bool(vma.lock) or vma.noreserve
            or vma.unaccounted or vma.sealed or bool(vma.guards) or vma.guarded or vma.may_write)


def _shares_files_outside(image: image_pb2.TreeImage) -> bool:
    """A version-2 reader would truncate files others write too (outside.py)."""
    return any(f.shared_outside or f.other_writers for p in image.processes for f in p.files)


def shared_objects(image: image_pb2.TreeImage) -> list[image_pb2.ShmImage]:
    """Every shared memory object the tree maps or holds, once."""
    out: dict[str, image_pb2.ShmImage] = {}
    for key, link in shm.links(image.processes).items():
        st = os.stat(link)
        name = os.readlink(link)
        obj = shm.classify(image.root_pid, name, st, name)
        if obj is None:
            continue
        if obj.kind == image_pb2.ShmImage.MEMFD:
            obj.seals = shm.seals(link)
        obj.key = key
        out[key] = obj
    return list(out.values())

def _capture_socketpairs(table: files.FileTable, carrier: inflight.Carrier) -> list[image_pb2.SocketPairImage]:
    ends = {f.socket: table.holders[f.id] for f in table.files if f.kind == image_pb2.OpenFile.SOCKETPAIR}
    out = []
    for ino, holder in sorted(ends.items()):
        if table.unix[ino].widowed:
            out.append(unixsock.capture_widowed(unixsock.End(holder.pid, holder.fd, ino, table.unix[ino].shutdown),
                                                table.unix[ino].type))
            continue
        peer = table.unix[ino].peer
        if ino > peer:
            continue                     # each pair once
        other = ends[peer]
        out.append(unixsock.capture(unixsock.End(holder.pid, holder.fd, ino, table.unix[ino].shutdown),
                                    unixsock.End(other.pid, other.fd, peer, table.unix[peer].shutdown),
                                    table.unix[ino].type, carrier))
    return out


def _capture_ptys(table: files.FileTable) -> list[image_pb2.PtyImage]:
    if not table.pty_masters:
        return []           # (no /proc read per process while the job is frozen)
    groups = {}
    for pid in table.job:
        with contextlib.suppress(ProcessNotFound, FileNotFoundError):
            groups[proc.stat(pid).pgid] = proc.ns_ids(pid)[1]
    return [pty.capture(index, holder, index in table.pty_slaves, f"fd {holder[1]} (/dev/ptmx)", table.job, groups)
            for index, holder in sorted(table.pty_masters.items())]


def _capture_fifos(table: files.FileTable) -> list[image_pb2.PipeImage]:
    out: dict[fifos.Key, image_pb2.PipeImage] = {}
    for f in table.files:
        if f.kind == image_pb2.OpenFile.FIFO and fifos.key_of(f) not in out:
            holder = table.holders[f.id]
            out[fifos.key_of(f)] = fifos.capture((holder.pid, holder.fd), fifos.key_of(f))
    return list(out.values())


def _capture_pipes(table: files.FileTable) -> list[image_pb2.PipeImage]:
    ends: dict[int, dict[int, Holder]] = {}
    for f in table.files:
        if f.kind == image_pb2.OpenFile.PIPE:
            ends.setdefault(f.pipe, {})[f.flags & files.O_ACCMODE] = table.holders[f.id]
    out = []
    for ino, held in sorted(ends.items()):
        if ino in table.widowed:
            (end, h), = held.items()
            out.append(pipes.capture_widowed(ino, (h.pid, h.fd), end))
            continue
        r = held[os.O_RDONLY]
        out.append(pipes.capture(ino, (r.pid, r.fd)))
    return out


def describe_state(frozen: Frozen, table: files.FileTable,
                   vm_flags: proc.VmFlags | None = None) -> image_pb2.ProcessImage:
    """Everything of one process but memory contents (its descriptions go to `table`, tree-wide)."""
    pid = frozen.pid
    namespaces.check(pid)
    st = proc.stat(pid)
    status = proc.status(pid)
    image = image_pb2.ProcessImage(pid=pid, ppid=st.ppid, pgid=st.pgid, sid=st.sid, comm=st.comm,
                                   cmdline=proc.cmdline(pid), stopped=frozen.was_stopped, start_time=st[22],
                                   tty_nr=st[7] & 0xFFFFFFFF, stop_signal=frozen.stop_signal)
    task.dump(pid, image)
    uts = namespaces.dump_uts(pid)
    if uts is not None:
        image.uts.CopyFrom(uts)
    image.creds.CopyFrom(creds.dump(pid, status))
    image.seccomp.extend(seccomp.dump(pid, frozen.tids, status))
    image.fs.CopyFrom(fs.dump(pid, status))
    file_list, fd_list = table.add(pid)
    image.files.extend(file_list)
    image.fds.extend(fd_list)
    image.vmas.extend(memory.dump_vmas(pid, vm_flags, table.ghost_limit))
    image.rlimits.extend(rlimits.dump(pid))
    shared, private = frozen.queued_signals()       # as of the freeze: an injected syscall may dequeue one
    image.shared_pending.extend(shared)
    for tid in frozen.tids:                  # the thread-group leader first
        thread = cpu.dump_thread(frozen.tracee(tid))
        thread.pending.extend(private[tid])
        task.dump_thread(pid, thread)
        thread.creds.CopyFrom(creds.dump_thread(frozen.tracee(tid)))
        thread.sched.CopyFrom(sched.dump_thread(pid, tid))
        hardening.dump_thread(frozen.tracee(tid), thread)
        image.threads.append(thread)
    tracee = frozen.tracee()
    image.sigactions.extend(signals.dump_sigactions(tracee, status))
    itimers, posix = timers.dump(tracee)
    image.itimers.extend(itimers)
    image.posix_timers.extend(posix)
    image.mm.CopyFrom(mm.dump(tracee, st))
    vmflags.dump_process(tracee, image)
    hardening.dump_process(tracee, image)
    prctl.dump(frozen, image)
    return image


def tree_image(images: list[image_pb2.ProcessImage]) -> image_pb2.TreeImage:
    return image_pb2.TreeImage(version=IMAGE_VERSION, arch=os.uname().machine, root_pid=images[0].pid,
                               processes=images, kernel=os.uname().release)
