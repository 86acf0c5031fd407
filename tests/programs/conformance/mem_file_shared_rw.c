/* A writable MAP_SHARED mapping of a file: after restore the job's stores reach the file, and
 * the file's writes reach the mapping. */
#include "cf.h"
#include <sys/mman.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    int fd = open(cf_path("data"), O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (ftruncate(fd, 4 * pg)) return 3;
    char *m = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    memcpy(m + 100, "before", 6);
    char flags[512];
    snprintf(flags, sizeof flags, "%s", cf_vmflags(m));
    sc_ready();
    sc_wait_go();
    char buf[8] = {0};
    sc_check(pread(fd, buf, 6, 100) == 6 && memcmp(buf, "before", 6) == 0, "file holds the store made before", "%.6s", buf);
    memcpy(m + pg + 5, "after!", 6);
    sc_check(pread(fd, buf, 6, pg + 5) == 6 && memcmp(buf, "after!", 6) == 0, "a store reaches the file", "%.6s", buf);
    sc_check(pwrite(fd, "viafd", 5, 2 * pg) == 5 && memcmp(m + 2 * pg, "viafd", 5) == 0, "a write reaches the mapping", "%.5s", m + 2*pg);
    cf_same(flags, cf_vmflags(m), "VmFlags");
    return sc_done();
}
