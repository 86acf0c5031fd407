"""Restore of a process image, driven from outside by ptrace (DESIGN §5).

Everything that can be checked without creating a process is checked first
(preflight), so a refused restore leaves nothing behind; after that, any
failure kills the half-built process (PTRACE_O_EXITKILL covers incr dying).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from incr.faults import fault_point
from incr.proto import image_pb2

from . import (
    audit,
    cpu,
    creds,
    external,
    files,
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
    netlock,
    outside,
    prctl,
    proc,
    pty,
    rlimits,
    sched,
    seccomp,
    sessions,
    sharing,
    shm,
    signals,
    task,
    timers,
    unixnamed,
    unixsock,
    vmflags,
    zombies,
)
from . import ptrace as pt
from .dump import IMAGE_VERSION
from .errors import EngineError, PidTaken, RemoteSyscallFailed, RestoreError
from .memory import PageSource
from .remote import Stub, StubThread

log = logging.getLogger(__name__)


@dataclass
class RestoreTiming:
    total_ms: float
    memory_ms: float
    bytes_written: int


@dataclass
class RestoredTree:
    """`root`: the root's PID as incr sees it; `init`: with a new PID namespace, its PID 1
    (incr's child, which ends with the root's status), else 0 (the root is incr's child)."""

    root: int
    init: int
    timing: RestoreTiming


ZOMBIE_GRACE = 3.0      # seconds a zombie may take to be reaped before its PID counts as taken


def _held(pid: int) -> bool:
    """Whether `pid` is taken.  A zombie is given a moment: right after `checkpoint --kill` the job's
    processes are zombies until whoever adopted them reaps them."""
    deadline = time.monotonic() + ZOMBIE_GRACE
    while proc.exists(pid):
        try:
            if proc.stat(pid).state not in ("Z", "X") or time.monotonic() > deadline:
                return True
        except EngineError:
            return proc.exists(pid)
        time.sleep(0.02)
    return False


class ZombieHoldsPid(PidTaken):
    """A PID of the job is held by a zombie whose parent does not reap it (a job just killed with
    kill -9, started by a parent that never waits): ending the zombie cannot help, its parent can."""

    def __init__(self, pid: int, parent: int) -> None:
        if parent <= 1 or parent == os.getpid():
            remedy = "restore with --new-pidns (its parent will not reap it)"
        else:
            remedy = (f"make PID {parent} reap it (wait for it) or end PID {parent} (kill {parent}), then run restore "
                      "again; or restore with --new-pidns")
        RestoreError.__init__(self, f"cannot restore: {proc.describe(pid)} is a zombie of {proc.describe(parent)} "
                                    f"(its parent has not reaped it): {remedy}")
        self.pid = pid


def _taken(pid: int) -> PidTaken:
    """PidTaken naming the process holding `pid`; for a zombie, the parent that has not reaped it."""
    try:
        st = proc.stat(pid)
    except EngineError:
        return PidTaken(pid, proc.describe(pid))
    if st.state not in ("Z", "X"):
        return PidTaken(pid, proc.describe(pid))
    return ZombieHoldsPid(pid, st.ppid)


def preflight(tree: image_pb2.TreeImage, *, new_pidns: bool = False,
              externals: list[external.Choice] | None = None) -> None:
    """Refuses, creating nothing, what cannot be restored here.  With `new_pidns` the
    PIDs (and System V ids) are free by construction: the tree gets namespaces of its own.  Never
    while the checkpointed job itself runs, with or without `new_pidns` (outside.py).  `externals`:
    what the descriptors that led outside the job become (external.py)."""
    if tree.version > IMAGE_VERSION:
        raise RestoreError(f"cannot restore: the checkpoint's image is version {tree.version}, this incr reads "
                           f"up to {IMAGE_VERSION}; use a newer incr")
    if tree.arch and tree.arch != "x86_64":
        raise RestoreError(f"cannot restore: the checkpoint is for {tree.arch}, this is x86_64")
    outside.refuse_if_running(tree)       # before PidTaken: the job is not "another process"
    # Only the files it reads must not have changed at all; those it writes, by descriptor or through a
    # shared mapping, change as it runs on.
    written = files.written_by_job(tree.processes) | set(memory.writes_files(v for p in tree.processes
                                                                              for v in p.vmas))
    for p in tree.processes:
        if not new_pidns and _held(p.pid):
            raise _taken(p.pid)
        if p.zombie:
            continue
        for thread in p.threads:           # a thread's TID must be free too
            if not new_pidns and _held(thread.tid):
                raise _taken(thread.tid)
        mm.preflight(p.mm, {o.key for o in tree.shm})
        memory.preflight(p.vmas, written)
        files.preflight(list(p.files), written)
        fs.preflight(p.fs)
    shm.preflight(tree.shm, own_ipc_namespace=_own_ipc_namespace(tree, new_pidns),
                  job={p.pid for p in tree.processes})
    files.preflight(list(tree.in_flight), written)
    pty.preflight(tree.ptys)
    unixsock.preflight(tree, new_pidns=new_pidns)
    unixnamed.preflight(tree, new_pidns=new_pidns)
    inet.preflight(tree)
    netlink.preflight(tree)
    external.resolve(tree, externals or [])
    locks.preflight(tree)


def _own_ipc_namespace(tree: image_pb2.TreeImage, new_pidns: bool) -> bool:
    """With a new PID namespace, System V segments get a new IPC namespace too: the ids the job
    knows are likely still held by the job restored from (the reason for --new-pidns)."""
    return new_pidns and shm.uses_sysv(tree.shm)


def restore_tree(tree: image_pb2.TreeImage, sources: Callable[[int], PageSource], *,
                 shm_pages: shm.PageReader | None = None, leave_stopped: bool = False,
                 new_pidns: bool = False, detach: bool = False, names_journal: Path | None = None,
                 externals: list[external.Choice] | None = None) -> RestoredTree:
    """Rebuild a process tree, every process and thread with its original PID/TID (inside a new
    PID namespace if `new_pidns`); it is left running (or stopped, the root).  `sources(pid)`
    gives the pages of process pid.  `detach`: the caller will not wait for the root; a root with
    a parent-death signal is then made the child of the caller's subreaper (or init) at once, the
    parent it gets when the caller exits, so that the caller's exit does not signal it.
    `names_journal`: where the names given to files for a moment are noted (ghost.Names);
    `externals`: as for preflight().

    A: stubs, parents first: the root from incr, each child forked by its parent's stub (so the
       parent links, sessions and process groups come out right); zombies are forked and exit.
       The tree never joins incr's session: a root that led its session leads a new one; one whose
       session leader was outside the job gets a new session led by a helper of incr that exits
       (and leads its own group in it if it led one), so that it is still no session leader.
       Either way no controlling terminal: a --detach restore outlives the terminal that typed it.
       A session's orphans are forked by its leader, or a helper with the leader's PID, which
       then exits (sessions.py).
    B: each process's memory, mm fields, limits, cwd, and descriptors (shared descriptions and
       pipes created once, then handed over).
    C: each process's signals, timers, threads, credentials and registers; then all are let go.
    """
    t0 = time.perf_counter()
    procs = [p for p in tree.processes if not p.zombie]
    root = tree.processes[0]
    stubs: dict[int, Stub] = {}
    own_ipc = _own_ipc_namespace(tree, new_pidns)
    # Who else writes the job's files, decided before any restored process holds one.
    resume = outside.Resumption.of([f for p in procs for f in p.files] + list(tree.in_flight),
                                   ended_job=tree.ended_job)
    outside.warn_lost_terminals(tree)
    leads_session = root.sid == root.pid
    stub = Stub(root.pid, setsid=leads_session, setpgid=root.pgid == root.pid and not leads_session,
                own_session=not leads_session, new_pidns=new_pidns, new_ipcns=own_ipc,
                adopted=detach and not new_pidns and prctl.has_pdeath_signal(root))
    stubs[root.pid] = stub
    shared = shm.ShmInstaller(list(tree.shm), shm_pages or (lambda key: iter(())), ipc_of=stub.pid if own_ipc else 0,
                              job={p.pid for p in tree.processes}, names=ghost.Names(names_journal))
    acting = unixsock.Acting(stubs, stub, creds.own())
    descriptions: dict[int, image_pb2.OpenFile] = {}
    kept: dict[int, int] = {}
    provider = inflight.Provider(lambda fid: installer.provide(stub, descriptions[fid], kept[root.pid]))
    installer = files.Installer(list(tree.pipes), list(tree.socketpairs), shared, list(tree.fifos), resume=resume,
                                pair_maker=unixsock.PairMaker(acting, provider),
                                external_paths=external.resolve(tree, externals or []), ptys=list(tree.ptys),
                                inet_sockets=list(tree.inet_sockets), netlink_sockets=list(tree.netlink_sockets))
    named = unixnamed.Maker(tree, acting, kept, provider)
    held = inet.lock_outside(tree)
    descriptions.update((f.id, f) for f in (*tree.in_flight, *(f for p in procs for f in p.files)))
    carried = inflight.carried_ids(tree)
    try:
        everything = [(v.start, v.end) for p in procs for v in p.vmas]
        injection = stub.map_injection_area(everything)
        uts_made: dict[int, int] = {}                        # UTS namespace id -> the stub that made it
        namespaces.enter_uts(stub, _uts(root), 0, uts_made, stub.vpid, incr_visible=not new_pidns)
        _TreeOfStubs(tree, stubs, uts_made, new_pidns).make_all()
        _join_groups(tree, stubs)
        _check_family(tree, stubs)
        t_mem = time.perf_counter()
        written = 0
        for p in procs:                                      # B: memory of every process, then descriptors:
            s = stubs[p.pid]                                 # every page is read (and checked) before a file
            vmas = list(p.vmas)                              # the job writes is truncated back
            specials = memory.clear_stub(s, injection)
            spare = s.find_free(sum(m.size for m in specials) + pt.PAGE_SIZE, everything)
            memory.move_specials(s, specials, vmas, spare)
            room = files.kept_room(list(p.files), vmas) + (len(carried) + len(tree.ptys) if p.pid == root.pid else 0)
            rlimits.room_for_fds(s.pid, max((fd.fd for fd in p.fds), default=2) + 1 + room + files.KEEP_SLACK)
            kept[p.pid] = keep_at = files.keep_at(s.pid, (fd.fd for fd in p.fds), room)
            shared.make_tmpfiles(s, p.files, keep_at)
            written += memory.map_and_fill(s, vmas, sources(p.pid), shared, keep_at)
            mm.restore(s, p.mm, shared)
            rlimits.restore_but_open_files(s.pid, list(p.rlimits))
            vmflags.restore(s, p)                            # mlock() after the limits, as the job's own
            fs.restore(s, p.fs, shared.names)
        provider.hosts = {vpid: s.pid for vpid, s in stubs.items()}
        _make_terminals(tree, installer, stubs, kept[root.pid])
        named.make_all()                                     # every process's memory and cwd are in place
        installer.named = named.holders()
        for p in procs:
            s = stubs[p.pid]
            if not p.files_of:                               # a table shared with the parent: built there
                installer.restore(s, list(p.files), list(p.fds), kept[p.pid])
            rlimits.restore_open_files(s.pid, list(p.rlimits))     # (it may be below the table's numbers)
        installer.finish()
        named.finish()
        shared.finish()
        locks.restore(procs, stubs, stub)                    # every table built, nothing runs yet
        t_mem = time.perf_counter() - t_mem
        fault_point("restoring")
        for p in reversed(procs):                            # C: the rest, then registers; children first,
            children = [c for c in tree.processes[1:] if c.ppid == p.pid]   # their new stops settled in the parent
            _finish_process(stubs[p.pid], p, children)
        installer.restore_owners(_host_ids(stubs))           # every owner (a thread, say) exists now
        for p in reversed(procs):                            # children first: parents are still stopped
            # A stopped process is in its stop already (jobctl.restore)
            _let_go(stubs[p.pid], p, stopped=leave_stopped and p.pid == root.pid and not p.stopped)
        if held and not netlock.drop(held):
            log.warning("the network lock on the ports of the job's connections leading out of it stays: "
                        "nft delete table inet %s", held)
    except BaseException:
        for s in reversed(stubs.values()):                  # the root last: it may end the namespace
            s.kill()
        installer.abandon()
        if not own_ipc:                                     # (a namespace of its own ended with it)
            shared.abandon()
        raise
    timing = RestoreTiming(total_ms=(time.perf_counter() - t0) * 1e3, memory_ms=t_mem * 1e3, bytes_written=written)
    return RestoredTree(root=stub.pid, init=stub.init, timing=timing)


class _TreeOfStubs:
    """Phase A: a stub for every process, each forked by its parent's, parents first, but a
    session's orphans, forked in it by its leader or a helper (sessions.py); zombies are made
    and end."""

    def __init__(self, tree: image_pb2.TreeImage, stubs: dict[int, Stub], uts_made: dict[int, int],
                 new_pidns: bool) -> None:
        self.tree, self.stubs, self.uts_made, self.new_pidns = tree, stubs, uts_made, new_pidns
        self.by_pid = {p.pid: p for p in tree.processes}
        self.orphans = sessions.orphans(tree.processes)
        self.orphaned = {o.pid for members in self.orphans.values() for o in members}
        self.made: set[int] = set()

    def make_all(self) -> None:
        for p in self.tree.processes[1:]:
            if p.pid in self.made:
                continue
            if p.pid not in self.orphaned:
                self._make(p, self.stubs[p.ppid])
            elif (leader := self.by_pid.get(p.sid)) is not None:
                self._make(leader, self.stubs[leader.ppid])
            else:
                self._make_orphans_by_helper(p.sid, self.stubs[p.ppid], self.by_pid[p.ppid])

    def _make(self, p: image_pb2.ProcessImage, forker: Stub) -> None:
        child = forker.fork_child(p.pid, sharing.clone_flags(p))
        self.made.add(p.pid)
        if p.sid == p.pid:
            child.call("setsid")
            if p.pid in self.orphans:                   # forked in its session before it may end
                _subreaper(forker, self.by_pid[p.ppid])
                for orphan in self.orphans[p.pid]:
                    self._make(orphan, child)
        elif p.zombie and p.pgid == p.pid:
            child.call("setpgid", 0, 0)                 # members may join it till it is reaped
        if p.zombie:
            task.set_name(child, p.comm)                 # what ps shows of a zombie
            zombies.restore(child, self.stubs[p.ppid], p.exit_status)
            return
        self.stubs[p.pid] = child
        parent_uts = _uts(self.by_pid[p.ppid])
        namespaces.enter_uts(child, _uts(p), parent_uts.id if parent_uts else 0, self.uts_made, child.vpid,
                             incr_visible=not self.new_pidns)

    def _make_orphans_by_helper(self, sid: int, parent: Stub, image: image_pb2.ProcessImage) -> None:
        """The orphans of session `sid`, whose leader is gone, forked by a helper with its PID that
        makes the session and exits; `parent`, their subreaper, reaps it."""
        helper = _subreaper(parent, image).fork_child(sid)
        helper.call("setsid")
        for p in self.orphans[sid]:
            self._make(p, helper)
        _end_helper(helper, parent)


def _join_groups(tree: image_pb2.TreeImage, stubs: dict[int, Stub]) -> None:
    """Each process into its process group, leaders first: one whose leader is gone made by a helper."""
    by_pid = {p.pid: p for p in tree.processes}
    helpers = _group_helpers(tree, stubs)
    for p in sorted((p for p in tree.processes[1:] if not p.zombie), key=lambda p: p.pgid != p.pid):
        if p.sid != p.pid and proc.ns_ids(stubs[p.pid].pid)[1] != p.pgid and (
                p.pgid in by_pid or p.pgid in helpers):
            with contextlib.suppress(RemoteSyscallFailed):   # (in another session: _check_family says so)
                stubs[p.pid].call("setpgid", 0, p.pgid)
    for helper, forker in helpers.values():
        _end_helper(helper, forker)


def _group_helpers(tree: image_pb2.TreeImage, stubs: dict[int, Stub]) -> dict[int, tuple[Stub, Stub]]:
    """For each process group whose leader is gone, a helper with its PID leading it, forked by the
    stub of one of its members (so in their session): group -> (helper, that member's stub)."""
    helpers = {}
    for group, members in sessions.gone_groups(tree.processes).items():
        forker = stubs[members[0].pid]
        helper = forker.fork_child(group)
        helper.call("setpgid", 0, 0)
        helpers[group] = (helper, forker)
    return helpers


def _check_family(tree: image_pb2.TreeImage, stubs: dict[int, Stub]) -> None:
    """Every process with its parent, session and group as the image has them, before anything of
    the job is made (a difference would be a wrong restore: it stops here).  The root's session
    and group, when outside the job, are the ones this restore gave it, and so are its children's."""
    root = tree.processes[0]
    _, root_pgid, root_sid = proc.ns_ids(stubs[root.pid].pid)
    given = {"session": {root.sid: root_sid}, "group": {root.pgid: root_pgid}}
    for p in tree.processes[1:]:
        if p.zombie:
            continue
        s = stubs[p.pid]
        _, pgid, sid = proc.ns_ids(s.pid)
        for what, want, got in (("session", p.sid, sid), ("group", p.pgid, pgid)):
            want = given[what].get(want, want)
            if got != want:
                raise RestoreError(f"cannot restore PID {p.pid}: it came back in {what} {got}, not {want} (a "
                                   "failure of incr's; the checkpoint is unharmed)")
        if proc.stat(s.pid).ppid != stubs[p.ppid].pid:
            raise RestoreError(f"cannot restore PID {p.pid}: it came back as a child of another process than PID "
                               f"{p.ppid} (a failure of incr's; the checkpoint is unharmed)")


def _subreaper(stub: Stub, p: image_pb2.ProcessImage) -> Stub:
    """`stub` a child subreaper already (as `p` is: prctl.restore sets it again), so that the orphans a
    session's leader or helper leaves on exiting come to it."""
    if p.child_subreaper:
        stub.call("prctl", prctl.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    return stub


def _end_helper(helper: Stub, parent: Stub) -> None:
    """A helper of the restore's gone, reaped by `parent`, its SIGCHLD there discarded."""
    helper.exit_as(0)
    parent.call("wait4", helper.vpid, 0, jobctl.WALL, 0)
    parent.discard_pending(signal.SIGCHLD)


def _uts(p: image_pb2.ProcessImage) -> image_pb2.UtsNamespace | None:
    return p.uts if p.HasField("uts") else None


def _make_terminals(tree: image_pb2.TreeImage, installer: files.Installer, stubs: dict[int, Stub],
                    keep_at: int) -> None:
    """The job's pseudo-terminals, before any descriptor table (their slaves open by path): each
    master kept in the root's stub, each the controlling terminal of its session again (pty.py)."""
    root = stubs[tree.root_pid]
    masters = {f.pty: f for p in tree.processes for f in p.files if f.kind == image_pb2.OpenFile.PTY_MASTER}
    for p in tree.ptys:
        installer.pty_masters[p.index] = kept = installer.provide(root, masters[p.index], keep_at)
        pty.restore_waiting(root.pid, kept.fd, p)
        if p.session:
            leader = stubs.get(p.session)
            if leader is None:
                raise RestoreError(f"cannot restore /dev/pts/{p.index} as the controlling terminal of session "
                                   f"{p.session}: its leader is not restored")
            pty.make_controlling(leader, p)


def _host_ids(stubs: dict[int, Stub]) -> dict[int, int]:
    """Every PID and TID of the restored job as the job sees it -> as incr sees it."""
    ids = {vpid: s.pid for vpid, s in stubs.items()}
    ids.update((t.tracee.vtid, tid) for s in stubs.values() for tid, t in s.threads.items())
    return ids


def _let_go(stub: Stub, p: image_pb2.ProcessImage, *, stopped: bool) -> None:
    """Detach every thread, with the SIGSTOPs pending in the image queued.

    A stopped process's leader, still traced, starts its group-stop first and traps in it:
    then every other thread has the stop pending, joins it as it is let go before running
    any instruction, and a SIGSTOP queued now stays pending, as it was (a thread let go
    before the group-stop began would dequeue it to start one)."""
    host_tids = {stub.vpid: stub.pid, **{t.tracee.vtid: tid for tid, t in stub.threads.items()}}
    if stopped:
        pt.cont(stub.pid, signal.SIGSTOP)
        st = pt.wait(stub.pid)
        if not st.stopped:
            raise RestoreError(f"cannot restore PID {stub.vpid} stopped: it {st.describe()}")
    signals.queue_stops(stub.pid, host_tids, p)
    for tid in stub.threads:
        pt.detach(tid)
    pt.detach(stub.pid)


def _finish_process(stub: Stub, p: image_pb2.ProcessImage, children: list[image_pb2.ProcessImage]) -> None:
    """Signals, timers, threads, credentials, and finally every thread's registers.  `children`: its
    children in the tree, finished already."""
    jobctl.settle_reports(stub, children)             # before its own pending signals come back
    signals.restore_sigactions(stub, list(p.sigactions))
    timers.restore(stub, list(p.itimers))
    task.restore(stub, p)
    if p.creds.HasField("audit"):
        audit.restore(stub, p.creds.audit)              # before the threads: they inherit it
    fs.restore_root(stub, p.fs)                         # after the last path the stub opens itself
    prctl.restore(stub, p)
    # Threads while the stub is still root: clone3(set_tid) needs CAP_SYS_ADMIN.
    main, *others = p.threads
    targets: list[Stub | StubThread] = [stub]
    targets.extend(stub.clone_thread(t.tid, t.clear_child_tid) for t in others)
    timers.restore_posix(stub, list(p.posix_timers))   # after the threads: SIGEV_THREAD_ID names one
    signals.restore_shared_pending(stub, list(p.shared_pending))
    for target, thread in zip(targets, p.threads, strict=True):
        signals.restore_thread_pending(stub, thread.tid, list(thread.pending))
        cpu.restore_thread_state(target, thread)
        task.restore_thread(target, target.tracee.tid, thread)
        hardening.restore_thread(target, thread)
        # Each thread its own (older images: the process's); capabilities go with them.
        creds.restore_thread(target, target.tracee.tid, thread.creds if thread.HasField("creds") else p.creds)
    prctl.restore_after_creds(targets, p)       # what a change of ids resets
    jobctl.restore(stub, p)                     # after every injection into the other threads: they stop
    # The other threads leave the injection area for good, then the main thread unmaps it,
    # its very last injected call.
    for target, thread in reversed(list(zip(targets[1:], others, strict=True))):
        cpu.set_final_state(target.tracee.tid, thread)
    hardening.restore_process(stub, p)                  # MDWE: nothing gains PROT_EXEC after it
    seccomp.restore(stub, list(p.seccomp), threaded=len(p.threads) > 1)     # then only the munmap below
    try:
        stub.drop_injection_area()
    except EngineError as exc:
        raise seccomp.check_unmapped(stub, list(p.seccomp), exc) from None
    cpu.set_final_state(stub.pid, main)
    # Last, from outside: a real-time thread stopped under ptrace cannot starve incr.
    for target, thread in zip(targets, p.threads, strict=True):
        if thread.HasField("sched"):
            sched.restore_thread(target.tracee.tid, thread)
