"""incr restore (--latest | --id ID | --at T) [--detach] [--leave-stopped] [--new-pidns]"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from incr import api
from incr.scheduler.supervise import wait_for_job

HELP = """\
Restore a checkpoint: the process comes back with its original PID, memory,
open files and signal state, and continues from the checkpointed instant.

Which checkpoint: --latest (the default), --id ID (a unique prefix is
enough), or --at T: the newest checkpoint at or before T, where T is
ISO-8601 (2026-11-27T03:10; local time unless it carries an offset or Z),
Unix seconds, or an age such as 5m or 2h (that long ago).

Attached (default): incr waits for the job and exits with its status
(128+N if signal N killed it), passing SIGTERM, SIGHUP, SIGUSR1 and SIGUSR2
on to it.  --detach prints the job's PID and returns at once.

Standard input/output/error: files the job had open there are reopened at
their offsets; a terminal or a pipe from the shell that launched the job
cannot come back, so the restored job gets this command's own stdin, stdout
and stderr instead.  Files the job was writing are truncated back to their
size at checkpoint time, so that its output ends as an uninterrupted run's
would.  The restore refuses, changing nothing, when a PID or a System V
segment id is taken (naming the process that holds it), or when the
executable, a mapped file or an input file changed since the checkpoint.

--new-pidns: restore into a fresh PID namespace, where the job's PIDs are free
even if other processes hold them here; inside, the job sees its original
PIDs.  The namespace's PID 1 is a small init from incr: the job's parent,
ending with the job's root (and so ending every process left in the
namespace, as a container would).  incr prints the root's PID as seen from
outside; signal it there.  A job with System V shared memory also gets an
IPC namespace of its own, so that its segment ids are free too.  /proc is
still the host's, so the job reads host PIDs under /proc.  A job restored
this way cannot be checkpointed again yet."""


def register(sub: Any) -> None:
    p = sub.add_parser("restore", help="restore a checkpoint with its original PID", description=HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    which = p.add_mutually_exclusive_group()
    which.add_argument("--latest", action="store_true", help="the newest checkpoint (default)")
    which.add_argument("--id", metavar="ID", help="checkpoint id or unique prefix")
    which.add_argument("--at", metavar="T", help="newest checkpoint at or before time T")
    p.add_argument("--detach", action="store_true", help="print the PID and return instead of waiting")
    p.add_argument("--new-pidns", action="store_true",
                   help="restore inside a new PID namespace, so that PIDs taken here do not matter")
    p.add_argument("--leave-stopped", action="store_true",
                   help="leave the restored process stopped (SIGSTOP), e.g. to attach a debugger; implies --detach")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    job = api.restore(args.store, at=args.at, id=args.id, leave_stopped=args.leave_stopped,
                      new_pidns=args.new_pidns)

    def announce() -> None:
        where = f" (PID {job.vpid} in a new PID namespace)" if job.init else ""
        print(f"incr: restored PID {job.pid}{where} from {job.why} in {job.timing.total_ms:.1f} ms",
              file=sys.stderr, flush=True)

    if args.detach or args.leave_stopped:
        announce()
        print(job.pid, flush=True)
        return 0
    return wait_for_job(job.pid, announce, child=job.init)
