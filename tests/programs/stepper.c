/* A job whose memory keeps changing shape, for incremental checkpoints:
 *   stepper OUT STEPS GATE_EVERY GATEDIR
 * Each step rewrites a sliding window of a 48 MiB array, reallocates heap
 * blocks (some large enough to be their own mappings), grows a buffer with
 * mremap, drops pages with MADV_DONTNEED, then appends a line with a checksum
 * of everything.  Before step k*GATE_EVERY it waits (spinning) for the file
 * GATEDIR/go<k>.  Deterministic: no time, PID or address in its output.
 * With STEPPER_DEFER_TERM=1 in its environment, SIGTERM waits for the end of a step: it is
 * blocked but for a moment after each step's line (a pending one ends the job there). */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#define ARRAY (48u << 20)
#define NBLK 64

static uint64_t fnv(const unsigned char *p, size_t n, uint64_t h)
{
    for (size_t i = 0; i < n; i += 8) h = (h ^ *(const uint64_t *)(p + i)) * 1099511628211ull;
    return h;
}

int main(int argc, char **argv)
{
    if (argc != 5) { fprintf(stderr, "usage: stepper OUT STEPS GATE_EVERY GATEDIR\n"); return 2; }
    int steps = atoi(argv[2]), every = atoi(argv[3]);
    const char *defer = getenv("STEPPER_DEFER_TERM");
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    if (defer && *defer == '1') sigprocmask(SIG_BLOCK, &term, NULL);
    else sigemptyset(&term);
    FILE *out = fopen(argv[1], "w");
    unsigned char *arr = mmap(NULL, ARRAY, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (size_t i = 0; i < ARRAY; i += 8) *(uint64_t *)(arr + i) = i * 2654435761u;
    unsigned char *blk[NBLK] = { 0 };
    size_t blen[NBLK] = { 0 };
    size_t glen = 1 << 16;
    unsigned char *grow = mmap(NULL, glen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(grow, 1, glen);
    for (int s = 0; s < steps; s++) {
        if (every > 0 && s % every == 0) {
            char path[4096];
            snprintf(path, sizeof path, "%s/go%d", argv[4], s / every);
            volatile uint64_t spin = 0;
            while (access(path, F_OK) != 0)
                for (int i = 0; i < 100000; i++) spin += i;
        }
        size_t win = (size_t)(s * 97) % (ARRAY / 4096 - 256);
        for (size_t p = win; p < win + 256; p += 3) memset(arr + p * 4096, s + 1, 4096);
        int b = s % NBLK;
        free(blk[b]);
        blen[b] = (s % 5 == 0) ? (size_t)(200000 + s * 4096) : (size_t)(100 + s * 37);   /* some mmap'd */
        blk[b] = malloc(blen[b]);
        memset(blk[b], s, blen[b]);
        if (s % 7 == 3) {
            unsigned char *g = mremap(grow, glen, glen + 8192, MREMAP_MAYMOVE);
            if (g == MAP_FAILED) { perror("mremap"); return 1; }
            grow = g;
            memset(grow + glen, s, 8192);
            glen += 8192;
        }
        if (s % 11 == 5) madvise(arr + ((size_t)s * 131 % (ARRAY / 4096 - 64)) * 4096, 64 * 4096, MADV_DONTNEED);
        uint64_t h = fnv(arr, ARRAY, 1469598103934665603ull);
        h = fnv(grow, glen, h);
        for (int i = 0; i < NBLK; i++) if (blk[i]) h = fnv(blk[i], blen[i] & ~7ul, h);
        fprintf(out, "step %d hash %016llx grow %zu\n", s, (unsigned long long)h, glen);
        fflush(out);
        sigprocmask(SIG_UNBLOCK, &term, NULL);         /* (an empty set without STEPPER_DEFER_TERM) */
        sigprocmask(SIG_BLOCK, &term, NULL);
    }
    fprintf(out, "done\n");
    fclose(out);
    return 0;
}
