/* Mappings moved and resized by mremap(2): grown (may move), moved to a fixed address inside a
 * reservation, shrunk, and moved with MREMAP_DONTUNMAP (the old range stays, empty). */
#include "cf.h"
#include <sys/mman.h>

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif
static char before[1 << 16], after[1 << 16];

static void fill(char *p, size_t n, int seed) { for (size_t i = 0; i < n; i++) p[i] = (char)(seed + i * 13); }
static int same(const char *p, size_t n, int seed)
{
    for (size_t i = 0; i < n; i++) if (p[i] != (char)(seed + i * 13)) return 0;
    return 1;
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    int rw = PROT_READ | PROT_WRITE, anon = MAP_PRIVATE | MAP_ANONYMOUS;
    char *a = mmap(NULL, 4 * pg, rw, anon, -1, 0);
    fill(a, 4 * pg, 1);
    char *grown = mremap(a, 4 * pg, 8 * pg, MREMAP_MAYMOVE);
    fill(grown + 4 * pg, 2 * pg, 2);
    char *res = mmap(NULL, 16 * pg, PROT_NONE, anon, -1, 0);
    char *c = mmap(NULL, 2 * pg, rw, anon, -1, 0);
    fill(c, 2 * pg, 3);
    char *moved = mremap(c, 2 * pg, 2 * pg, MREMAP_MAYMOVE | MREMAP_FIXED, res + 5 * pg);
    char *d = mmap(NULL, 8 * pg, rw, anon, -1, 0);
    fill(d, 8 * pg, 4);
    char *shrunk = mremap(d, 8 * pg, 3 * pg, 0);
    char *e = mmap(NULL, 2 * pg, rw, anon, -1, 0);
    fill(e, 2 * pg, 5);
    char *f = mremap(e, 2 * pg, 2 * pg, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL);
    if (grown == MAP_FAILED || moved != res + 5 * pg || shrunk != d || f == MAP_FAILED) return 3;
    sc_open_out();
    cf_maps(before, sizeof before);
    sc_ready();
    sc_wait_go();
    cf_maps(after, sizeof after);
    cf_same(before, after, "/proc/self/maps");
    sc_check(same(grown, 4 * pg, 1) && same(grown + 4 * pg, 2 * pg, 2), "grown mapping", "%s", "");
    int zero = 1;
    for (size_t i = 6 * pg; i < 8 * pg; i++) zero &= grown[i] == 0;
    sc_check(zero, "grown tail still zero", "%s", "");
    sc_check(same(moved, 2 * pg, 3), "moved mapping", "%s", "");
    sc_check(cf_faults(res + 4 * pg, 0) && cf_faults(res + 7 * pg, 0), "reservation around it PROT_NONE", "%s", "");
    sc_check(same(shrunk, 3 * pg, 4), "shrunk mapping", "%s", "");
    sc_check(same(f, 2 * pg, 5), "DONTUNMAP target", "%s", "");
    sc_check(e[0] == 0 && e[pg + 5] == 0, "DONTUNMAP source empty", "%d %d", e[0], e[pg + 5]);
    return sc_done();
}
