/* A MAP_GROWSDOWN mapping grown by touching below it before the checkpoint: its data, its start
 * and its "gd" flag come back, and it still grows on a touch below. */
#include "cf.h"
#include <sys/mman.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    char *res = mmap(NULL, 64 << 20, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(res, 64 << 20);
    char *top = res + (48 << 20);
    char *g = mmap(top, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN | MAP_FIXED,
                   -1, 0);
    if (g != top) return 3;
    for (size_t i = 0; i < 4 * pg; i++) g[i] = (char)(i ^ 0x5a);
    volatile char *below = g - 3 * pg;
    *below = 0x42;                                 /* grows the mapping by three pages */
    char flags_before[512];
    snprintf(flags_before, sizeof flags_before, "%s", cf_vmflags(g));
    sc_ready();
    sc_wait_go();
    sc_check(strstr(cf_vmflags(g), " gd") != NULL, "still grows down", "VmFlags%s", cf_vmflags(g));
    cf_same(flags_before, cf_vmflags(g), "VmFlags");
    sc_check(*below == 0x42, "data in the grown part", "%d", *below);
    int wrong = 0;
    for (size_t i = 0; i < 4 * pg; i++) wrong += g[i] != (char)(i ^ 0x5a);
    sc_check(wrong == 0, "data of the original part", "%d wrong", wrong);
    sc_check(strcmp(cf_vmflags((const char *)below), cf_vmflags(g)) == 0, "grown part is the same mapping",
             "%s", "");
    volatile char *further = g - 10 * pg;
    sc_check(!cf_faults(further, 1), "grows again after restore", "%s", "");
    return sc_done();
}
