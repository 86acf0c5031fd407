"""incr run [--every D] … -- CMD ARGS… ; incr attach PID [--every D] … ; --status for both."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from incr.cli.argtypes import positive_int, positive_seconds
from incr.cli.checkpoint_cmd import add_external_option, add_ghost_limit_option, add_tracker_option, parse_pid
from incr.cli.output import print_json
from incr.errors import UsageError
from incr.pagestore import gc
from incr.scheduler import control
from incr.scheduler.policy import Interval, parse_interval
from incr.scheduler.supervisor import DEFAULT_FINAL_DEADLINE, CommandFailed, Job, Settings, Supervisor, attach_checks
from incr.timespec import local_short

SUPERVISION_HELP = """\
Checkpoints: every D (30s, 10m, 1h30m), the next one D after the end of the
previous one (a checkpoint that runs long is never queued up behind); one at a
time.  --every auto --mtbf D: Young/Daly's interval sqrt(2 x MTBF x C), C the
measured cost of the last checkpoint, re-estimated after each one and logged.
Between checkpoints, pre-dump rounds (at D/3 and 2D/3) copy what the job
wrote meanwhile, so that the checkpoint's freeze copies less; they stop when
they do not pay (a job that rewrites the same pages all the time) and are
tried again later.  One line per checkpoint (id, downtime, bytes added, total
time) to stderr, or to --log FILE.

Retention after each checkpoint: --keep-last N and/or --keep-within D keep
those of the job's checkpoints (the newest is never removed), forget the
rest and prune the store.

Signals to the supervisor: SIGTERM: a final checkpoint (waited for up to
--final-deadline seconds, 25 by default), then the job gets SIGTERM and incr
exits with its status.  SIGUSR1 (`sbatch --signal=B:USR1@60`, Slurm's warning
before the time limit): a final checkpoint now; the job runs on, still
supervised, and the schedule restarts from that checkpoint (incr does not
exit: that would end a batch script and, in Slurm, the job with it).  A
SIGTERM or SIGUSR1 queued for the job too (Slurm signals every process) is
left out of the final checkpoint, the live job still getting it: a restore
continues the job instead of bringing the stop request back.
SIGINT/SIGQUIT: a job in incr's process group gets Ctrl-C from the terminal
as any foreground job does, and incr exits with its status; a job outside it
is sent the signal.  SIGHUP and SIGUSR2 are passed on to the job.

While supervised, `incr checkpoint PID` asks the supervisor for a checkpoint
(through a socket in the runtime directory, owner-only) instead of competing
with it.  If the supervisor is killed, even mid-checkpoint, the job runs on
unharmed and every committed checkpoint stays in the store."""

RUN_HELP = f"""\
Start CMD as a child of incr and checkpoint it periodically until it ends;
exit with its status (128+N if signal N ended it).  CMD keeps incr's stdin,
stdout, stderr, environment and working directory; no other descriptor of
incr's is passed on.

{SUPERVISION_HELP}

--status: print what each supervisor running here is doing (job PID,
checkpoints taken, the last one, the next one due)."""

ATTACH_HELP = f"""\
Supervise a process tree that is already running, as `incr run` does its
own, until its root ends.  incr is not its parent: it notices the end
(through a pidfd) but cannot have its exit status, which goes to the
parent; incr then exits 0.  SIGTERM ends the job after a final checkpoint;
Ctrl-C stops supervising and leaves the job running (exit 130).

{SUPERVISION_HELP}

--status PID: what the supervisor of PID is doing."""


def add_supervision_options(p: Any, *, optional_every: bool = False) -> None:
    """`optional_every`: supervision only with --every (restore)."""
    p.add_argument("--every", metavar="D",
                   help="checkpoint interval (30s, 10m, 1h), or auto with --mtbf" +
                        ("; supervises the restored job" if optional_every else "; default 10m"))
    p.add_argument("--mtbf", metavar="D", help="mean time between failures, for --every auto (e.g. 24h)")
    p.add_argument("--keep-last", metavar="N", type=_keep_last, help="keep the newest N checkpoints of the job")
    p.add_argument("--keep-within", metavar="D", help="keep the job's checkpoints of the last D before its newest")
    p.add_argument("--log", metavar="FILE", type=Path, help="checkpoint log lines go here (appended), not stderr")
    p.add_argument("--final-deadline", metavar="S", type=positive_seconds, default=DEFAULT_FINAL_DEADLINE,
                   help=f"on SIGTERM/SIGUSR1, wait this long for the final checkpoint "
                        f"(default {DEFAULT_FINAL_DEADLINE:g})")
    p.add_argument("--no-predump", action="store_true", help="no pre-dump rounds between checkpoints")
    add_ghost_limit_option(p)


def _keep_last(text: str) -> int:
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"{exc}: the newest checkpoint is always kept") from None


def settings_from(args: argparse.Namespace, default_every: str = "10m") -> Settings:
    """The supervision options, checked (UsageError, exit 2) before anything starts."""
    interval = Interval.parse(args.every or default_every, args.mtbf)
    within = parse_interval(args.keep_within, "--keep-within") if args.keep_within else 0.0
    if not args.store:
        raise UsageError("no store given: pass --store DIR or set INCR_STORE")
    return Settings(store=Path(args.store), interval=interval, keep=gc.Policy(last=args.keep_last or 0, within=within),
                    tracker=args.tracker, log_file=args.log, final_deadline=args.final_deadline,
                    predump=not args.no_predump, ghost_limit=args.ghost_limit,
                    external=getattr(args, "external", False) is True)


def register(sub: Any) -> None:
    p = sub.add_parser("run", help="start a command and checkpoint it periodically", description=RUN_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_supervision_options(p)
    add_tracker_option(p)
    add_external_option(p)
    p.add_argument("--status", action="store_true", help="what the supervisors running here are doing")
    p.add_argument("--json", action="store_true", help="--status as JSON")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD ARGS", help="the job to run")
    p.set_defaults(func=run, needs_store=False, takes_store=True)      # (not for --status)

    a = sub.add_parser("attach", help="checkpoint a running process periodically", description=ATTACH_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_supervision_options(a)
    add_tracker_option(a)
    add_external_option(a)
    a.add_argument("--status", action="store_true", help="what the supervisor of PID is doing")
    a.add_argument("--json", action="store_true", help="--status as JSON")
    a.add_argument("pid", metavar="PID", help="root of the process tree to supervise")
    a.set_defaults(func=attach, needs_store=False, takes_store=True)


def run(args: argparse.Namespace) -> int:
    command = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if args.status:
        if command:
            raise UsageError("--status takes no command")
        return print_status(control.live_supervisors(), args.json)
    if not command:
        raise UsageError("no command to run: incr run [--every D] -- CMD ARGS...")
    settings = settings_from(args)
    try:
        return Supervisor(lambda: Job.start(command), settings).run()
    except CommandFailed as exc:              # 127 / 126 as a shell says it, not 1
        print(f"incr run: error: {exc}", file=sys.stderr)
        return exc.exit_code


def attach(args: argparse.Namespace) -> int:
    pid = parse_pid(args.pid)
    if args.status:
        if not control.supervised(pid):
            raise UsageError(f"PID {pid} has no supervisor")
        return print_status([pid], args.json)
    settings = settings_from(args)
    attach_checks(pid)
    return Supervisor(Job(pid, child=False), settings, attached=True).run()


def print_status(pids: list[int], as_json: bool) -> int:
    states = []
    for pid in pids:
        try:
            answer = control.request(pid, {"op": "status"}, timeout=10)
        except control.ControlError as exc:
            print(f"incr: PID {pid}: {exc}", file=sys.stderr)
            continue
        if answer is not None:
            states.append(answer["status"])
    if as_json:
        print_json(states)
        return 0
    if not states:
        print("no supervised job here", file=sys.stderr)
    for s in states:
        last = f"last {s['last_id'][:12]} at {local_short(s['last_epoch'])}" if s["last_id"] else "none yet"
        due = local_short(s["next_due"]) if s["next_due"] else "none (stopping)"
        print(f"PID {s['pid']}: supervised by incr PID {s['supervisor']} into {s['store']}, {s['interval_text']}; "
              f"{s['checkpoints']} checkpoints ({last}), {s['predumps']} pre-dumps (rounds {s['predump_rounds']}); "
              f"next due {due}" + (f"; last failure: {s['last_error']}" if s["failures"] else ""))
    return 0

