"""incr repair index"""

from __future__ import annotations

import argparse
from typing import Any

from incr import maintenance

HELP = """\
Repair what can be rebuilt from what the store holds.

index: rebuild the index (where each page is: a cache) from the packs'
trailers, in one transaction.  Any command does so on its own when it finds
the index missing, unreadable or wrong; this does it now, e.g. after
`incr verify` reported index problems.  Packs themselves are never changed:
a damaged checkpoint stays damaged (`incr forget` it; `incr restore
--fallback` takes the newest intact one)."""


def register(sub: Any) -> None:
    p = sub.add_parser("repair", help="rebuild the index from the packs", description=HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=("index",), help="what to repair")
    p.add_argument("--no-wait", action="store_true", help="fail at once if another command writes the store")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    count = maintenance.repair_index(args.store, wait=not args.no_wait)
    print(f"rebuilt the index of {args.store} from {count} packs")
    return 0
