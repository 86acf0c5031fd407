"""incr list [--json]"""

from __future__ import annotations

import argparse
from typing import Any

from incr import api, maintenance
from incr.cli.output import print_json, size
from incr.timespec import local_short

HELP = """\
List the store's checkpoints, oldest first.  --json prints an array of
objects with: id, time (ISO-8601 UTC), epoch, kind (checkpoint|predump),
parent, root_pid, comm, pages_total, pages_dirty (copied by this
checkpoint), pages_zero, pages_new (stored for the first time), bytes_stored
(new bytes this checkpoint added to the store), downtime_ms (time the job was
frozen), total_ms, tracker, rounds, intact (false: some page or page map it
needs is missing or unreadable, so it cannot be restored) and problems.

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
    print(f"{'ID':12}  {'TIME':19}  {'KIND':10}  {'PID':>7}  {'COMMAND':15}  {'PAGES':>9}  {'STORED':>10}  "
          f"{'DOWNTIME':>10}  STATE")
    for i in infos:
        s = i.stats
        state = "incomplete" if problems[i.id] else "ok"
        print(f"{i.id[:12]}  {local_short(i.epoch)}  {i.kind:10}  {i.root_pid:>7}  {i.comm[:15]:15}  "
              f"{s.pages_total:>9}  {size(s.bytes_stored):>10}  {s.downtime_ms:>7.1f} ms  {state}")
    bad = sum(1 for i in infos if problems[i.id])
    if bad:
        print(f"{bad} incomplete: they cannot be restored (`incr verify` tells why)")
    return 0
