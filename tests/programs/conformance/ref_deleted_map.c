/* Must be refused: a file mapped shared and then unlinked (no descriptor left). */
#include "cf.h"
#include <sys/mman.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int fd = open(cf_path("gone"), O_RDWR | O_CREAT, 0600);
    if (ftruncate(fd, 4096)) return 3;
    char *m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
    if (pwrite(fd, "mapped", 6, 0) != 6) return 3;
    close(fd);
    unlink(cf_path("gone"));
    sc_ready();
    sc_wait_go();
    sc_check(memcmp(m, "mapped", 6) == 0, "mapping intact", "%s", "");
    return sc_done();
}
