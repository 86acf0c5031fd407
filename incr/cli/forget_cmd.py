"""incr forget [ID ...] [--keep-last N] [--keep-within D] [--keep-hourly N] [--keep-daily N] [--dry-run] [--prune]"""

from __future__ import annotations

import argparse
from typing import Any

from incr import maintenance
from incr.cli import prune_cmd
from incr.cli.output import print_json
from incr.cli.progress import ProgressLine
from incr.errors import UsageError
from incr.pagestore import gc
from incr.timespec import local_short, parse_duration

HELP = """\
Remove checkpoints from the store: the ones named (ID ..., unique prefixes),
or every one no --keep rule keeps.  Rules apply to each job (the checkpoints
of one root PID) on its own, and a checkpoint any rule keeps is kept:

  --keep-last N      the newest N checkpoints
  --keep-within D    those taken within D (30m, 12h, 7d) before the newest one
  --keep-hourly N    the newest checkpoint of each of the last N hours that have one
  --keep-daily N     the newest checkpoint of each of the last N days that have one

Never removed: the newest checkpoint of each job, and pre-dumps newer than
it (the next checkpoint builds on them).  Older pre-dumps go with any rule:
they cannot be restored, and the checkpoints after them hold their pages.

Forget removes only the checkpoints' manifests, atomically (killed at any
instant, it has removed all of them or none, as seen by any reader); the
pages only they used stay until `incr prune` (or --prune here) frees them.
--dry-run shows what would be removed (and with --prune, freed) and changes
nothing."""


def register(sub: Any) -> None:
    p = sub.add_parser("forget", help="remove checkpoints by id or by --keep rules (then --prune)",
                       description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ids", metavar="ID", nargs="*", help="checkpoints to remove")
    p.add_argument("--keep-last", metavar="N", type=_count, default=0)
    p.add_argument("--keep-within", metavar="D", default="")
    p.add_argument("--keep-hourly", metavar="N", type=_count, default=0)
    p.add_argument("--keep-daily", metavar="N", type=_count, default=0)
    p.add_argument("--dry-run", action="store_true", help="say what would be removed, change nothing")
    p.add_argument("--prune", action="store_true", help="then free the space nothing references any more")
    p.add_argument("--no-wait", action="store_true", help="fail at once if another command writes the store")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def _count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count of 1 or more")
    return n


def policy_of(args: argparse.Namespace) -> gc.Policy:
    within = parse_duration(args.keep_within) if args.keep_within else 0.0
    return gc.Policy(last=args.keep_last, within=within, hourly=args.keep_hourly, daily=args.keep_daily)


def run(args: argparse.Namespace) -> int:
    policy = policy_of(args)
    if args.ids and not policy.empty():
        raise UsageError("give checkpoint IDs or --keep rules, not both")
    if not args.ids and policy.empty():
        raise UsageError("say what to remove: checkpoint IDs, or --keep-last/--keep-within/--keep-hourly/"
                         "--keep-daily for what to keep")
    bar = ProgressLine()
    try:
        result = maintenance.forget(args.store, policy=None if args.ids else policy, ids=args.ids,
                                    dry_run=args.dry_run, prune=args.prune, wait=not args.no_wait, progress=bar)
    finally:
        bar.close()
    if args.json:
        print_json({
            "dry_run": args.dry_run,
            "removed": [{"id": e.id, "kind": e.kind, "epoch": e.epoch, "job": e.group} for e in result.plan.remove],
            "kept": [{"id": e.id, "kind": e.kind, "epoch": e.epoch, "job": e.group,
                      "reason": result.plan.reasons.get(e.id, "")} for e in result.plan.keep],
            "prune": prune_cmd.as_json(result.prune) if result.prune else None,
        })
        return 0
    verb = "would remove" if args.dry_run else "removed"
    for e in result.plan.remove:
        when = f"of {local_short(e.epoch)} (PID {e.group})" if e.epoch else "(its manifest is unreadable)"
        print(f"{verb} {e.kind} {e.id[:12]} {when}")
    for e in result.plan.keep if not args.ids else ():
        print(f"kept {e.kind} {e.id[:12]} of {local_short(e.epoch)} (PID {e.group}): {result.plan.reasons[e.id]}")
    print(f"{verb} {len(result.plan.remove)} checkpoints, kept {len(result.plan.keep)}")
    if result.prune is not None:
        print(prune_cmd.summary(result.prune))
    elif result.plan.remove and not args.dry_run:
        print("their pages stay until `incr prune`")
    return 0
