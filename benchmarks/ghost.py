"""Ghost files: what a deleted file the job holds costs a checkpoint and a restore.

A CPython job writes 256 MiB into a file (a quarter of it one random MiB repeated, the rest
constant MiB blocks) and holds it: deleted (tempfile.TemporaryFile, a ghost file whose contents
the checkpoint stores) or kept under its name (the baseline: the file is the user's, nothing of
it stored).  Per run: a fresh store, a checkpoint (the job runs on), a second, incremental one
that kills it, and a restore --detach of the latest.  Alternated, medians.

    python benchmarks/ghost.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import contextlib
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

JOB = r"""
import os, sys, tempfile, time
d, mode = sys.argv[1], sys.argv[2]
block = os.urandom(1 << 20)
f = tempfile.TemporaryFile(dir=d) if mode == "ghost" else open(os.path.join(d, "named"), "w+b")
for i in range(256):
    f.write(block if i % 4 == 0 else bytes([i]) * (1 << 20))
f.flush()
open(os.path.join(d, "ready"), "w").write(f"{os.getpid()}\n")
time.sleep(3600)
"""
FIELDS = ("first downtime ms", "first stored MiB", "second downtime ms", "second stored MiB", "restore s")


def incr(store: Path, *args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "incr", "--store", str(store), *map(str, args)],
                          capture_output=True, text=True, check=True)


def one_run(mode: str) -> dict[str, float]:
    d = Path(tempfile.mkdtemp(prefix=f"incr-ghost-{mode}-"))
    job = subprocess.Popen([sys.executable, "-c", JOB, d, mode], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)
    restored = 0
    try:
        while not (d / "ready").exists():
            if job.poll() is not None:
                raise SystemExit(f"the {mode} job exited with status {job.returncode} before it was ready")
            time.sleep(0.05)
        store = d / "store"
        first = json.loads(incr(store, "checkpoint", "--json", job.pid).stdout)
        second = json.loads(incr(store, "checkpoint", "--json", "--kill", job.pid).stdout)
        job.wait()
        t = time.perf_counter()
        restored = int(incr(store, "restore", "--detach").stdout.split()[-1])
        took = time.perf_counter() - t
        return dict(zip(FIELDS, (first["downtime_ms"], first["bytes_stored"] / 2**20, second["downtime_ms"],
                                 second["bytes_stored"] / 2**20, took), strict=True))
    finally:
        for pid in (job.pid, restored):
            if pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        job.wait()
        shutil.rmtree(d, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each kind, alternated (default 3)")
    args = parser.parse_args()
    runs: dict[str, list[dict[str, float]]] = {"ghost": [], "named": []}
    for _ in range(args.repeat):
        for mode in runs:
            runs[mode].append(one_run(mode))
    medians = {mode: {f: statistics.median(r[f] for r in rows) for f in FIELDS} for mode, rows in runs.items()}
    print(f"| median of {args.repeat} | deleted (ghost) | kept named (baseline) | ratio |")
    print("|---|---|---|---|")
    for f in FIELDS:
        g, n = medians["ghost"][f], medians["named"][f]
        print(f"| {f} | {g:.2f} | {n:.2f} | {g / n:.2f} |" if n else f"| {f} | {g:.2f} | {n:.2f} | |")


if __name__ == "__main__":
    main()
