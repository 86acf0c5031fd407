"""Checkpoint cost against the number of mappings (issue 8: linear, not quadratic).

A job with N one-page VMAs (tests/programs/manymaps.c, alternately read-only and
read-write so that none merge) is checkpointed once (full), rewrites every third
read-write page, and is checkpointed again (incremental, uffd-wp).  Reported: the
wall time of each `incr checkpoint`, the median of R runs per N, and the ratio of the
incremental time at each N to the one at the smallest N (linear: ratio ~ N/N0).

    python benchmarks/manymaps.py [--sizes 2500,5000,10000,20000] [--runs 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROGRAM = HERE.parent / "tests" / "programs" / "manymaps.c"


def build(where: Path) -> Path:
    exe = where / "manymaps"
    subprocess.run(["gcc", "-O2", "-Wall", "-I", str(PROGRAM.parent), "-o", str(exe), str(PROGRAM)], check=True)
    return exe


def wait_for(path: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.01)


def timed_checkpoint(store: Path, pid: int) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "incr", "--store", str(store), "checkpoint", str(pid)], check=True,
                   stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL, timeout=3600)
    return time.perf_counter() - t0


def one_run(exe: Path, n: int, where: Path) -> tuple[float, float]:
    """(seconds of the full checkpoint, seconds of the incremental one) for a job of n mappings."""
    d = Path(tempfile.mkdtemp(dir=where))
    go = d / "go"
    job = subprocess.Popen([exe, d / "out", d / "ready", go, str(n)], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(d / "ready")
        full = timed_checkpoint(d / "store", job.pid)
        Path(f"{go}.dirty1").touch()
        wait_for(Path(f"{go}.dirtied1"))
        incremental = timed_checkpoint(d / "store", job.pid)
        return full, incremental
    finally:
        os.kill(job.pid, signal.SIGKILL)
        job.wait()
        shutil.rmtree(d, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="2500,5000,10000,20000")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    where = Path(tempfile.mkdtemp(prefix="incr-manymaps-"))
    os.environ.setdefault("INCR_RUNTIME_DIR", str(where / "runtime"))
    results = []
    try:
        exe = build(where)
        for n in sizes:
            runs = [one_run(exe, n, where) for _ in range(args.runs)]
            full = statistics.median(r[0] for r in runs)
            inc = statistics.median(r[1] for r in runs)
            results.append({"mappings": n, "full_s": round(full, 3), "incremental_s": round(inc, 3)})
            base = results[0]
            print(f"N={n:>6}  full {full:7.2f} s  incremental {inc:7.2f} s  "
                  f"(x{inc / base['incremental_s']:.1f} for x{n / base['mappings']:.1f} mappings)", flush=True)
    finally:
        shutil.rmtree(where, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
