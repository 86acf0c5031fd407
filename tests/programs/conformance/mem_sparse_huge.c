/* An 8 GiB MAP_NORESERVE mapping with one page in every 64 MiB written: the written bytes come
 * back, the rest reads zero, and the mapping keeps its size and flags. */
#include "cf.h"
#include <sys/mman.h>

#define SIZE (8ULL << 30)
#define STRIDE (64ULL << 20)

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    char *m = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) return 3;
    for (uint64_t off = 0; off < SIZE; off += STRIDE) {
        m[off + (off / STRIDE) % 4096] = (char)(1 + off / STRIDE);
        m[off + STRIDE - 1] = (char)0xee;
    }
    char flags[512];
    snprintf(flags, sizeof flags, "%s", cf_vmflags(m));
    sc_ready();
    sc_wait_go();
    int wrong = 0, nonzero = 0;
    for (uint64_t off = 0; off < SIZE; off += STRIDE) {
        wrong += m[off + (off / STRIDE) % 4096] != (char)(1 + off / STRIDE);
        wrong += m[off + STRIDE - 1] != (char)0xee;
        nonzero += m[off + STRIDE / 2] != 0;
    }
    sc_check(wrong == 0, "written bytes", "%d wrong", wrong);
    sc_check(nonzero == 0, "untouched pages read zero", "%d not zero", nonzero);
    cf_same(flags, cf_vmflags(m), "VmFlags");
    sc_check(!cf_faults(m + SIZE - 1, 0) && cf_faults(m + SIZE, 0) == cf_faults(m + SIZE, 0), "whole size mapped",
             "%s", "");
    return sc_done();
}
