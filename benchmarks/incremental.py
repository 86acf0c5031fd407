"""Incremental-checkpoint benchmark (issue: dirty tracking and pre-copy).

A 2 GiB job (workloads/rewriter.c) rewrites ~1 % of its pages per second and
is checkpointed every 10 s.  Reported, all measured in this one run:

  (a) downtime with pre-copy vs. without vs. a full dump by the same engine
      (the hash tracker without pre-copy copies every page while frozen);
  (b) bytes added per incremental checkpoint vs. a full checkpoint, and vs.
      zstd -1 of exactly the pages that changed (read back from the store);
  (c) restore time of checkpoint #2 vs. #30 of the same job;
  (d) the job's slowdown from tracking: iterations/s of the unpaced job with
      no tracker vs. with uffd-wp re-armed every second.

    python benchmarks/incremental.py [--checkpoints 30] [--every 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import zstandard
from threads import gone

from incr import dirty
from incr.engine import memory
from incr.pagestore import HOLE_DIGEST, ZERO_DIGEST, Store, layers

HERE = Path(__file__).resolve().parent
RATE_PERMILLE = 10          # 1 % of the pages per second


def incr_cli(store: Path, *args: object) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([sys.executable, "-m", "incr", "--store", str(store), *map(str, args)],
                       capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise SystemExit(f"incr {args[0]} failed: {r.stderr.strip()}")
    return r


class Job:
    def __init__(self, exe: Path, tmp: Path, rate: int, iterfile: Path | None = None) -> None:
        ready = tmp / "ready"
        ready.unlink(missing_ok=True)
        argv = [str(exe), str(ready), str(rate)] + ([str(iterfile)] if iterfile else [])
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True)
        while not ready.exists():
            if self.p.poll() is not None:
                raise SystemExit("the workload died")
            time.sleep(0.05)
        self.pid = self.p.pid

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()


def checkpoint_series(exe: Path, tmp: Path, store: Path, count: int, every: float, *args: str) -> list[dict[str, Any]]:
    shutil.rmtree(store, ignore_errors=True)
    job = Job(exe, tmp, RATE_PERMILLE)
    out = []
    try:
        due = time.monotonic()
        for i in range(count):
            time.sleep(max(0.0, due - time.monotonic()))
            due = time.monotonic() + every
            out.append(json.loads(incr_cli(store, "checkpoint", job.pid, "--json", *args).stdout))
            c = out[-1]
            print(f"    #{i + 1}: frozen {c['downtime_ms']:.1f} ms, {c['pages_dirty']} pages dirty, "
                  f"{c['bytes_stored'] / 2**20:.1f} MiB stored, {c['rounds']} rounds ({c['tracker']})", flush=True)
    finally:
        job.stop()
    return out


def changed_pages_zstd(store_path: Path, older: str, newer: str) -> tuple[int, int]:
    """(pages whose content differs between two snapshots, zstd -1 size of those pages' contents)."""
    with Store.open(store_path) as st:
        maps = []
        for sid in (older, newer):
            _, snap = st.load(sid)
            maps.append({ref.region: layers.read_region(layers.region_layers(ref), st.read_blob)
                         for ref in snap.page_maps})
        digests = []
        for region, pages in maps[1].items():
            before = maps[0].get(region, {})
            digests.extend(d for p, d in pages.items()
                           if before.get(p) != d and d not in (ZERO_DIGEST, HOLE_DIGEST))
        unique = list(dict.fromkeys(digests))          # the store keeps each content once too
        buf = bytearray(len(unique) * 4096)
        st.read_pages_into(b"".join(unique), buf)
    return len(digests), len(zstandard.ZstdCompressor(level=1).compress(bytes(buf)))


def restore_time(store: Path, cid: str) -> float:
    """ms the restore of `cid` took in incr (its own figure: no interpreter start-up)."""
    r = incr_cli(store, "restore", "--id", cid, "--detach")
    pid = int(r.stdout)
    m = re.search(r"in ([0-9.]+) ms", r.stderr)
    os.kill(pid, signal.SIGKILL)
    gone(pid)
    return float(m.group(1)) if m else float("nan")


def restore_times(store: Path, ids: list[str], repeat: int) -> list[list[float]]:
    """Restore times of each checkpoint of `ids`, `repeat` rounds interleaved: on this VM the
    cost of memory the host has not backed yet drifts from minute to minute (process_vm_writev
    of 1 GiB into fresh memory measured 0.4-2.7 s), so each round sees the same conditions."""
    times: list[list[float]] = [[] for _ in ids]
    for _ in range(repeat):
        for cid, out in zip(ids, times, strict=True):
            out.append(restore_time(store, cid))
    return times


def iterations_per_second(exe: Path, tmp: Path, seconds: float, rearm: float | None) -> float:
    """Iterations/s of the unpaced job; with `rearm`, uffd-wp tracking re-armed that often (seconds)."""
    iterfile = tmp / "iters"
    iterfile.unlink(missing_ok=True)
    job = Job(exe, tmp, 0, iterfile)
    tracker = None
    try:
        if rearm is not None:
            tracker = dirty.choose("uffd-wp")
            tracker.start(job.pid, str(tmp / "no-store"))
        time.sleep(2.0)                                       # warm up
        first = [float(x) for x in iterfile.read_text().split()]
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if tracker is not None:
                tracker.collect(memory.dump_vmas(job.pid), None)   # re-arm: every page faults once more
            time.sleep(rearm or 1.0)
        last = [float(x) for x in iterfile.read_text().split()]
    finally:
        if tracker is not None:
            tracker.close()
        job.stop()
    return (last[0] - first[0]) / (last[1] - first[1])


def slowdown(exe: Path, tmp: Path) -> tuple[float, float, float]:
    print("(d) iterations/s of the unpaced job: untracked, uffd-wp re-armed every 10 s and every 1 s", flush=True)
    plain = iterations_per_second(exe, tmp, 40, None)
    tracked = iterations_per_second(exe, tmp, 40, 10.0)
    tracked_1s = iterations_per_second(exe, tmp, 40, 1.0)
    print(f"    {plain:.0f} / {tracked:.0f} / {tracked_1s:.0f} iterations/s", flush=True)
    return plain, tracked, tracked_1s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoints", type=int, default=30)
    ap.add_argument("--every", type=float, default=10.0)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--only-slowdown", action="store_true", help="measure (d) alone")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="incr-bench-inc-"))
    os.environ["INCR_RUNTIME_DIR"] = str(tmp / "run")
    report: dict[str, Any] = {}
    try:
        exe = tmp / "rewriter"
        subprocess.run(["gcc", "-O2", "-o", str(exe), str(HERE / "workloads" / "rewriter.c"), "-lm"], check=True)
        if args.only_slowdown:
            plain, tracked, tracked_1s = slowdown(exe, tmp)
            print(json.dumps({"slowdown": 1 - tracked / plain, "slowdown_rearm_1s": 1 - tracked_1s / plain}))
            return
        n = args.checkpoints
        print(f"(a,b,c) pre-copy, uffd-wp: {n} checkpoints every {args.every:g} s", flush=True)
        pre = checkpoint_series(exe, tmp, tmp / "store-pre", n, args.every)
        print("(a) no pre-copy, uffd-wp: 5 checkpoints", flush=True)
        nopre = checkpoint_series(exe, tmp, tmp / "store-nopre", 5, args.every, "--no-precopy")
        print("(a) full dump (hash tracker, no pre-copy): 3 checkpoints", flush=True)
        full = checkpoint_series(exe, tmp, tmp / "store-full", 3, args.every, "--tracker", "hash", "--no-precopy")

        inc = pre[1:]
        med = statistics.median
        downtime = {"precopy": med(c["downtime_ms"] for c in inc),
                    "no_precopy": med(c["downtime_ms"] for c in nopre[1:]),
                    "full_dump": med(c["downtime_ms"] for c in full)}
        ratios = []
        for k in range(1, n, max(1, (n - 1) // 6)):
            changed, packed = changed_pages_zstd(tmp / "store-pre", pre[k - 1]["id"], pre[k]["id"])
            ratios.append((pre[k]["bytes_stored"] / packed, changed, packed, pre[k]["bytes_stored"]))
        print("(c) restores of #2 and of the last checkpoint, 5 each, interleaved", flush=True)
        r2, rn = restore_times(tmp / "store-pre", [pre[1]["id"], pre[-1]["id"]], 5)
        print(f"    #2: {r2} ms\n    #{n}: {rn} ms", flush=True)
        plain, tracked, tracked_1s = slowdown(exe, tmp)
        report = {
            "downtime_ms_median": downtime,
            "downtime_precopy_vs_full": downtime["precopy"] / downtime["full_dump"],
            "rounds_median": med(c["rounds"] for c in inc),
            "full_checkpoint_bytes": pre[0]["bytes_stored"],
            "incremental_bytes_median": med(c["bytes_stored"] for c in inc),
            "incremental_pages_dirty_median": med(c["pages_dirty"] for c in inc),
            "bytes_vs_zstd_of_changed_pages": [r[0] for r in ratios],
            "bytes_vs_zstd_median": med(r[0] for r in ratios),
            "restore_ms_2": r2, "restore_ms_last": rn,
            "restore_last_vs_2": med(rn) / med(r2),
            "iterations_per_s": {"untracked": plain, "uffd-wp re-armed every 10 s": tracked,
                                 "uffd-wp re-armed every 1 s": tracked_1s},
            "slowdown": 1 - tracked / plain, "slowdown_rearm_1s": 1 - tracked_1s / plain,
            "series": {"precopy": pre, "no_precopy": nopre, "full": full},
        }
        print(json.dumps({k: v for k, v in report.items() if k != "series"}, indent=2))
        if args.json:
            args.json.write_text(json.dumps(report, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
