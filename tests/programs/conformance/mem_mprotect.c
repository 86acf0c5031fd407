/* One mapping split by mprotect(2) into pages of five protections, each with data: the split,
 * the data and the faults (write to read-only, any access to PROT_NONE) come back. */
#include "cf.h"
#include <sys/mman.h>

static char before[1 << 16], after[1 << 16];

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    char *m = mmap(NULL, 10 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (size_t i = 0; i < 10 * pg; i++) m[i] = (char)(i * 31 + i / pg);
    const int prot[10] = {PROT_READ, PROT_NONE, PROT_READ | PROT_WRITE, PROT_READ, PROT_NONE, PROT_NONE,
                          PROT_READ | PROT_EXEC, PROT_READ | PROT_WRITE | PROT_EXEC, PROT_WRITE | PROT_READ,
                          PROT_READ};
    for (int p = 0; p < 10; p++) mprotect(m + p * pg, pg, prot[p]);
    sc_open_out();
    cf_maps(before, sizeof before);
    sc_ready();
    sc_wait_go();
    cf_maps(after, sizeof after);
    cf_same(before, after, "/proc/self/maps");
    int faults_ok = 1;
    for (int p = 0; p < 10; p++) {
        int rd = cf_faults(m + p * pg + 1, 0), wr = cf_faults(m + p * pg + 2, 1);
        faults_ok &= rd == !(prot[p] & PROT_READ) && wr == !(prot[p] & PROT_WRITE);
    }
    sc_check(faults_ok, "faults as the protections say", "%s", "");
    mprotect(m, 10 * pg, PROT_READ);
    int wrong = 0;
    for (size_t i = 0; i < 10 * pg; i++) wrong += m[i] != (char)(i * 31 + i / pg);
    sc_check(wrong == 0, "data of every page, PROT_NONE ones too", "%d bytes wrong", wrong);
    return sc_done();
}
