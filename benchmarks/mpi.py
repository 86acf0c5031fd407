"""MPI jobs on one node: checkpoint downtime and restore time.

The C Jacobi stencil of the tests (tests/programs/mpi_jacobi.c, 4 ranks, a 512x512 grid, its
gate open: it runs on), under MPICH's `mpiexec.mpich` and Open MPI's `mpirun.openmpi`, each:
6 checkpoints of the live job by the launcher's PID (the first full, the others incremental),
then 3 rounds of `checkpoint --kill` and `restore --detach`.  Medians; the restore time is the
whole `incr restore` command's, from exec.

    python benchmarks/mpi.py [--json]
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
STACKS = {
    "mpich": ("mpicc.mpich", ["mpiexec.mpich", "-n", "4"]),
    "openmpi": ("mpicc.openmpi", ["mpirun.openmpi", "--allow-run-as-root", "--oversubscribe", "-n", "4"]),
}
CHECKPOINTS, RESTORES = 6, 3


def incr(store: Path, *args: object) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([sys.executable, "-m", "incr", "--store", str(store), *map(str, args)], capture_output=True,
                       text=True, check=False)
    if r.returncode != 0:
        raise SystemExit(f"mpi.py: incr {' '.join(map(str, args))} failed: {r.stderr.strip()}")
    return r


def _tree(root: int) -> list[int]:
    out = [root]
    for pid in out:
        with contextlib.suppress(FileNotFoundError):
            for tid in os.listdir(f"/proc/{pid}/task"):
                out.extend(int(c) for c in Path(f"/proc/{pid}/task/{tid}/children").read_text().split())
    return out


def _end(root: int) -> None:
    for pid in reversed(_tree(root)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def measure(name: str, work: Path) -> dict[str, object]:
    cc, launch = STACKS[name]
    exe = work / f"jacobi_{name}"
    subprocess.run([cc, "-O2", "-o", str(exe), str(ROOT / "tests/programs/mpi_jacobi.c")], check=True)
    store, gate = work / f"store_{name}", work / "gate"
    gate.touch()
    job = subprocess.Popen([*launch, str(exe), str(work / f"out_{name}"), str(gate), "100000000", "512"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    root = job.pid
    try:
        time.sleep(3)                           # every rank at work
        downtimes = []
        for _ in range(CHECKPOINTS):
            downtimes.append(float(json.loads(incr(store, "checkpoint", root, "--json").stdout)["downtime_ms"]))
            time.sleep(1)
        restores = []
        for k in range(RESTORES):
            incr(store, "checkpoint", root, "--kill")
            if k == 0:
                job.wait()
            time.sleep(1)
            t0 = time.monotonic()
            res = incr(store, "restore", "--detach")
            restores.append(time.monotonic() - t0)
            root = int(res.stdout.split()[-1])
            said = re.search(r"in ([0-9.]+) ms", res.stderr)
            if said is None:
                raise SystemExit(f"mpi.py: incr restore said {res.stderr!r}")
            time.sleep(2)                       # the restored job at work again
        return {"first_downtime_ms": downtimes[0], "downtime_ms_median": statistics.median(downtimes[1:]),
                "restore_s_median": statistics.median(restores), "downtimes_ms": downtimes, "restores_s": restores}
    finally:
        _end(root)
        job.poll()


def main() -> int:
    missing = [tool for cc, launch in STACKS.values() for tool in (cc, launch[0]) if shutil.which(tool) is None]
    if missing:
        print(f"mpi.py: {', '.join(missing)} not installed (make test-deps installs mpich and openmpi-bin)",
              file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="incr-mpi-") as tmp:
        results = {name: measure(name, Path(tmp)) for name in STACKS}
    if "--json" in sys.argv[1:]:
        print(json.dumps(results, indent=1))
        return 0
    print(f"{'stack':8} {'first ckpt':>11} {'downtime p50':>13} {'restore p50':>12}")
    for name, r in results.items():
        print(f"{name:8} {r['first_downtime_ms']:9.1f} ms {r['downtime_ms_median']:10.1f} ms "
              f"{r['restore_s_median']:10.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
