/* Pages dropped with MADV_DONTNEED (zero again) and MADV_REMOVE-free ones kept: after restore
 * the dropped ones read zero, the rest keep their data. */
#include "cf.h"
#include <sys/mman.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    char *m = mmap(NULL, 16 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(m, 0x77, 16 * pg);
    madvise(m + 4 * pg, 4 * pg, MADV_DONTNEED);
    m[5 * pg + 9] = 1;                                  /* one of them written again */
    sc_ready();
    sc_wait_go();
    int wrong = 0;
    for (size_t i = 0; i < 16 * pg; i++) {
        char want = (i >= 4 * pg && i < 8 * pg) ? (i == 5 * pg + 9) : 0x77;
        wrong += m[i] != want;
    }
    sc_check(wrong == 0, "dropped pages zero, others kept", "%d wrong", wrong);
    return sc_done();
}
