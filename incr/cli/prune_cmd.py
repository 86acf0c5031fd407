"""incr prune [--dry-run] [--no-wait] [--json]"""

from __future__ import annotations

import argparse
from typing import Any

from incr import maintenance
from incr.cli.output import print_json, size
from incr.cli.progress import ProgressLine
from incr.pagestore import gc

HELP = f"""\
Free the space of pages and page maps no checkpoint references any more
(after `incr forget`, or left by interrupted commands).  Every page a
remaining checkpoint needs is kept.  A pack nothing references is deleted;
a pack at least {gc.MAX_UNUSED:.0%} unreferenced is rewritten: its live
pages are copied into a new pack (checked on the way: a pack whose live
pages are damaged is left alone and reported) before the old one is deleted.

Safe to kill at any instant: the store then verifies, and holds either the
old packs or the new ones.  Takes the store's write lock (a checkpoint
waits meanwhile; --no-wait fails at once if one is running).  A damaged
manifest stops it before anything is deleted: what that checkpoint needs
cannot be known (`incr verify`, then `incr forget` it)."""


def register(sub: Any) -> None:
    p = sub.add_parser("prune", help="free the space nothing references", description=HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dry-run", action="store_true", help="say what would be freed, change nothing")
    p.add_argument("--no-wait", action="store_true", help="fail at once if another command writes the store")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    bar = ProgressLine()
    try:
        report = maintenance.prune(args.store, dry_run=args.dry_run, wait=not args.no_wait, progress=bar)
    finally:
        bar.close()
    if args.json:
        print_json(as_json(report))
    else:
        print(summary(report))
    return 0


def summary(report: gc.PruneReport) -> str:
    verb = "would free" if report.dry_run else "freed"
    text = (f"{verb} {size(report.bytes_freed)} ({size(report.bytes_before)} -> {size(report.bytes_after)}): "
            f"{report.packs_deleted} packs deleted, {report.packs_rewritten} rewritten "
            f"({size(report.bytes_copied)} of live data copied)")
    if report.damaged:
        text += f"; {len(report.damaged)} damaged packs left alone (`incr verify --read-data`)"
    if report.unreadable:
        text += f"; {len(report.unreadable)} unreadable packs left alone"
    return text


def as_json(report: gc.PruneReport) -> dict[str, Any]:
    return {
        "dry_run": report.dry_run, "bytes_before": report.bytes_before, "bytes_after": report.bytes_after,
        "bytes_freed": report.bytes_freed, "packs_before": report.packs_before, "packs_after": report.packs_after,
        "packs_deleted": report.packs_deleted, "packs_rewritten": report.packs_rewritten,
        "packs_written": report.packs_written, "bytes_copied": report.bytes_copied,
        "damaged_packs": report.damaged, "unreadable_packs": report.unreadable,
    }
