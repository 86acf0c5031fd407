"""Spine benchmark: full checkpoint and restore of live processes.

For each workload, in one run: checkpoint downtime (time frozen) and total
time, restore time, bytes stored against resident memory, and a second
checkpoint of the same job (deduplication).  Baselines measured in the same
run: a memcpy of the resident size (the floor of any frozen copy) and zstd -1
of the same bytes (what a plain compressed dump would write).

    python benchmarks/spine.py [--repeat 5] [--json results.json]
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

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def build(src: Path, out: Path) -> Path:
    subprocess.run(["gcc", "-O2", "-o", str(out), str(src), "-lm"], check=True)
    return out


def incr(store: Path, *args: object) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([sys.executable, "-m", "incr", "--store", str(store), *map(str, args)],
                       capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise SystemExit(f"incr {args[0]} failed: {r.stderr.strip()}")
    return r


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def wait_for(pred: Any, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise SystemExit("timed out")
        time.sleep(0.01)


def baselines(nbytes: int) -> dict[str, float]:
    """memcpy and zstd -1 of `nbytes` of the 1 GiB workload's kind of data."""
    src = bytearray(os.urandom(min(nbytes, 64 << 20)))
    t = time.perf_counter()
    _ = bytes(src)
    memcpy_s = (time.perf_counter() - t) * nbytes / len(src)
    return {"memcpy_ms": memcpy_s * 1e3}


def zstd_of_process(pid: int) -> tuple[int, int, float]:
    """(bytes read, zstd -1 size, seconds) over the readable private memory of pid: a plain dump."""
    cctx = zstandard.ZstdCompressor(level=1)
    raw = packed = 0
    t = time.perf_counter()
    fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
    try:
        for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
            parts = line.split()
            if not parts[1].startswith("r") or (len(parts) > 5 and parts[5].startswith("[v")):
                continue
            lo, hi = (int(v, 16) for v in parts[0].split("-"))
            for at in range(lo, hi, 16 << 20):
                chunk = os.pread(fd, min(16 << 20, hi - at), at)
                raw += len(chunk)
                packed += len(cctx.compress(chunk))
    finally:
        os.close(fd)
    return raw, packed, time.perf_counter() - t


def run_once(name: str, argv: list[str], ready: Any, tmp: Path) -> dict[str, float]:
    store = tmp / f"store-{name}"
    shutil.rmtree(store, ignore_errors=True)
    job = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True, cwd=tmp)
    try:
        ready(job.pid)
        rss = rss_bytes(job.pid)
        t = time.perf_counter()
        first = json.loads(incr(store, "checkpoint", job.pid, "--json").stdout)
        cli_ms = (time.perf_counter() - t) * 1e3
        second = json.loads(incr(store, "checkpoint", job.pid, "--json").stdout)
        job.kill()
        job.wait()
        t = time.perf_counter()
        r = incr(store, "restore", "--id", first["id"], "--detach")
        restore_wall_ms = (time.perf_counter() - t) * 1e3
        pid = int(r.stdout)
        m = re.search(r"in ([0-9.]+) ms", r.stderr)
        restore_ms = float(m.group(1)) if m else float("nan")
        restored_rss = rss_bytes(pid)
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not Path(f"/proc/{pid}").exists() or "State:\tZ" in Path(f"/proc/{pid}/status").read_text())
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    return {
        "rss_bytes": rss, "pages_total": first["pages_total"], "downtime_ms": first["downtime_ms"],
        "checkpoint_total_ms": first["total_ms"], "checkpoint_cli_ms": cli_ms,
        "bytes_stored": first["bytes_stored"], "second_bytes_stored": second["bytes_stored"],
        "second_downtime_ms": second["downtime_ms"], "restore_ms": restore_ms,
        "restore_cli_ms": restore_wall_ms, "restored_rss_bytes": restored_rss,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="incr-bench-"))
    try:
        solver = build(ROOT / "examples" / "solver.c", tmp / "solver")
        gib = build(HERE / "workloads" / "gib.c", tmp / "gib")

        def solver_ready(pid: int) -> None:
            wait_for(lambda: (tmp / "solver.out").exists() and
                     (tmp / "solver.out").read_bytes().count(b"\n") >= 50)

        def gib_ready(pid: int) -> None:
            wait_for(lambda: (tmp / "gib.ready").exists())

        workloads = {
            "demo solver (16 MiB grid)": ([str(solver), "solver.out", "100000"], solver_ready),
            "1 GiB job (697 MiB resident)": ([str(gib), "gib.ready", "697"], gib_ready),
        }
        report: dict[str, Any] = {}
        for name, (argv, ready) in workloads.items():
            runs = []
            for _ in range(args.repeat):
                for f in ("solver.out", "gib.ready"):
                    (tmp / f).unlink(missing_ok=True)
                runs.append(run_once(name.split()[0], argv, ready, tmp))
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            # baseline in the same run: a plain zstd -1 dump of the same process
            for f in ("solver.out", "gib.ready"):
                (tmp / f).unlink(missing_ok=True)
            job = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, cwd=tmp,
                                   start_new_session=True)
            try:
                ready(job.pid)
                raw, packed, secs = zstd_of_process(job.pid)
            finally:
                job.kill()
                job.wait()
            med["plain_dump_bytes"] = raw
            med["plain_dump_zstd1_bytes"] = packed
            med["plain_dump_zstd1_ms"] = secs * 1e3
            med.update(baselines(int(med["rss_bytes"])))
            report[name] = {"median": med, "runs": runs}
            mib = 1 << 20
            print(f"\n{name}: median of {args.repeat}")
            print(f"  resident {med['rss_bytes'] / mib:.1f} MiB, {med['pages_total']:.0f} pages in the checkpoint")
            print(f"  checkpoint: frozen {med['downtime_ms']:.1f} ms (memcpy of the resident size: "
                  f"{med['memcpy_ms']:.1f} ms, ratio {med['downtime_ms'] / med['memcpy_ms']:.2f}), "
                  f"total {med['checkpoint_total_ms']:.0f} ms in incr, {med['checkpoint_cli_ms']:.0f} ms wall")
            print(f"  stored {med['bytes_stored'] / mib:.1f} MiB = {med['bytes_stored'] / med['rss_bytes']:.3f} of "
                  f"resident; zstd -1 of the same memory {med['plain_dump_zstd1_bytes'] / mib:.1f} MiB "
                  f"(incr/zstd {med['bytes_stored'] / med['plain_dump_zstd1_bytes']:.2f})")
            print(f"  second checkpoint of the same job: {med['second_bytes_stored'] / 1024:.1f} KiB added, "
                  f"frozen {med['second_downtime_ms']:.1f} ms")
            print(f"  restore: {med['restore_ms']:.1f} ms in incr, {med['restore_cli_ms']:.0f} ms wall; restored "
                  f"resident {med['restored_rss_bytes'] / mib:.1f} MiB")
        if args.json:
            args.json.write_text(json.dumps(report, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
