"""incr predump PID [--tracker T]"""

from __future__ import annotations

import argparse
from typing import Any

from incr import api
from incr.cli.checkpoint_cmd import add_no_wait_option, add_tracker_option, parse_pid
from incr.cli.output import print_json, size

HELP = """\
One pre-dump round: copy the pages the process wrote since the last
checkpoint or pre-dump into the store while it keeps running (it is only
stopped for a moment if a tracker must be set up, or for soft-dirty).  A
pre-dump cannot be restored; it makes the next `incr checkpoint` of the same
process into the same store short, because only pages written after the
pre-dump remain to be copied while frozen.  The tracker stays in the process
between the two commands."""


def register(sub: Any) -> None:
    p = sub.add_parser("predump", help="copy changed pages while the process runs (not restorable)",
                       description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pid", metavar="PID", help="process to pre-dump")
    p.add_argument("--json", action="store_true", help="print the pre-dump as JSON")
    add_tracker_option(p)
    add_no_wait_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    info = api.predump_round(parse_pid(args.pid), args.store, tracker=args.tracker, wait=not args.no_wait)
    if args.json:
        print_json(info.summary())
    else:
        s = info.stats
        print(f"pre-dump {info.id[:12]} of PID {info.root_pid}: {s.pages_dirty} pages changed, "
              f"{size(s.bytes_stored)} new in the store ({s.tracker})")
    return 0
