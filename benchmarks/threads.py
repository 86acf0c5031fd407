"""Multi-threaded jobs: checkpoint downtime and restore time.

The OpenMP stencil of the tests (4 threads) and a NumPy job whose OpenBLAS
runs threads of its own, each waiting at a gate: 5 checkpoints of the live job
(the first full, the others incremental), then 5 restores of the first (kill,
restore --detach, kill).  Medians.

    python benchmarks/threads.py
"""

from __future__ import annotations

import contextlib
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

ROOT = Path(__file__).resolve().parents[1]
NUMPY_JOB = r"""
import os, sys
import numpy as np
a = np.random.default_rng(7).standard_normal((1500, 1500))
for it in range(4):
    a = np.tanh(a @ a.T / 1500.0)
open(sys.argv[1], "w").write("ready\n")
while not os.path.exists(sys.argv[2]):
    a = np.tanh(a @ a.T / 1500.0)
"""


def incr(store: Path, *args: object) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([sys.executable, "-m", "incr", "--store", str(store), *map(str, args)], capture_output=True,
                       text=True, stdin=subprocess.DEVNULL)
    if r.returncode:
        raise SystemExit(f"incr {args[0]}: {r.stderr.strip()}")
    return r


def gone(pid: int) -> None:
    while Path(f"/proc/{pid}").exists() and "State:\tZ" not in Path(f"/proc/{pid}/status").read_text():
        time.sleep(0.01)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
    while Path(f"/proc/{pid}").exists():
        time.sleep(0.01)


def measure(name: str, argv: list[str], ready: Path, tmp: Path, env: dict[str, str]) -> dict[str, object]:
    store = tmp / f"store-{name}"
    job = subprocess.Popen(argv, env={**os.environ, **env}, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, start_new_session=True)
    while not ready.exists() or not ready.read_text().endswith("\n"):
        time.sleep(0.01)
    threads = len(os.listdir(f"/proc/{job.pid}/task"))
    rss = int(next(x for x in Path(f"/proc/{job.pid}/status").read_text().splitlines()
                   if x.startswith("VmRSS")).split()[1]) * 1024
    cks = [json.loads(incr(store, "checkpoint", job.pid, "--json").stdout) for _ in range(5)]
    job.kill()
    job.wait()
    restores = []
    for _ in range(5):
        r = incr(store, "restore", "--id", cks[0]["id"], "--detach")
        restores.append(float(re.search(r"in ([0-9.]+) ms", r.stderr).group(1)))
        pid = int(r.stdout)
        os.kill(pid, signal.SIGKILL)
        gone(pid)
    return {"threads": threads, "rss_mib": rss / 2**20, "first_downtime_ms": cks[0]["downtime_ms"],
            "incremental_downtime_ms": statistics.median(c["downtime_ms"] for c in cks[1:]),
            "first_total_ms": cks[0]["total_ms"], "restore_ms": statistics.median(restores)}


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="incr-bench-thr-"))
    try:
        exe = tmp / "stencil_omp"
        subprocess.run(["gcc", "-O2", "-fopenmp", "-o", str(exe), str(ROOT / "tests/programs/stencil_omp.c"), "-lm"],
                       check=True)
        report = {}
        d = tmp / "omp"
        d.mkdir()
        # the stencil waits at its first gate (go1 never appears) after 50 iterations; ready = 50 lines
        out = d / "out.txt"
        job_argv = [str(exe), str(out), str(d / "go1"), str(d / "go2"), "100"]
        ready = d / "ready"
        watcher = subprocess.Popen(["bash", "-c", f"while [ $(wc -l < {out} 2>/dev/null || echo 0) -lt 50 ]; "
                                                  f"do sleep 0.01; done; echo ok > {ready}"])
        report["openmp stencil (OMP_NUM_THREADS=4)"] = measure("omp", job_argv, ready, tmp, {"OMP_NUM_THREADS": "4"})
        watcher.wait()
        report["numpy + OpenBLAS"] = measure("np", [sys.executable, "-c", NUMPY_JOB, str(tmp / "np.ready"),
                                                    str(tmp / "np.go")], tmp / "np.ready", tmp,
                                             {"OPENBLAS_NUM_THREADS": "4"})
        print(json.dumps(report, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
