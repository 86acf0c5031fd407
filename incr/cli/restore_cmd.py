"""incr restore (--latest | --id ID | --at T) [--fallback] [--detach] [--leave-stopped] [--new-pidns] [--stdio …]
[--every D [--keep-last N] …]"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from incr import api, restoring
from incr.cli import run_cmd
from incr.cli.checkpoint_cmd import add_tracker_option
from incr.cli.progress import ProgressLine
from incr.errors import UsageError
from incr.scheduler.supervise import wait_for_job
from incr.scheduler.supervisor import Job, Settings, Supervisor

HELP = """\
Restore a checkpoint: the process comes back with its original PID, memory,
open files and signal state, and continues from the checkpointed instant.

Which checkpoint: --latest (the default), --id ID (a unique prefix is
enough), or --at T: the newest checkpoint at or before T, where T is
ISO-8601 (2026-11-27T03:10; local time unless it carries an offset or Z),
Unix seconds, or an age such as 5m or 2h (that long ago).

Damage never becomes wrong memory: every page is checked as it is read
(against its digest, and the frame it comes from against the pack's own
record), all of them before any file of the job is touched.  A damaged
checkpoint (a flipped bit, a lost pack, a truncated manifest or page map)
is refused in one line naming the damage, and nothing is restored.
--fallback then walks back to the newest checkpoint before it that restores
intact (SCR's rule) and says which one it took.  A wrong index is rebuilt
from the packs and the read retried, with a warning.

Attached (default): incr waits for the job and exits with its status
(128+N if signal N killed it), passing SIGTERM, SIGHUP, SIGUSR1 and SIGUSR2
on to it.  --detach prints the job's PID and returns at once; the job then
belongs to the nearest subreaper above this command (or init).  A parent-death
signal (PR_SET_PDEATHSIG) of the job's root fires when that parent ends: when
this command ends if attached, never because a detached restore returns.

Standard input/output/error: files the job alone had open there are reopened
at their offsets.  A terminal or a pipe from the shell that launched the job
cannot come back, and a file the launcher shares with the job (a batch
script's log, Slurm's slurm-%j.out: one open file shared by the script and
its job) belongs to the launcher: the restored job gets this command's own
stdin, stdout and stderr instead, so a batch script that restores its job
sees the job's lines continue in its own log, in order, and the old file is
left alone.  --stdio original reopens such a file instead, appending at its
end (O_APPEND; never truncated, never written inside what others wrote).

Files the job alone was writing are truncated back to their size at
checkpoint time, so that its output ends as an uninterrupted run's would.
A file others write too (open for writing by a process outside the job at
the checkpoint or now, or grown since a checkpoint that ended the job) is
never truncated: the job continues at its end, with a warning naming it.

The restored processes never join this command's session or terminal: a job
that led its session leads a new one, any other gets a new session of its
own (and its own process group if it led one), without a controlling
terminal; a --detach restore typed at a terminal survives the terminal.

The restore refuses, changing nothing, while the checkpointed job still runs
(its PIDs held by the very processes that were checkpointed, or its output
files open in a restored copy of it: end it first), when a PID or a System V
segment id is taken by another process (naming it), or when the executable,
a mapped file or an input file changed since the checkpoint.

--new-pidns: restore into a fresh PID namespace, where the job's PIDs are free
even if other processes hold them here (not while the job itself runs); inside, the job sees its original
PIDs.  The namespace's PID 1 is a small init from incr: the job's parent,
ending with the job's root (and so ending every process left in the
namespace, as a container would).  incr prints the root's PID as seen from
outside; signal it there.  A job with System V shared memory also gets an
IPC namespace of its own, so that its segment ids are free too.  /proc is
still the host's, so the job reads host PIDs under /proc.  A job restored
this way cannot be checkpointed again yet.

--every D (and the other options of `incr run`: --keep-last, --keep-within,
--log, --mtbf, --final-deadline, --tracker): the restored job is supervised
again, as `incr run` does, into the same store: its history continues, the
next checkpoint's parent is the one restored (restoring an older one starts a
branch there; `incr list --json` shows each checkpoint's parent)."""


def register(sub: Any) -> None:
    p = sub.add_parser("restore", help="restore a checkpoint with its original PID", description=HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    which = p.add_mutually_exclusive_group()
    which.add_argument("--latest", action="store_true", help="the newest checkpoint (default)")
    which.add_argument("--id", metavar="ID", help="checkpoint id or unique prefix")
    which.add_argument("--at", metavar="T", help="newest checkpoint at or before time T")
    p.add_argument("--fallback", action="store_true",
                   help="if the checkpoint chosen is damaged, take the newest intact one before it (says which)")
    p.add_argument("--detach", action="store_true", help="print the PID and return instead of waiting")
    p.add_argument("--external", metavar="N:PATH|N:null", action="append", default=[],
                   help="what descriptor N becomes, which led outside the job at the checkpoint (`incr "
                        "checkpoint --external`): PATH opened with its access mode and flags, or /dev/null "
                        "(null); PID/N:... names the process too; once per such descriptor")
    p.add_argument("--new-pidns", action="store_true",
                   help="restore inside a new PID namespace, so that PIDs taken here do not matter")
    p.add_argument("--stdio", choices=restoring.STDIO_CHOICES, default="inherit",
                   help="stdio files shared with the launcher: this command's own stdio (inherit, default), "
                        "or the original files, appended to (original)")
    p.add_argument("--leave-stopped", action="store_true",
                   help="leave the restored process stopped (SIGSTOP), e.g. to attach a debugger; implies --detach")
    run_cmd.add_supervision_options(p, optional_every=True)
    add_tracker_option(p)
    p.set_defaults(func=run)


def _supervision(args: argparse.Namespace) -> Settings | None:
    """With --every: the settings to supervise the restored job with, checked before the restore."""
    if args.every is None:
        if args.mtbf or args.keep_last or args.keep_within or args.log or args.no_predump:
            raise UsageError("--mtbf, --keep-last, --keep-within, --log and --no-predump go with --every")
        return None
    if args.detach or args.leave_stopped:
        raise UsageError("--every supervises the restored job: it cannot go with --detach or --leave-stopped")
    if args.new_pidns:
        raise UsageError("--every: a job restored into a new PID namespace cannot be checkpointed again yet")
    return run_cmd.settings_from(args)


def run(args: argparse.Namespace) -> int:
    supervision = _supervision(args)
    progress = ProgressLine()                # pages written, on a terminal only
    try:
        job = api.restore(args.store, at=args.at, id=args.id, leave_stopped=args.leave_stopped,
                          new_pidns=args.new_pidns, stdio=args.stdio, detach=args.detach or args.leave_stopped,
                          fallback=args.fallback, progress=progress if progress.enabled else None,
                          external=args.external)
    finally:
        progress.close()

    def announce() -> None:
        where = f" (PID {job.vpid} in a new PID namespace)" if job.init else ""
        print(f"incr: restored PID {job.pid}{where} from {job.why} in {job.timing.total_ms:.1f} ms",
              file=sys.stderr, flush=True)

    if args.detach or args.leave_stopped:
        announce()
        print(job.pid, flush=True)
        return 0
    if supervision is not None:
        announce()
        return Supervisor(Job(job.pid, child=True), supervision).run()
    return wait_for_job(job.pid, announce, child=job.init)
