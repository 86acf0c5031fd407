"""What a benchmark observes from outside a process: an incr command's wall time and its peak
memory (and how much of that was page cache of mapped files), and medians and percentiles."""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

#: How often a running command's /proc/PID/status is sampled for its resident memory.
SAMPLE_S = 0.005


@dataclass(frozen=True)
class CommandRun:
    """One command run to its end, observed."""

    argv: tuple[str, ...]
    returncode: int
    wall_s: float
    stdout: str
    stderr: str
    peak_rss_mb: float          # the kernel's own high-water mark (getrusage maxrss)
    peak_anon_mb: float         # sampled: anonymous memory (the process's own)
    peak_file_mb: float         # sampled: file pages mapped (page cache of the store's packs, libraries)

    def failed(self) -> str:
        """One line naming the failure (the command's last line of stderr)."""
        last = self.stderr.strip().splitlines()[-1:] or [f"exit status {self.returncode}"]
        return f"`{' '.join(self.argv[-3:])}` failed: {last[0]}"


def run_observed(argv: Sequence[str], *, env: Mapping[str, str] | None = None,
                 timeout: float = 1800) -> CommandRun:
    """Run `argv` to its end, sampling its memory meanwhile; stdout and stderr through files
    (a pipe would need a reader thread, and a full pipe stalls the command being timed)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                env=dict(env) if env is not None else None, close_fds=True)
        peaks = _Sampler(proc.pid)
        peaks.start()
        try:
            _, status, usage = _wait4(proc, timeout)
        finally:
            peaks.stop()
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return CommandRun(tuple(argv), proc.returncode, wall, out.read().decode(errors="replace"),
                          err.read().decode(errors="replace"), usage.ru_maxrss / 1024, peaks.anon_mb, peaks.file_mb)


def _wait4(proc: subprocess.Popen[bytes], timeout: float) -> tuple[int, int, resource.struct_rusage]:
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            return pid, status, usage
        if time.monotonic() > deadline:
            proc.kill()
            return os.wait4(proc.pid, 0)
        time.sleep(0.002)


class _Sampler(threading.Thread):
    """Largest RssAnon and RssFile of a process while it runs."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True, name=f"sample-{pid}")
        self.path = Path(f"/proc/{pid}/status")
        self.anon_mb = 0.0
        self.file_mb = 0.0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            try:
                text = self.path.read_text()
            except OSError:
                return
            fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
            if "RssAnon" not in fields:         # a zombie: it has ended
                return
            self.anon_mb = max(self.anon_mb, int(fields["RssAnon"].split()[0]) / 1024)
            self.file_mb = max(self.file_mb, int(fields["RssFile"].split()[0]) / 1024)
            self._done.wait(SAMPLE_S)

    def stop(self) -> None:
        self._done.set()
        self.join()


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0..100), interpolated; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    low = int(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


@dataclass(frozen=True)
class Spread:
    """Median and range over repetitions."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        if not values:
            return cls(0.0, 0.0, 0.0)
        return cls(statistics.median(values), min(values), max(values))
