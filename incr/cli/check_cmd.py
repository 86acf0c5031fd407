"""incr check [--json]: what this kernel and these privileges allow (like `criu check`)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from incr import dirty
from incr.cli.output import print_json
from incr.engine import inet, netlock

HELP = """\
Report what incr can use here: the dirty-page trackers (uffd-wp, soft-dirty,
hash) and which one --tracker auto picks and why, PAGEMAP_SCAN, the
privileges checkpoint and restore need, and what a job's TCP connections
need: TCP repair (CAP_NET_ADMIN) and the network lock (nftables), with any
lock an incr killed mid-checkpoint left behind (the next command on that job
takes it out).  The last line is the verdict: what
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
    names = {"CAP_NET_ADMIN": 12, "CAP_SYS_PTRACE": 19, "CAP_SYS_ADMIN": 21, "CAP_SYS_RESOURCE": 24,
             "CAP_CHECKPOINT_RESTORE": 40}
    return {name: bool(eff >> bit & 1) for name, bit in names.items()}


def _available(why: str) -> dict[str, Any]:
    return {"available": not why, "why": why or "yes"}


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
        "tcp_repair": _available(inet.repair_unavailable()),
        "network_lock": _available(netlock.unavailable()),
        "network_locks_left_behind": netlock.left_behind(),
        "network_locks_held": netlock.held(),
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
    for key, label in (("tcp_repair", "TCP repair"), ("network_lock", "network lock")):
        item = report[key]
        print(f"  {label:22} {'yes' if item['available'] else 'no   ' + item['why']}")
    for table in report["network_locks_left_behind"]:
        print(f"  network lock left behind by a killed incr: nft table inet {table} (the next command on its job "
              f"takes it out; or: nft delete table inet {table})")
    for table in report["network_locks_held"]:
        print(f"  network lock held for a restore: nft table inet {table}, the ports of the connections leading "
              f"out of PID {table.removeprefix(netlock.HOLD_PREFIX)}, killed by `checkpoint --kill --tcp-established` "
              f"(`incr restore` of that checkpoint takes it out; to give the connections up: nft delete table inet "
              f"{table})")
    print(line)
    return 0 if good else 1
