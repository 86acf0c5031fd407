"""incr check [--json]: what this kernel and these privileges allow (like `criu check`)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from incr import dirty
from incr.cli.output import print_json

HELP = """\
Report what incr can use here: the dirty-page trackers (uffd-wp, soft-dirty,
hash) and which one --tracker auto picks and why, PAGEMAP_SCAN, and the
privileges checkpoint and restore need.  The last line is the verdict: what
will work here and what will not (also "verdict" in --json).  Exit status 0
when checkpoint and restore both work here, 1 when either does not."""


def register(sub: Any) -> None:
    p = sub.add_parser("check", help="what this kernel and these privileges allow", description=HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run, needs_store=False)


def _capabilities() -> dict[str, bool]:
    eff = 0
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("CapEff:"):
                eff = int(line.split()[1], 16)
    names = {"CAP_SYS_PTRACE": 19, "CAP_SYS_ADMIN": 21, "CAP_SYS_RESOURCE": 24, "CAP_CHECKPOINT_RESTORE": 40}
    return {name: bool(eff >> bit & 1) for name, bit in names.items()}


def verdict(machine: str, caps: dict[str, bool], auto: str) -> tuple[bool, str]:
    """(checkpoint and restore both work, one line saying what works here and what does not)."""
    if machine != "x86_64":
        return False, f"verdict: nothing works here: incr runs on x86-64 only, this is {machine}"
    can_dump = caps["CAP_SYS_PTRACE"]
    can_restore = caps["CAP_CHECKPOINT_RESTORE"] or caps["CAP_SYS_ADMIN"]
    works: list[str] = []
    fails: list[str] = []
    (works if can_dump else fails).append("checkpoint")
    (works if can_restore else fails).append("restore with the original PIDs")
    line = "verdict: "
    if works:
        line += " and ".join(works) + (" work here" if len(works) > 1 else " works here")
    if can_dump:
        line += (", incremental with the hash tracker only (every page is copied while the job is frozen: "
                 "long freezes)" if auto == "hash" else f", incremental with {auto} (short freezes)")
    if fails:
        needs = []
        if not can_dump:
            needs.append("checkpoint needs CAP_SYS_PTRACE")
        if not can_restore:
            needs.append("restore needs CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN")
        line += ("; " if works else "") + " and ".join(fails) + " will not (" + "; ".join(needs) + "; run as root)"
    return not fails, line


def run(args: argparse.Namespace) -> int:
    features = dirty.probe()
    auto = dirty.choose("auto")
    report: dict[str, Any] = {
        "kernel": os.uname().release,
        "trackers": {
            "uffd-wp": {"available": features.uffd_wp, "why": features.uffd_wp_why},
            "soft-dirty": {"available": features.soft_dirty, "why": features.soft_dirty_why},
            "hash": {"available": True, "why": "always (copies every page while frozen)"},
        },
        "auto": {"tracker": auto.name, "why": auto.reason},
        "pagemap_scan": features.pagemap_scan,
        "capabilities": _capabilities(),
    }
    good, line = verdict(os.uname().machine, report["capabilities"], auto.name)
    report["verdict"] = {"ok": good, "text": line.removeprefix("verdict: ")}
    if args.json:
        print_json(report)
        return 0 if good else 1
    print(f"kernel {report['kernel']}")
    for name, t in report["trackers"].items():
        print(f"  tracker {name:11} {'yes' if t['available'] else 'no ':3}  {t['why']}")
    print(f"  --tracker auto picks {auto.name}")
    print(f"  PAGEMAP_SCAN        {'yes' if features.pagemap_scan else 'no'}")
    for cap, have in report["capabilities"].items():
        print(f"  {cap:22} {'yes' if have else 'no'}")
    print(line)
    return 0 if good else 1
