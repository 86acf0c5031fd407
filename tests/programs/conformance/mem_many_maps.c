/* 400 small anonymous mappings with four protections (some merged by the kernel), each page
 * holding its own pattern: /proc/self/maps and every page come back the same. */
#include "cf.h"
#include <sys/mman.h>

#define N 400
static char *maps_[N];
static size_t sizes[N];
static char before[1 << 20], after[1 << 20];

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    const int prots[4] = {PROT_READ, PROT_READ | PROT_WRITE, PROT_NONE, PROT_READ | PROT_EXEC};
    long page = sysconf(_SC_PAGESIZE);
    for (int i = 0; i < N; i++) {
        sizes[i] = (size_t)(1 + i % 3) * (size_t)page;
        maps_[i] = mmap(NULL, sizes[i], PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (maps_[i] == MAP_FAILED) return 3;
        for (size_t off = 0; off < sizes[i]; off += 64) maps_[i][off] = (char)(i * 7 + off / 64);
        mprotect(maps_[i], sizes[i], prots[i % 4]);
    }
    sc_open_out();
    cf_maps(before, sizeof before);
    sc_ready();
    sc_wait_go();
    cf_maps(after, sizeof after);
    cf_same(before, after, "/proc/self/maps");
    int wrong = 0;
    for (int i = 0; i < N; i++) {
        mprotect(maps_[i], sizes[i], PROT_READ);
        for (size_t off = 0; off < sizes[i]; off += 64)
            if (maps_[i][off] != (char)(i * 7 + off / 64)) wrong++;
    }
    sc_check(wrong == 0, "every page's pattern", "%d bytes wrong", wrong);
    return sc_done();
}
