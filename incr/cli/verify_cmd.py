"""incr verify [--id ID ...] [--read-data [FRACTION]] [--seed N] [--json]"""

from __future__ import annotations

import argparse
import re
from typing import Any

from incr import maintenance
from incr.cli.output import print_json, size
from incr.cli.progress import ProgressLine
from incr.errors import UsageError
from incr.pagestore.verify import Report

HELP = """\
Check that the store's checkpoints can be restored, without changing anything.

Always checked: every manifest matches its id and decodes; every layer of
every page map resolves to pages that some pack holds; every pack's trailer
reads; the index (a cache of where each page is) names only packs that exist
and, for each page a checkpoint needs, the frame that holds it.

--read-data also reads every byte of the packs (or of a random FRACTION of
them: 0.1, 10% or 1/10; --seed makes the choice repeatable, and the seed
used is printed): each pack must match its name, each frame decompress and
each page match its digest.  That finds flipped bits the structure check
cannot see, at disk speed.

Output: one line per damaged checkpoint, naming what is damaged and the
packs involved; problems of the store itself; then a summary.  Data nothing
references (left by removed checkpoints, or by an interrupted command) is
reported, not counted as damage: `incr prune` frees it.

Exit status: 0 when every checked checkpoint is intact and the index is
sound, 1 otherwise (a damaged checkpoint is not restored by `incr restore`;
`incr restore --fallback` takes the newest one that is intact; `incr repair
index` rebuilds a wrong index)."""


def register(sub: Any) -> None:
    p = sub.add_parser("verify", help="check that checkpoints are intact (--read-data: every byte)",
                       description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--id", metavar="ID", action="append", help="check only this checkpoint (repeatable)")
    p.add_argument("--read-data", metavar="FRACTION", nargs="?", const="1", default="0",
                   help="read all packs in full, or this fraction of them chosen at random (0.1, 10%%, 1/10)")
    p.add_argument("--seed", type=int, help="seed of the random choice of --read-data FRACTION")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def parse_fraction(text: str) -> float:
    """'1', '0.25', '25%', '1/4' -> a fraction in (0, 1]."""
    s = text.strip()
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(%?)", s)
    n = re.fullmatch(r"(\d+)/(\d+)", s)
    value = -1.0
    if m:
        value = float(m.group(1)) / (100 if m.group(2) else 1)
    elif n and int(n.group(2)) > 0:
        value = int(n.group(1)) / int(n.group(2))
    if not 0 <= value <= 1:
        raise UsageError(f"--read-data {text!r}: give a fraction of the packs between 0 and 1 (0.1, 10% or 1/10)")
    return value


def run(args: argparse.Namespace) -> int:
    fraction = parse_fraction(args.read_data)
    bar = ProgressLine()
    try:
        report = maintenance.verify(args.store, ids=args.id, read_data=fraction, seed=args.seed, progress=bar)
    finally:
        bar.close()
    if args.json:
        print_json(as_json(report))
    else:
        for line in report.problems():
            print(line)
        for line in report.notes:
            print(f"note: {line}")
        print(summary(report))
    return 0 if report.ok else 1


def summary(report: Report) -> str:
    damaged = sum(1 for c in report.checked if not c.ok)
    checked = f"{len(report.checked)} checkpoints, {report.packs} packs"
    if report.packs_read:
        seed = f", seed {report.seed}" if report.seed is not None else ""
        checked += (f" ({report.packs_read} read in full: {size(report.bytes_read)} at "
                    f"{report.read_mb_per_s:.0f} MB/s{seed})")
    garbage = ""
    if report.unreferenced_bytes:
        garbage = (f"; {size(report.unreferenced_bytes)} unreferenced, {len(report.unreferenced_packs)} packs "
                   "of nothing but that (`incr prune` frees it)")
    if report.ok:
        return f"verified {checked}: no problems{garbage}"
    what = f"{damaged} damaged" if damaged else "no checkpoint damaged"
    others = len(report.store_problems) + len(report.index_problems)
    return f"checked {checked}: {what}, {others} problems of the store{garbage}"


def as_json(report: Report) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "snapshots": [{"id": c.id, "kind": c.kind, "epoch": c.epoch, "ok": c.ok, "problems": c.problems,
                       "packs": sorted(c.packs)} for c in report.checked],
        "store_problems": report.store_problems,
        "index_problems": report.index_problems,
        "notes": report.notes,
        "packs": report.packs,
        "packs_read": report.packs_read,
        "bytes_read": report.bytes_read,
        "read_mb_per_s": round(report.read_mb_per_s, 1),
        "seed": report.seed,
        "unreferenced_bytes": report.unreferenced_bytes,
        "unreferenced_packs": report.unreferenced_packs,
        "unreferenced_index_entries": report.unreferenced_entries,
    }
