"""What supervision costs the job: iterations/s of a CPU-bound job run alone and under
`incr run --every D` (default 60s).

The two run at once, side by side, over the same window (on a shared, noisy machine two
windows one after the other differ by tens of per cent by themselves).
The job (compiled here) rewrites words of a 64 MiB array at pseudo-random places as fast as it
can and counts iterations; on SIGUSR1 it writes the count to a file.  The count is read at the
start and the end of each measured window, so process start-up is not in it.

    python benchmarks/supervised.py [--seconds 130] [--every 60s]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

JOB = r"""
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
static volatile sig_atomic_t wanted;
static void on_usr1(int s) { (void)s; wanted = 1; }
int main(int argc, char **argv) {
    uint64_t words = (64u << 20) / 8, x = 88172645463325252ull;
    uint64_t *a = mmap(NULL, words * 8, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (uint64_t i = 0; i < words; i++) a[i] = i;
    signal(SIGUSR1, on_usr1);
    wanted = 1;                                   /* a first report: ready for SIGUSR1 */
    for (uint64_t it = 0;; it++) {
        if (wanted) {
            wanted = 0;
            char tmp[4096];
            snprintf(tmp, sizeof tmp, "%s.tmp", argv[1]);
            FILE *f = fopen(tmp, "w");
            fprintf(f, "%llu\n", (unsigned long long)it);
            fclose(f);
            rename(tmp, argv[1]);
        }
        for (int k = 0; k < 64; k++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            a[x % words] += x;
        }
    }
}
"""


def count(pid: int, report: Path) -> tuple[int, float]:
    report.unlink(missing_ok=True)
    os.kill(pid, signal.SIGUSR1)
    while not report.exists():
        time.sleep(0.001)
    return int(report.read_text()), time.monotonic()


def job_pid(proc: subprocess.Popen[bytes], supervised: bool) -> int:
    if not supervised:
        return proc.pid
    while True:
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.01)


def start(exe: Path, tmp: Path, every: str | None) -> tuple[subprocess.Popen[bytes], int, Path]:
    tmp.mkdir()
    report = tmp / "count"
    argv = [str(exe), str(report)]
    if every:
        argv = [sys.executable, "-m", "incr", "--store", str(tmp / "store"), "run", "--every", every, "--log",
                str(tmp / "supervisor.log"), "--", *argv]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    while not report.exists():                    # its SIGUSR1 handler is in place
        time.sleep(0.01)
    return proc, job_pid(proc, bool(every)), report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=130.0)
    ap.add_argument("--every", default="60s")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        (tmp / "job.c").write_text(JOB)
        exe = tmp / "job"
        subprocess.run(["gcc", "-O2", "-o", str(exe), str(tmp / "job.c")], check=True)
        os.environ.setdefault("INCR_RUNTIME_DIR", str(tmp / "run"))
        # Both at once, over the same window: the load of a shared machine falls on both alike.
        alone, a_pid, a_report = start(exe, tmp / "alone", None)
        sup, s_pid, s_report = start(exe, tmp / "supervised", args.every)
        try:
            time.sleep(1.0)                               # past the start (and the supervisor's)
            (a0, ta0), (s0, ts0) = count(a_pid, a_report), count(s_pid, s_report)
            time.sleep(args.seconds)
            (a1, ta1), (s1, ts1) = count(a_pid, a_report), count(s_pid, s_report)
        finally:
            alone.kill()
            sup.send_signal(signal.SIGTERM)       # a final checkpoint, then the job ends
            sup.wait()
            alone.wait()
        log = (tmp / "supervised" / "supervisor.log").read_text()
        taken = len(re.findall(r" checkpoint [0-9a-f]{12} ", log))
        ra, rs = (a1 - a0) / (ta1 - ta0), (s1 - s0) / (ts1 - ts0)
        print(log, end="")
        print(f"alone {ra:.0f} iterations/s, supervised --every {args.every} {rs:.0f} iterations/s "
              f"({taken} checkpoints): {100 * (ra - rs) / ra:+.2f} % ({args.seconds:g} s, the two run side by side)")


if __name__ == "__main__":
    main()
