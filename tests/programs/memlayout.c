/* Memory of many kinds, then idle: for memory-fidelity tests.
 *   memlayout DATAFILE READYFILE RESULTFILE
 * Sets up its mappings, records a checksum of each, writes READYFILE and
 * sleeps in pause().  On SIGUSR1 it checks every mapping against its
 * checksum, writes "ok" or the first mismatch to RESULTFILE and exits 0/1. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#define PR_SET_VMA_ANON_NAME 0
#endif

struct region { const char *name; unsigned char *p; size_t len; int prot; uint64_t sum; };
static struct region R[16];
static int nr;
static volatile sig_atomic_t check;
static void on_usr1(int s) { (void)s; check = 1; }

static uint64_t fnv(const unsigned char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static unsigned char *add(const char *name, unsigned char *p, size_t len, int prot)
{
    R[nr++] = (struct region){ name, p, len, prot, 0 };
    return p;
}

int main(int argc, char **argv)
{
    size_t pg = 4096;
    int dfd = open(argv[1], O_RDONLY);
    /* anonymous, partly written, with holes and a zero-filled stretch */
    unsigned char *a = add("anon", mmap(0, 256 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
                           256 * pg, PROT_READ | PROT_WRITE);
    for (size_t i = 0; i < 256 * pg; i += 3 * pg) memset(a + i, (int)(i / pg) + 1, pg);
    memset(a + 200 * pg, 0, 10 * pg);
    volatile unsigned char sink = a[250 * pg];   /* read fault: the shared zero page */
    (void)sink;
    /* read-only after writing; no-access after writing; write+exec */
    unsigned char *ro = add("ro", mmap(0, 8 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
                            8 * pg, PROT_READ);
    memset(ro, 0x5a, 8 * pg);
    mprotect(ro, 8 * pg, PROT_READ);
    unsigned char *none = add("none", mmap(0, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
                              4 * pg, PROT_NONE);
    memset(none, 0xa5, 4 * pg);
    unsigned char *rwx = add("rwx", mmap(0, 2 * pg, PROT_READ | PROT_WRITE | PROT_EXEC,
                                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), 2 * pg, PROT_READ | PROT_WRITE | PROT_EXEC);
    memset(rwx, 0xc3, 2 * pg);
    /* one mapping split in three by mprotect */
    unsigned char *split = add("split", mmap(0, 12 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
                               12 * pg, PROT_READ | PROT_WRITE);
    for (size_t i = 0; i < 12 * pg; i++) split[i] = (unsigned char)(i * 13);
    mprotect(split + 4 * pg, 4 * pg, PROT_READ);
    /* a named anonymous mapping */
    unsigned char *named = add("named", mmap(0, 3 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
                               3 * pg, PROT_READ | PROT_WRITE);
    memset(named, 7, 3 * pg);
    prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, (unsigned long)named, 3 * pg, (unsigned long)"incr-test");
    /* private file mapping: some pages copied-on-write (one of them to zeros), others the file's */
    unsigned char *file = add("file", mmap(0, 16 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE, dfd, 0),
                              16 * pg, PROT_READ | PROT_WRITE);
    file[1 * pg] ^= 0xff;
    memset(file + 5 * pg, 0, pg);
    file[9 * pg + 17] = 42;
    volatile unsigned char sink2 = file[12 * pg];
    (void)sink2;
    /* read-only shared file mapping */
    add("shared-ro", mmap(0, 4 * pg, PROT_READ, MAP_SHARED, dfd, 16 * pg), 4 * pg, PROT_READ);
    /* a large, barely touched mapping */
    unsigned char *huge = add("huge", mmap(0, 1u << 28, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                                           -1, 0), 1u << 28, PROT_READ | PROT_WRITE);
    huge[0] = 1; huge[(1u << 27) + 5] = 2; huge[(1u << 28) - 1] = 3;
    /* brk heap */
    unsigned char *heap = add("heap", malloc(100000), 100000, PROT_READ | PROT_WRITE);
    for (int i = 0; i < 100000; i++) heap[i] = (unsigned char)(i * 7 + 1);

    for (int i = 0; i < nr; i++) {
        if (!(R[i].prot & PROT_READ)) mprotect(R[i].p, R[i].len, PROT_READ);
        R[i].sum = fnv(R[i].p, R[i].len);
        if (!(R[i].prot & PROT_READ)) mprotect(R[i].p, R[i].len, R[i].prot);
    }
    signal(SIGUSR1, on_usr1);
    FILE *ready = fopen(argv[2], "w");
    fprintf(ready, "%d\n", getpid());
    fclose(ready);
    while (!check) pause();
    FILE *res = fopen(argv[3], "w");
    int bad = 0;
    for (int i = 0; i < nr && !bad; i++) {
        if (!(R[i].prot & PROT_READ)) mprotect(R[i].p, R[i].len, PROT_READ);
        if (fnv(R[i].p, R[i].len) != R[i].sum) { fprintf(res, "mismatch in %s\n", R[i].name); bad = 1; }
    }
    if (!bad) fprintf(res, "ok\n");
    fclose(res);
    return bad;
}
