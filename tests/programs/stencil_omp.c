/* OpenMP 2-D stencil (Jacobi), deterministic: per-thread partial sums are
 * combined in thread order, never by an atomic or reduction of doubles.
 *   stencil_omp OUT GATE1 GATE2 ITERATIONS      (gates as in job.c) */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "gated.h"

#define N 512
#define MAXT 64

int main(int argc, char **argv)
{
    int iters = atoi(argv[4]);
    double *u = calloc((size_t)N * N, sizeof *u), *v = calloc((size_t)N * N, sizeof *v);
    FILE *out = fopen(argv[1], "w");
    for (int i = 0; i < N; i++) u[i] = v[i] = 100.0 + i % 7;
    double partial[MAXT];
    for (int it = 0; it < iters; it++) {
        if (it == iters / 2) gate(argv[2]);
        if (it == iters / 2 + 5) gate(argv[3]);
        int nt = 1;
#pragma omp parallel
        {
            int t = omp_get_thread_num();
#pragma omp single
            nt = omp_get_num_threads();
            double s = 0;
#pragma omp for schedule(static)
            for (int i = 1; i < N - 1; i++)
                for (int j = 1; j < N - 1; j++) {
                    double x = 0.25 * (u[(i - 1) * N + j] + u[(i + 1) * N + j] + u[i * N + j - 1] + u[i * N + j + 1]);
                    s += fabs(x - u[i * N + j]);
                    v[i * N + j] = x;
                }
            partial[t] = s;
        }
        double res = 0;
        for (int t = 0; t < nt; t++) res += partial[t];
        double *tmp = u; u = v; v = tmp;
        fprintf(out, "iteration %d residual %.15e threads %d\n", it, res, nt);
        fflush(out);
    }
    fprintf(out, "done\n");
    fclose(out);
    return 0;
}
