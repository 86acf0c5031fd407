/* Many mappings: N one-page anonymous VMAs, alternately read-only and read-write (so that
 * none merges with its neighbours), every page filled with its own pattern.
 *   manymaps OUT READY GO N
 * After READY, each time the file GO.dirty<k> appears (k = 1, 2, ...) it rewrites every
 * third read-write page with generation k and answers with GO.dirtied<k>: a test (or
 * benchmarks/manymaps.py) checkpoints in between, incrementally.  After GO it checks
 * every page, the layout (/proc/self/maps: one line per mapping, protections alternating)
 * and that a read-write page can still be written. */
#define _GNU_SOURCE
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "selfcheck.h"

#define PAGE 4096

static unsigned char *base;
static long n;
static int *gen;            /* the generation each page was last written with */

static int writable(long i) { return i % 2 == 1; }

static void fill(long i, int g)
{
    uint64_t *w = (uint64_t *)(base + i * PAGE);
    for (int k = 0; k < PAGE / 8; k++)
        w[k] = ((uint64_t)i << 32) ^ ((uint64_t)g << 16) ^ (uint64_t)k;
    gen[i] = g;
}

static int intact(long i)
{
    const uint64_t *w = (const uint64_t *)(base + i * PAGE);
    for (int k = 0; k < PAGE / 8; k++)
        if (w[k] != (((uint64_t)i << 32) ^ ((uint64_t)gen[i] << 16) ^ (uint64_t)k))
            return 0;
    return 1;
}

static int exists(const char *suffix, int k)
{
    char path[4096];
    snprintf(path, sizeof path, "%s.%s%d", sc_go_path, suffix, k);
    return access(path, F_OK) == 0;
}

static void answer(int k)
{
    char path[4096];
    snprintf(path, sizeof path, "%s.dirtied%d", sc_go_path, k);
    FILE *f = fopen(path, "w");
    if (!f) exit(6);
    fclose(f);
}

/* Mappings inside [base, base + n pages) listed by /proc/self/maps, and how many alternate right. */
static void layout(long *count, long *alternating)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    uintptr_t lo = (uintptr_t)base, hi = lo + (uintptr_t)n * PAGE;
    *count = *alternating = 0;
    while (f && fgets(line, sizeof line, f)) {
        uintptr_t s, e;
        char perms[5];
        if (sscanf(line, "%lx-%lx %4s", &s, &e, perms) != 3 || s < lo || e > hi)
            continue;
        long i = (long)((s - lo) / PAGE);
        (*count)++;
        *alternating += e - s == PAGE && perms[1] == (writable(i) ? 'w' : '-') && perms[0] == 'r';
    }
    if (f) fclose(f);
}

int main(int argc, char **argv)
{
    sc_init(argc, argv);
    n = argc > 4 ? atol(argv[4]) : 10000;
    gen = calloc((size_t)n, sizeof *gen);
    /* Between two PROT_NONE pages: no neighbour of ours merges with the first or the last. */
    unsigned char *all = mmap(NULL, (size_t)(n + 2) * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (all == MAP_FAILED || !gen)
        return 3;
    base = all + PAGE;
    if (mprotect(base, (size_t)n * PAGE, PROT_READ | PROT_WRITE))
        return 3;
    for (long i = 0; i < n; i++)
        fill(i, 0);
    for (long i = 0; i < n; i += 2)
        if (mprotect(base + i * PAGE, PAGE, PROT_READ))
            return 4;
    sc_ready();
    int k = 1;
    while (access(sc_go_path, F_OK) != 0) {
        if (exists("dirty", k)) {
            for (long i = 1; i < n; i += 6)
                fill(i, k);
            answer(k++);
        } else {
            usleep(1000);
        }
    }
    long bad = 0, first_bad = -1;
    for (long i = 0; i < n; i++)
        if (!intact(i) && bad++ == 0)
            first_bad = i;
    sc_check(bad == 0, "every page holds what was last written to it", "%ld pages wrong, the first %ld", bad,
             first_bad);
    long count, alternating;
    layout(&count, &alternating);
    sc_check(count == n && alternating == n, "one mapping per page, protections alternating",
             "%ld mappings, %ld as expected, of %ld", count, alternating, n);
    fill(n - 1 - (n % 2 == 0 ? 0 : 1), 99);
    sc_check(intact(n - 1 - (n % 2 == 0 ? 0 : 1)), "a read-write page takes writes", "it does not");
    return sc_done();
}
