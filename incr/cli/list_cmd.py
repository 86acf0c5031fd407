"""incr list [--json]"""

from __future__ import annotations

import argparse
from typing import Any

from incr import api, maintenance
from incr.cli.output import count, duration_ms, print_json, size, table
from incr.timespec import local_short

HELP = """\
List the store's checkpoints, oldest first.  --json prints an array of
objects with: id, time (ISO-8601 UTC), epoch, kind (checkpoint|predump),
parent, root_pid, comm, pages_total, pages_dirty (copied by this
checkpoint), pages_zero, pages_new (stored for the first time), bytes_stored
(new bytes this checkpoint added to the store), downtime_ms (the longest time
the job was stopped: the freeze, or a tracker's own brief stop when longer, as
arming one on a first checkpoint), total_ms, tracker, rounds, precopy_rewritten (pages a pre-copy round
left to the freeze, written again before they were stored), intact (false: some page or page map it
needs is missing or unreadable, so it cannot be restored) and problems.

The table: ID (its first 12 hex digits: a unique prefix is enough wherever
an id is asked for), TIME (local), KIND, PID and COMMAND of the job's root,
DIRTY PAGES (pages this checkpoint copied: every page for a full one), ADDED
(bytes it added to the store, compressed), DOWNTIME (how long the job was
frozen; a pre-dump never freezes it) and STATE.

A checkpoint that is not intact is marked "incomplete" in the STATE column:
a page or page map it needs is in no pack, or in a pack that is missing
(`incr verify` checks more; `incr verify --read-data` reads every byte)."""


def register(sub: Any) -> None:
    p = sub.add_parser("list", help="list checkpoints", description=HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    infos = api.Store(args.store).checkpoints()
    missing = maintenance.incomplete(args.store)
    problems = {i.id: [missing[i.id]] if missing.get(i.id) else [] for i in infos}
    if args.json:
        print_json([{**i.summary(), "intact": not problems[i.id], "problems": problems[i.id]} for i in infos])
        return 0
    if not infos:
        print(f"no checkpoints in {args.store}")
        return 0
    header = ("ID", "TIME", "KIND", "PID", "COMMAND", "DIRTY PAGES", "ADDED", "DOWNTIME", "STATE")
    rows = [(i.id[:12], local_short(i.epoch), i.kind, str(i.root_pid), i.comm[:15], count(i.stats.pages_dirty),
             size(i.stats.bytes_stored), duration_ms(i.stats.downtime_ms) if i.kind == "checkpoint" else "-",
             "incomplete" if problems[i.id] else "ok")
            for i in infos]
    for line in table(header, rows, right=(3, 5, 6, 7)):
        print(line)
    bad = sum(1 for i in infos if problems[i.id])
    if bad:
        print(f"{bad} incomplete: they cannot be restored (`incr verify` tells why)")
    return 0
