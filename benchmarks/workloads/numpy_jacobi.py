"""numpy: a Jacobi solver in NumPy, the whole grid every sweep, on one thread.

    python numpy_jacobi.py RUN_DIR SIZE_MIB SEED

Two N x N float64 grids (the state and the previous one) of SIZE_MIB together,
updated with `out=` so that no temporary grid is ever allocated; an iteration is
a sweep.  The self-check is openmp.c's: the grid starts as a sum of three
discrete eigenmodes of the Laplacian, so that after k sweeps it is, up to
rounding, sum_m A_m lambda_m^k S_m[i] T_m[j]; both grids are compared with that
closed form, and the current one with the update of the previous one, bit for
bit.  The RUN_DIR protocol is wl.h's; the probe is a Python thread, so it needs
the GIL to wake up: NumPy releases it inside each ufunc on large arrays, and the
gaps it sees include the waits for it between them (at most the interpreter's
switch interval, 5 ms, while the main thread runs Python code).
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")      # one computing thread, as in the C jobs

import numpy as np

MODES = ((1, 1), (2, 3), (5, 2))
CHUNK_ROWS = 64


def mix(x: int) -> int:
    """splitmix64's finaliser, as wl.h's wl_mix."""
    m = (1 << 64) - 1
    x = (x + 0x9E3779B97F4A7C15) & m
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & m
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & m
    return x ^ (x >> 31)


class Probe(threading.Thread):
    """Sleeps 1 ms at a time and records gaps over 2 ms; publishes progress; notices `check`."""

    def __init__(self, run_dir: str) -> None:
        super().__init__(daemon=True)
        self.check_path = os.path.join(run_dir, "check")
        self.progress = os.open(os.path.join(run_dir, "progress"), os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                                0o644)
        self.stalls = os.open(os.path.join(run_dir, "stalls"), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC,
                              0o644)
        self.iterations = 0
        self.check_wanted = threading.Event()

    def write_progress(self) -> None:
        os.pwrite(self.progress, b"%020d\n" % self.iterations, 0)

    def run(self) -> None:
        prev = time.monotonic()
        last_progress = last_check = 0.0
        while True:
            time.sleep(0.001)
            now = time.monotonic()
            gap_ms = (now - prev) * 1e3
            prev = now
            if gap_ms > 2.0:
                os.write(self.stalls, b"%.6f %.3f\n" % (time.time(), gap_ms))
            if now - last_progress >= 0.05:
                self.write_progress()
                last_progress = now
            if now - last_check >= 0.01:
                last_check = now
                if not self.check_wanted.is_set() and os.path.exists(self.check_path):
                    self.check_wanted.set()


class Solver:
    def __init__(self, size_mib: int, seed: int) -> None:
        self.n = n = int(math.sqrt(size_mib * 1048576 / 16))
        if n < 256:
            raise SystemExit("SIZE_MIB too small for the solver")
        i = np.arange(n, dtype=np.float64)
        self.lam = [0.5 * (math.cos(math.pi * a / (n - 1)) + math.cos(math.pi * b / (n - 1))) for a, b in MODES]
        self.amp = [(100.0 if m == 0 else 20.0) * (1.0 + (mix(seed + m) % 1000) * 1e-3) for m in range(len(MODES))]
        self.s = [np.sin(math.pi * a * i / (n - 1)) for a, _ in MODES]
        self.t = [np.sin(math.pi * b * i / (n - 1)) for _, b in MODES]
        for tab in (*self.s, *self.t):
            tab[0] = tab[-1] = 0.0
        self.prev = np.zeros((n, n))
        self.cur = np.zeros((n, n))
        for r in range(0, n, CHUNK_ROWS):
            self.prev[r:r + CHUNK_ROWS] = self.closed_form(0, r, min(n, r + CHUNK_ROWS))
        self.k = 1                      # cur holds the grid after k sweeps, prev after k - 1
        self.sweep(self.prev, self.cur)

    @staticmethod
    def sweep(u: np.ndarray, v: np.ndarray) -> None:
        inner = v[1:-1, 1:-1]
        np.add(u[:-2, 1:-1], u[2:, 1:-1], out=inner)
        np.add(inner, u[1:-1, :-2], out=inner)
        np.add(inner, u[1:-1, 2:], out=inner)
        np.multiply(inner, 0.25, out=inner)

    def step(self) -> None:
        self.prev, self.cur = self.cur, self.prev
        self.sweep(self.prev, self.cur)
        self.k += 1

    def closed_form(self, k: int, lo: int, hi: int) -> np.ndarray:
        out = np.zeros((hi - lo, self.n))
        for lam, amp, s, t in zip(self.lam, self.amp, self.s, self.t, strict=True):
            out += (amp * lam ** k * s[lo:hi])[:, None] * t[None, :]
        return out

    def tolerance(self, k: int) -> float:
        """Rounding only: a few ulps of the amplitude per sweep (a sweep averages: errors never exceed their sum)."""
        return sum(self.amp) * (1e-12 + 1e-15 * k)

    def verify(self) -> str | None:
        n, k = self.n, self.k
        for name, grid, age in (("current", self.cur, k), ("previous", self.prev, k - 1)):
            tol = self.tolerance(age)
            for lo in range(0, n, CHUNK_ROWS):
                hi = min(n, lo + CHUNK_ROWS)
                err = np.abs(grid[lo:hi] - self.closed_form(age, lo, hi))
                if not np.all(err <= tol):
                    r, j = np.argwhere(~(err <= tol))[0]
                    return (f"{name} grid[{lo + r}][{j}] (page {((lo + r) * n + j) * 8 // 4096}) is "
                            f"{grid[lo + r, j]!r}, the closed form after {age} sweeps gives "
                            f"{self.closed_form(age, lo + r, lo + r + 1)[0, j]!r}")
        for lo in range(1, n - 1, CHUNK_ROWS):
            hi = min(n - 1, lo + CHUNK_ROWS)
            u = self.prev
            want = u[lo - 1:hi - 1, 1:-1] + u[lo + 1:hi + 1, 1:-1]
            want += u[lo:hi, :-2]
            want += u[lo:hi, 2:]
            want *= 0.25
            if not np.array_equal(self.cur[lo:hi, 1:-1], want):
                r, j = np.argwhere(self.cur[lo:hi, 1:-1] != want)[0]
                return f"current grid[{lo + r}][{j + 1}] is not the update of the previous grid, sweep {k}"
        return None


def verdict(run_dir: str, probe: Probe, why: str | None) -> None:
    os.unlink(probe.check_path)         # before the flag drops, so that the probe cannot see it again
    probe.check_wanted.clear()
    tmp = os.path.join(run_dir, "verdict.tmp")
    with open(tmp, "w", encoding="ascii") as f:
        f.write(f"ok {probe.iterations}\n" if why is None else f"bad {why}\n")
    os.rename(tmp, os.path.join(run_dir, "verdict"))


def main() -> None:
    if len(sys.argv) < 4:
        raise SystemExit(f"usage: {sys.argv[0]} RUN_DIR SIZE_MIB SEED")
    run_dir, size_mib, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    probe = Probe(run_dir)
    solver = Solver(size_mib, seed)
    probe.iterations = solver.k
    probe.write_progress()
    probe.start()
    tmp = os.path.join(run_dir, "ready.tmp")
    with open(tmp, "w", encoding="ascii") as f:
        f.write(f"{os.getpid()}\n")
    os.rename(tmp, os.path.join(run_dir, "ready"))
    while True:
        solver.step()
        probe.iterations = solver.k
        if probe.check_wanted.is_set():
            verdict(run_dir, probe, solver.verify())


if __name__ == "__main__":
    main()
