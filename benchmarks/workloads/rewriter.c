/* A 2 GiB job rewriting a fixed fraction of its pages per second:
 *   rewriter READYFILE RATE_PERMILLE_PER_S [ITERFILE]
 * 2 GiB of HPC-like data (40 % smooth float64 field, 30 % noisy float64, 30 %
 * int64), then forever: rewrite 64 pages at pseudo-random places (values
 * perturbed, as a solver's would be), paced to RATE/1000 of all pages per
 * second (0: as fast as it can).  Every second it writes its iteration count
 * to ITERFILE. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#define SIZE (2ul << 30)
#define PAGE 4096
#define BATCH 64

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

int main(int argc, char **argv)
{
    double rate = atof(argv[2]) / 1000.0 * (SIZE / PAGE);      /* pages per second */
    double *d = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (d == MAP_FAILED) { perror("mmap"); return 1; }
    size_t n = SIZE / 8, smooth = n * 4 / 10, noisy = n * 7 / 10;
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < n; i++) {
        if (i < smooth) d[i] = sin(i * 1e-5) * 300.0 + 273.15;
        else if (i < noisy) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; d[i] = (double)(x >> 11) * 0x1.0p-53; }
        else ((int64_t *)d)[i] = (int64_t)i;
    }
    FILE *f = fopen(argv[1], "w");
    fprintf(f, "ready\n");
    fclose(f);
    double start = now(), last_report = start;
    uint64_t iters = 0, pages = 0;
    for (;;) {
        for (int b = 0; b < BATCH; b++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            size_t page = (size_t)(x % (SIZE / PAGE));
            double *p = d + page * (PAGE / 8);
            for (int i = 0; i < PAGE / 8; i += 2) p[i] = p[i] * 1.0000001 + 1e-9 * i;
        }
        iters++;
        pages += BATCH;
        double t = now();
        if (argc > 3 && t - last_report >= 1.0) {
            FILE *it = fopen(argv[3], "w");
            fprintf(it, "%llu %.3f\n", (unsigned long long)iters, t - start);
            fclose(it);
            last_report = t;
        }
        if (rate > 0) {
            double ahead = pages / rate - (t - start);
            if (ahead > 0) { struct timespec ts = { (time_t)ahead, (long)((ahead - (time_t)ahead) * 1e9) }; nanosleep(&ts, NULL); }
        }
    }
}
