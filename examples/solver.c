/* A small stand-in for an HPC job: Jacobi iterations of the 2-D heat equation
 * on a 1024x1024 grid, one residual per iteration written to OUT.
 *   solver OUT ITERATIONS
 * Deterministic: the same binary prints the same bytes on every run, so a
 * restored run can be compared with an uninterrupted one with cmp(1). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define N 1024

int main(int argc, char **argv)
{
    if (argc != 3) { fprintf(stderr, "usage: solver OUT ITERATIONS\n"); return 2; }
    int iters = atoi(argv[2]);
    double *u = calloc((size_t)N * N, sizeof *u), *v = calloc((size_t)N * N, sizeof *v);
    FILE *out = fopen(argv[1], "w");
    if (!u || !v || !out) { perror("solver"); return 1; }
    for (int i = 0; i < N; i++) u[i] = v[i] = 100.0;          /* hot top edge */
    for (int it = 0; it < iters; it++) {
        double res = 0;
        for (int i = 1; i < N - 1; i++)
            for (int j = 1; j < N - 1; j++) {
                double x = 0.25 * (u[(i - 1) * N + j] + u[(i + 1) * N + j] + u[i * N + j - 1] + u[i * N + j + 1]);
                res += fabs(x - u[i * N + j]);
                v[i * N + j] = x;
            }
        double *t = u; u = v; v = t;
        fprintf(out, "iteration %4d residual %.12e\n", it, res);
        fflush(out);
    }
    fprintf(out, "done\n");
    fclose(out);
    return 0;
}
