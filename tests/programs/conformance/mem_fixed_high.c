/* Mappings at fixed addresses chosen by the job (low, and high in the address space): same
 * addresses, same data. */
#include "cf.h"
#include <sys/mman.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    char *lo = mmap((void *)0x10000000, 1 << 16, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    char *hi = mmap((void *)0x7e0000000000, 1 << 16, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (lo != (void *)0x10000000 || hi != (void *)0x7e0000000000) return 3;
    strcpy(lo, "low memory");
    strcpy(hi + 40000, "high memory");
    sc_ready();
    sc_wait_go();
    sc_check(strcmp(lo, "low memory") == 0, "low mapping", "%.16s", lo);
    sc_check(strcmp(hi + 40000, "high memory") == 0, "high mapping", "%.16s", hi + 40000);
    sc_check(mmap((void *)0x10000000, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0)
             == MAP_FAILED && errno == EEXIST, "still mapped there", "errno %d", errno);
    return sc_done();
}
