"""incr checkpoint PID [--kill]"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from incr import api
from incr.cli.output import count, duration_ms, print_json, size
from incr.cli.progress import ProgressLine
from incr.dirty import TRACKERS
from incr.errors import UsageError
from incr.scheduler import control

HELP = """\
Take one consistent checkpoint of a running process now.  Pages are copied
in rounds while the process runs; then it is frozen only while its state and
the pages changed since the last round are copied to memory, and runs on (or
is killed with --kill, once the checkpoint is safely committed).

Incremental: a dirty-page tracker left in the process by the previous
checkpoint or pre-dump into the same store tells which pages changed since;
only those are copied and only changed content is stored.  --tracker picks
it: uffd-wp (userfaultfd write-protection, Linux >= 6.7), soft-dirty
(kernels built with it), hash (no kernel help: copies every page while
frozen, stores only what changed), or auto (the best available; `incr
check` shows which and why; `incr list` records it per checkpoint).

Supported: the process and every process below it (PIDs, parents, groups,
sessions, zombies), all their threads, their memory (private, and shared
between them: MAP_SHARED anonymous, memfd, /dev/shm, System V), regular files and
directories, files open or mapped after they were deleted (unlink,
O_TMPFILE: their contents are stored, up to --ghost-limit),
/dev/null|zero|full|random|urandom, pipes and Unix socket pairs between them
with the data in flight, eventfd, signalfd, timerfd, epoll,
inotify, a terminal, pipe or socket from the launcher on stdin/stdout/stderr,
signal handlers and queued signals, interval and POSIX timers, limits, cwd,
umask and ids; with what a program reads back of each: VMA flags (VmFlags in
smaps: DONTFORK, WIPEONFORK, guard regions, hugepage advice, mlock, ...),
descriptor flags and owners (F_GETFL, F_SETOWN, F_SETSIG) on every
descriptor, shared fd tables, prctl state, capabilities, scheduling, the
signal that stopped a stopped process.  Anything that cannot come back
exactly so (raw or packet sockets, pipes leading out of the job, a
vfork()ed child, io_uring, seccomp strict mode, ...) makes the checkpoint fail with one
line naming the PID and what it holds; nothing is stored and the job runs on
untouched.  TCP and UDP sockets come back (TCP connections through TCP repair,
the job's ports locked while they are read); a TCP connection to a peer
outside the job is refused unless --tcp-established.  Pipes and sockets
leading out of the job (not its stdio: a make -j jobserver pipe, a pipe a CI
runner leaked) are refused so too, unless
--external records them as external: `incr restore --external N:PATH|null`
then says what each becomes.  The store is created if it does not exist (or
is an empty directory).  One writer at a time per store: if another incr command is
writing it, this one says so and waits (--no-wait: fails at once).

Killed at any instant (kill -9, OOM, a time limit), this command leaves the
job running as it was and the store as before; the next checkpoint of the
job is then a full one.  One incr command acts on a job at a time: a job
supervised by `incr run` or `incr attach` is checkpointed by its supervisor,
which this command asks (its own options then are the supervisor's).

Output: the new checkpoint's id on stdout, and one line on stderr: the id,
full or incremental, how long the job was frozen, the bytes it added to the
store, how long it took in all.  On a terminal a progress line shows the
pages being stored (a first checkpoint of a big job takes a while)."""


def register(sub: Any) -> None:
    p = sub.add_parser("checkpoint", help="take a consistent checkpoint of a process now", description=HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pid", metavar="PID", help="process to checkpoint")
    p.add_argument("--kill", action="store_true", help="kill the process once the checkpoint is committed")
    p.add_argument("--json", action="store_true", help="print the new checkpoint as JSON")
    add_tracker_option(p)
    add_no_wait_option(p)
    p.add_argument("--no-precopy", action="store_true",
                   help="copy everything changed while frozen, without pre-copy rounds (longer freeze)")
    p.add_argument("--copy-buffer", metavar="SIZE", type=parse_size,
                   help="memory for the pages copied while frozen, e.g. 512M or 4G (default: half of the "
                        "available memory); beyond it the rest is stored while still frozen (longer freeze)")
    add_ghost_limit_option(p)
    add_external_option(p)
    add_tcp_established_option(p)
    p.set_defaults(func=run)


def add_tcp_established_option(p: Any) -> None:
    p.add_argument("--tcp-established", action="store_true",
                   help="checkpoint TCP connections to peers outside the job (you say each peer will still be "
                        "there when the job is restored) instead of refusing; with --kill their ports stay locked "
                        "(no packet in or out: the peers only see a delay) until `incr restore` brings them back "
                        "(`incr check` lists such locks)")


def add_external_option(p: Any) -> None:
    p.add_argument("--external", action="store_true",
                   help="record pipes and sockets that lead outside the job (not its stdio: a make -j "
                        "jobserver pipe, a pipe a CI runner leaked) as external, with a warning, instead of "
                        "refusing the checkpoint; `incr restore --external N:PATH|null` then says what each becomes")


def add_ghost_limit_option(p: Any) -> None:
    p.add_argument("--ghost-limit", metavar="SIZE", type=parse_size, default=None,
                   help="largest deleted file the job holds or maps whose contents a checkpoint stores, e.g. "
                        f"4G (default: {api.DEFAULT_GHOST_LIMIT >> 20}M); it is read while the job is frozen, "
                        "and a larger one makes the checkpoint fail, naming it")


def _by_supervisor(pid: int, args: argparse.Namespace) -> api.CheckpointInfo | None:
    """A job supervised (incr run/attach) is checkpointed by its supervisor, asked through its control
    socket: two commands must not compete for the job.  None: it has no supervisor."""
    request: dict[str, object] = {"op": "checkpoint", "kill": args.kill, "store": str(args.store)}
    if args.ghost_limit is not None:
        request["ghost_limit"] = args.ghost_limit
    if args.external:
        request["external"] = True
    if args.tcp_established:
        request["tcp_established"] = True
    answer = control.request(pid, request)
    if answer is None:
        return None
    return api.Store(args.store).get(answer["checkpoint"]["id"])


def parse_size(text: str) -> int:
    units = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    t = text.strip().lower().removesuffix("ib").removesuffix("b")
    number, unit = (t[:-1], t[-1]) if t and t[-1] in units else (t, "")
    try:
        value = int(float(number) * units[unit])
    except ValueError:
        raise argparse.ArgumentTypeError(f"cannot read size {text!r}: use e.g. 512M, 4G") from None
    if value < 1 << 20:
        raise argparse.ArgumentTypeError(f"size {text!r} is below 1M")
    return value


def add_no_wait_option(p: Any) -> None:
    p.add_argument("--no-wait", action="store_true",
                   help="if another incr command is writing the store, fail at once (naming its PID) "
                        "instead of waiting for it")


def add_tracker_option(p: Any) -> None:
    p.add_argument("--tracker", choices=TRACKERS, default="auto",
                   help="dirty-page tracker (default: auto, the best this kernel offers)")


def parse_pid(text: str) -> int:
    try:
        pid = int(text)
    except ValueError:
        raise UsageError(f"PID must be a number, not {text!r}") from None
    if pid <= 0:
        raise UsageError(f"PID must be positive, not {pid}")
    return pid


def run(args: argparse.Namespace) -> int:
    pid = parse_pid(args.pid)
    progress = ProgressLine()
    try:
        info = _by_supervisor(pid, args) or api.checkpoint(
            pid, args.store, kill=args.kill, tracker=args.tracker, precopy=not args.no_precopy,
            copy_buffer=args.copy_buffer, wait=not args.no_wait, progress=progress if progress.enabled else None,
            ghost_limit=args.ghost_limit, external=args.external, tcp_established=args.tcp_established)
    finally:
        progress.close()
    if args.json:
        print_json(info.summary())
        return 0
    print(info.id, flush=True)
    print(summary_line(info) + (", process killed" if args.kill else ""), file=sys.stderr)
    return 0


def summary_line(info: api.CheckpointInfo) -> str:
    """One line per checkpoint, for people and logs: 'incr: checkpoint 1a2b3c4d5e6f of PID 42 (solver):
    incremental, frozen 6.2 ms, 3.1 MiB added, took 1.4 s (812 of 524.3k pages copied, uffd-wp, 2 rounds)'."""
    s = info.stats
    how = info.snapshot.labels.get("pass", "")
    return (f"incr: checkpoint {info.id[:12]} of PID {info.root_pid} ({info.comm}): "
            + (f"{how}, " if how else "")
            + f"frozen {duration_ms(s.downtime_ms)}, {size(s.bytes_stored)} added, took {duration_ms(s.total_ms)} "
            f"({count(s.pages_dirty)} of {count(s.pages_total)} pages copied, {s.tracker}, "
            f"{s.rounds} pre-copy round{'' if s.rounds == 1 else 's'})")
