"""The Jacobi stencil of mpi_jacobi.c in mpi4py, deterministic: rows split among the ranks, a
halo exchange with both neighbours each iteration (comm.sendrecv), the grid's digest (BLAKE2 of
each rank's rows, XORed across ranks) written by rank 0 every iteration.

    python3 mpi_jacobi.py OUT GATE [ITERATIONS [N]]

Before iteration ITERATIONS/2 rank 0 waits until GATE exists; last line "done DIGEST"."""

import hashlib
import os
import struct
import sys
import time

from mpi4py import MPI

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
out_path, gate = sys.argv[1], sys.argv[2]
iterations = int(sys.argv[3]) if len(sys.argv) > 3 else 40
n = int(sys.argv[4]) if len(sys.argv) > 4 else 48
rows = n // size + (rank < n % size)
first = sum(n // size + (r < n % size) for r in range(rank))
a = [[0.0] * (n + 2) for _ in range(rows + 2)]
for i in range(1, rows + 1):
    for j in range(1, n + 1):
        a[i][j] = ((first + i) * 131 + j * 71) % 97 / 97.0
if rank == 0:
    a[0] = [1.0] * (n + 2)
up = rank - 1 if rank > 0 else MPI.PROC_NULL
down = rank + 1 if rank < size - 1 else MPI.PROC_NULL


def digest(grid: list[list[float]]) -> int:
    h = hashlib.blake2b(digest_size=8)
    for row in grid[1:rows + 1]:
        h.update(struct.pack(f"<{n + 2}d", *row))
    return int.from_bytes(h.digest(), "little")


with open(out_path if rank == 0 else os.devnull, "w") as out:
    for it in range(iterations):
        if it == iterations // 2 and rank == 0:
            while not os.path.exists(gate):
                time.sleep(0.002)
        below = comm.sendrecv(a[1], dest=up, source=down)
        above = comm.sendrecv(a[rows], dest=down, source=up)
        if down != MPI.PROC_NULL:
            a[rows + 1] = below
        if up != MPI.PROC_NULL:
            a[0] = above
        b = [row[:] for row in a]
        for i in range(1, rows + 1):
            ai, am, ap = a[i], a[i - 1], a[i + 1]
            b[i] = [ai[0]] + [0.25 * (am[j] + ap[j] + ai[j - 1] + ai[j + 1]) for j in range(1, n + 1)] + [ai[n + 1]]
        a = b
        total = comm.reduce(digest(a), op=MPI.BXOR, root=0)
        if rank == 0:
            out.write(f"iter {it} {total:016x}\n")
            out.flush()
    total = comm.reduce(digest(a), op=MPI.BXOR, root=0)
    if rank == 0:
        out.write(f"done {total:016x}\n")
