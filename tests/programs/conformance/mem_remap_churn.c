/* Mappings replaced all the time while the job is checkpointed: a region unmapped and mapped again
 * at the same address (MAP_FIXED) with new contents each turn, another moved back and forth
 * with mremap, a third's pages dropped (MADV_DONTNEED) and rewritten.  Whatever instant the
 * freeze caught, each region's pages must tell one consistent story afterwards: the pages of the
 * turn under way hold that turn's number, the rest the last finished turn's -- never a page of an
 * older turn (a tracker that missed a new mapping, or a stale page from the previous checkpoint). */
#include "cf.h"
#include <sys/mman.h>

#ifndef PAGES
#define PAGES 64                /* tests/test_incremental.py builds it larger */
#endif
#define PG 4096

static volatile uint64_t done_fixed, done_moved, done_dropped;     /* turns finished, per region */

static int consistent(const char *base, uint64_t done, const char *what)
{
    /* pages [0, k) may hold done + 1 (the turn under way), the rest must hold done */
    int p = 0;
    while (p < PAGES && *(const uint64_t *)(base + (size_t)p * PG) == done + 1) p++;
    int q = p;
    while (q < PAGES && *(const uint64_t *)(base + (size_t)q * PG) == done) q++;
    return sc_check(q == PAGES, what, "turn %llu: page %d holds %llu", (unsigned long long)done, q,
                    q < PAGES ? (unsigned long long)*(const uint64_t *)(base + (size_t)q * PG) : 0ULL);
}

static void fill(char *base, uint64_t turn)
{
    for (int p = 0; p < PAGES; p++) *(volatile uint64_t *)(base + (size_t)p * PG) = turn;
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    size_t len = (size_t)PAGES * PG;
    char *fixed = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *area = mmap(NULL, 3 * len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    char *spot[2] = {area, area + 2 * len};            /* the moving region's two homes */
    char *moved = mmap(spot[0], len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    char *dropped = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (fixed == MAP_FAILED || area == MAP_FAILED || moved == MAP_FAILED || dropped == MAP_FAILED) return 3;
    fill(fixed, 0);
    fill(moved, 0);
    fill(dropped, 0);
    sc_ready();
    uint64_t turn = 0;
    int calm = 0;
    while (access(sc_go_path, F_OK) != 0) {
        if (access(cf_path("calm"), F_OK) == 0) {
            /* WORK/calm: no more churn (tests/test_incremental.py checkpoints the job calm) */
            if (!calm) calm = close(open(cf_path("calmed"), O_CREAT | O_WRONLY, 0600)) == 0;
            continue;
        }
        turn++;
        if (munmap(fixed, len) || mmap(fixed, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                                       -1, 0) != fixed)
            return 5;
        fill(fixed, turn);
        done_fixed = turn;
        char *to = spot[turn & 1];
        moved = mremap(moved, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to);
        if (moved != to) return 6;
        fill(moved, turn);
        done_moved = turn;
        if (madvise(dropped, len, MADV_DONTNEED)) return 7;
        fill(dropped, turn);
        done_dropped = turn;
    }
    consistent(fixed, done_fixed, "region mapped anew each turn");
    consistent(moved, done_moved, "region moved each turn");
    consistent(dropped, done_dropped, "region dropped and rewritten each turn");
    sc_check(turn > 0, "turns were taken", "%llu", (unsigned long long)turn);
    return sc_done();
}
