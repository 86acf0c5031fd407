/* A read-only MAP_SHARED mapping of a file at an offset: after restore it shows the file, and a
 * write to the file made after restore through a descriptor. */
#include "cf.h"
#include <sys/mman.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    int fd = open(cf_path("data"), O_RDWR | O_CREAT | O_TRUNC, 0600);
    for (int p = 0; p < 8; p++) {
        char c[4096];
        memset(c, '0' + p, sizeof c);
        if (write(fd, c, sizeof c) != (ssize_t)sizeof c) return 3;
    }
    char *m = mmap(NULL, 4 * pg, PROT_READ, MAP_SHARED, fd, 2 * pg);
    char flags[512];
    snprintf(flags, sizeof flags, "%s", cf_vmflags(m));
    sc_ready();
    sc_wait_go();
    sc_check(m[0] == '2' && m[4 * pg - 1] == '5', "mapping shows the file from page 2", "%c %c", m[0], m[4 * pg - 1]);
    sc_check(pwrite(fd, "shared!", 7, 3 * pg + 10) == 7, "write to the file", "%s", "");
    sc_check(memcmp(m + pg + 10, "shared!", 7) == 0, "mapping sees the write", "%.7s", m + pg + 10);
    cf_same(flags, cf_vmflags(m), "VmFlags");
    sc_check(cf_faults(m, 1), "still read-only", "%s", "");
    return sc_done();
}
