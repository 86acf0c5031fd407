/* A 2-D Jacobi stencil over MPI, deterministic: rows split among the ranks, a halo exchange
 * with both neighbours each iteration (MPI_Sendrecv), and the whole grid's digest (a 64-bit
 * FNV-1a hash of each rank's rows, combined with MPI_BXOR: the same whatever order the reduction
 * takes) printed by rank 0 every iteration.
 *
 *   mpi_jacobi OUT GATE [ITERATIONS [N]]
 *
 * Rank 0 writes "iter K DIGEST" lines to OUT; before iteration ITERATIONS/2 it waits until GATE
 * exists (the test checkpoints the job there), the other ranks waiting for it in MPI.  Last line:
 * "done DIGEST". */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t fnv(const void *p, size_t n, uint64_t h)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (argc < 3) {
        if (rank == 0)
            fprintf(stderr, "usage: %s OUT GATE [ITERATIONS [N]]\n", argv[0]);
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    int iterations = argc > 3 ? atoi(argv[3]) : 60, n = argc > 4 ? atoi(argv[4]) : 256;
    int rows = n / size + (rank < n % size);
    /* rows + 2 halo rows, n columns + 2 boundary columns */
    size_t w = (size_t)n + 2;
    double *a = calloc((size_t)(rows + 2) * w, sizeof *a), *b = calloc((size_t)(rows + 2) * w, sizeof *b);
    int first = 0;
    for (int r = 0; r < rank; r++)
        first += n / size + (r < n % size);
    for (int i = 1; i <= rows; i++)
        for (size_t j = 1; j <= (size_t)n; j++)
            a[i * w + j] = (double)(((first + i) * 131 + (int)j * 71) % 97) / 97.0;
    if (rank == 0)
        for (size_t j = 0; j < w; j++)
            a[j] = b[j] = 1.0;          /* a hot top edge */
    FILE *out = NULL;
    if (rank == 0) {
        out = fopen(argv[1], "w");
        if (!out)
            MPI_Abort(MPI_COMM_WORLD, 3);
    }
    int up = rank > 0 ? rank - 1 : MPI_PROC_NULL, down = rank < size - 1 ? rank + 1 : MPI_PROC_NULL;
    for (int it = 0; it < iterations; it++) {
        if (it == iterations / 2 && rank == 0)
            while (access(argv[2], F_OK) != 0)
                usleep(2000);
        MPI_Sendrecv(&a[1 * w], (int)w, MPI_DOUBLE, up, 0, &a[(size_t)(rows + 1) * w], (int)w, MPI_DOUBLE, down, 0,
                     MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        MPI_Sendrecv(&a[(size_t)rows * w], (int)w, MPI_DOUBLE, down, 1, &a[0], (int)w, MPI_DOUBLE, up, 1,
                     MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        for (int i = 1; i <= rows; i++)
            for (size_t j = 1; j <= (size_t)n; j++)
                b[i * w + j] = 0.25 * (a[(i - 1) * w + j] + a[(i + 1) * w + j] + a[i * w + j - 1] + a[i * w + j + 1]);
        double *t = a;
        a = b;
        b = t;
        uint64_t mine = fnv(&a[w], (size_t)rows * w * sizeof *a, 1469598103934665603ull), all = 0;
        MPI_Reduce(&mine, &all, 1, MPI_UINT64_T, MPI_BXOR, 0, MPI_COMM_WORLD);
        if (rank == 0) {
            fprintf(out, "iter %d %016llx\n", it, (unsigned long long)all);
            fflush(out);
        }
    }
    uint64_t mine = fnv(&a[w], (size_t)rows * w * sizeof *a, 7), all = 0;
    MPI_Reduce(&mine, &all, 1, MPI_UINT64_T, MPI_BXOR, 0, MPI_COMM_WORLD);
    if (rank == 0) {
        fprintf(out, "done %016llx\n", (unsigned long long)all);
        fclose(out);
    }
    free(a);
    free(b);
    MPI_Finalize();
    return 0;
}
