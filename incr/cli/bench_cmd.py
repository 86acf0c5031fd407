"""incr bench [--quick] [--size 1G] [--workloads ...] [--repeat N] [--json FILE] [--report DIR]
[--compare criu,dmtcp]"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from incr.cli.argtypes import positive_int, seconds
from incr.cli.checkpoint_cmd import parse_size
from incr.errors import UsageError


@dataclass(frozen=True)
class Matrix:
    """The defaults of a run: the full matrix, or --quick's."""

    sizes: str
    repeat: int
    checkpoints: int
    no_precopy: int
    interval: float
    rate_s: float


FULL = Matrix(sizes="1G", repeat=3, checkpoints=21, no_precopy=3, interval=2.0, rate_s=3.0)
QUICK = Matrix(sizes="64M", repeat=1, checkpoints=4, no_precopy=1, interval=0.3, rate_s=1.0)

MATRICES = textwrap.fill(
    f"--quick: every workload at {QUICK.sizes}, {QUICK.repeat} run, {QUICK.checkpoints} checkpoints {QUICK.interval} s "
    f"apart: under 3 minutes on 2 cores.  The full matrix (the defaults): {FULL.sizes}, {FULL.repeat} runs, "
    f"{FULL.checkpoints} checkpoints {FULL.interval} s apart; with --compare criu,dmtcp about 5 hours on this "
    "2-core machine (one run of the eight workloads at 1 GiB through incr, CRIU, DMTCP and DMTCP with gzip took "
    "100 minutes, a fifth of it DMTCP with gzip; the JSON gives each run's time).  A series' store holds up to "
    "about 20 GiB at 1 GiB: give --work-dir a disk with room.  --quick runs 1 1/2-2 minutes, 4 1/2 with both "
    "peers.", 76)

HELP = f"""\
Measure incr on this machine: each workload (benchmarks/workloads/) is run,
checkpointed and restored, and with --compare the same through CRIU and
DMTCP, the engines taking turns run by run.  Per workload:

  downtime per checkpoint (p50, p99), from incr and from the job's own 1 ms
  probe thread, with pre-copy (the default), without, and for a full
  checkpoint; checkpoint wall time; bytes added per checkpoint against the
  resident size and the zstd -1 size of what changed; ingest MB/s against
  zstd -1 and the page digest on the same pages, in one process; restore
  time until the job runs again against the process_vm_writev copy limit,
  for an early and the newest checkpoint; the job's slowdown while tracked;
  incr's own peak memory (and how much of it is page cache of the packs).
  Every restored job checks its own memory.

Medians over the runs, and ratios taken pair-wise within a run (a noisy
machine moves both figures alike).  Nothing is faked: a peer not installed
is reported absent with the reason (build them: `make peers`).

{MATRICES}
Progress goes to stderr, the table to stdout."""


def register(sub: Any) -> None:
    from incr.bench.workloads import WORKLOADS
    names = ",".join(WORKLOADS)
    p = sub.add_parser("bench", help="measure incr (and CRIU, DMTCP) on this machine", description=HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="the small matrix (under 3 minutes)")
    p.add_argument("--size", metavar="SIZES", help=f"job sizes, comma-separated (default {FULL.sizes}, "
                                                   f"--quick {QUICK.sizes})")
    p.add_argument("--workloads", metavar="NAMES", default="all", help=f"comma-separated, of: {names} (default all)")
    p.add_argument("--repeat", metavar="N", type=positive_int, help=f"runs per engine (default {FULL.repeat})")
    p.add_argument("--checkpoints", metavar="K", type=positive_int,
                   help=f"checkpoints a series (default {FULL.checkpoints}; at least 2)")
    p.add_argument("--interval", metavar="S", type=seconds, help=f"seconds between checkpoints (default "
                                                               f"{FULL.interval})")
    p.add_argument("--seed", metavar="N", type=int, default=1, help="the workloads' seed (default 1)")
    p.add_argument("--compare", metavar="PEERS", default="", help="criu, dmtcp or both, comma-separated")
    p.add_argument("--json", metavar="FILE", type=Path, help="write every figure and every run as JSON")
    p.add_argument("--report", metavar="DIR", type=Path, help="write DIR/report.md and its plots (PNG)")
    p.add_argument("--work-dir", metavar="DIR", type=Path,
                   help="where the jobs and stores go (default: a new directory in $TMPDIR, removed after)")
    p.set_defaults(func=run, needs_store=False)


def run(args: argparse.Namespace) -> int:
    from incr.bench import harness, peers
    from incr.bench.workloads import WORKLOADS
    defaults = QUICK if args.quick else FULL
    names = tuple(WORKLOADS) if args.workloads == "all" else tuple(n.strip() for n in args.workloads.split(","))
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown or not names:
        raise UsageError(f"unknown workload {', '.join(unknown) or '(none given)'}: choose from {', '.join(WORKLOADS)}")
    sizes = tuple(_size_mib(s) for s in (args.size or defaults.sizes).split(","))
    checkpoints = args.checkpoints or defaults.checkpoints
    if checkpoints < 2:
        raise UsageError("--checkpoints must be at least 2 (a full one, then incremental ones)")
    interval = defaults.interval if args.interval is None else args.interval
    for path in (args.json, args.report):
        if path is not None and not path.parent.resolve().is_dir():
            raise UsageError(f"{path.parent} does not exist: make it, or write elsewhere")
    asked = [n.strip() for n in args.compare.split(",") if n.strip()]
    try:
        chosen = peers.peers(asked)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    present = [p for p in chosen if p.absent() is None]
    absent = {p.name: p.absent() or "" for p in chosen if p.absent() is not None}
    for name, why in absent.items():
        print(f"incr bench: {name} absent: {why}", file=sys.stderr)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="incr-bench-"))
    settings = harness.Settings(workloads=names, sizes_mib=sizes, repeat=args.repeat or defaults.repeat,
                                checkpoints=checkpoints, no_precopy=defaults.no_precopy, interval_s=interval,
                                seed=args.seed, work_dir=work, peers=tuple(present), quick=args.quick,
                                rate_s=defaults.rate_s)
    started, t0 = harness.machine(), time.monotonic()
    try:
        with harness.peers_closed(present):
            trials = harness.Bench(settings, lambda line: print(f"incr bench: {line}", file=sys.stderr,
                                                                flush=True)).run()
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    result = {
        "machine": started, "load_avg_end": list(_load()), "elapsed_s": round(time.monotonic() - t0, 1),
        "settings": {"workloads": list(names), "sizes_mib": list(sizes), "repeat": settings.repeat,
                     "checkpoints": checkpoints, "no_precopy": settings.no_precopy, "interval_s": interval,
                     "seed": args.seed, "quick": args.quick},
        "peers": {"present": [{"name": p.name, "version": p.version} for p in present], "absent": absent},
        "workloads": harness.summarize(trials, settings),
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    print(table(result))
    if args.report:
        from incr.bench.report import write_report
        written = write_report(result, trials, args.report)
        print(f"incr bench: wrote {', '.join(str(p) for p in written)}", file=sys.stderr)
    failed = [t for t in trials if t.failed and t.engine == "incr"]
    if failed:
        print(f"incr bench: {len(failed)} runs of incr failed (listed above): their figures are left out",
              file=sys.stderr)
        return 1
    return 0


def _size_mib(text: str) -> int:
    try:
        return parse_size(text.strip()) >> 20
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"--size: {exc}") from None


def _load() -> tuple[float, float, float]:
    import os
    return os.getloadavg()


def table(result: dict[str, Any]) -> str:
    """The figures for a terminal: one line per workload, then one per peer."""
    from incr.bench.report import measured
    from incr.units import size
    rows = [f"{'workload':<10} {'resident':>9} {'downtime':>9} {'probe':>8} {'full':>8} {'bytes/ckpt':>11} "
            f"{'full bytes':>11} {'ingest':>10} {'zstd -1':>10} {'restore':>8} {'copy lim':>8} {'slowdown':>8}"]
    for name, w in result["workloads"].items():
        d = w["downtime_ms_p50"]
        rows.append(f"{name:<10} {w['resident_mb']:>5.0f} MiB {d['incremental']:>6.1f} ms {d['probe']:>5.1f} ms "
                    f"{d['full']:>5.1f} ms {size(w['bytes_per_checkpoint']['incremental']):>11} "
                    f"{size(w['bytes_per_checkpoint']['full']):>11} {w['ingest_mb_s']:>5.0f} MB/s "
                    f"{w['zstd_mb_s']:>5.0f} MB/s {w['restore_s']:>6.2f} s {w['copy_limit_s']:>6.2f} s "
                    f"{w['tracking_slowdown']:>8.3f}")
        for why in w["failed"]:
            rows.append(f"  incr         FAILED: {why}")
        for p, pw in w["peers"].items():
            for why in pw["failed"]:
                rows.append(f"  {p:<12} FAILED: {why}")
            if not measured(pw):
                continue
            r = pw["incr_over_peer"]
            rows.append(f"  {p:<12} downtime {pw['downtime_ms_p50']:.1f} ms (probe {pw['probe_ms_p50']:.1f}), "
                        f"{size(pw['bytes_per_checkpoint'])}/ckpt, restore {pw['restore_s']:.2f} s; incr/{p}: "
                        f"downtime {r['downtime_ms_p50']:.3f}, bytes {r['bytes_per_checkpoint']:.3f}, "
                        f"restore {r['restore_s']:.3f}")
    return "\n".join(rows)
