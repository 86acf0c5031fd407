/* A 1 GiB job for the benchmarks: maps 1 GiB, of which RESIDENT_MIB are
 * written (40 % a smooth float64 field, 30 % noisy float64, 30 % int64
 * counters: HPC-like data), then writes READYFILE and touches one page every
 * 10 ms until killed.
 *   gib READYFILE [RESIDENT_MIB=697]
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

int main(int argc, char **argv)
{
    size_t total = 1ul << 30, resident = (size_t)(argc > 2 ? atol(argv[2]) : 697) << 20;
    double *d = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (d == MAP_FAILED) { perror("mmap"); return 1; }
    size_t n = resident / 8, smooth = n * 4 / 10, noisy = n * 7 / 10;
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < n; i++) {
        if (i < smooth) {
            d[i] = sin(i * 1e-5) * 300.0 + 273.15;
        } else if (i < noisy) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            d[i] = (double)(x >> 11) * 0x1.0p-53;
        } else {
            ((int64_t *)d)[i] = (int64_t)i;
        }
    }
    FILE *f = fopen(argv[1], "w");
    fprintf(f, "ready\n");
    fclose(f);
    struct timespec ts = { 0, 10 * 1000 * 1000 };
    for (uint64_t k = 0;; k++) {
        d[(k * 512) % n] += 1.0;
        nanosleep(&ts, NULL);
    }
}
