/* A POSIX shared memory object (/dev/shm) mapped shared and kept open: same data, one object
 * with the file (a write through the descriptor shows in the mapping). */
#include "cf.h"
#include <sys/mman.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    char name[64];
    snprintf(name, sizeof name, "/incr-cf-%d", getpid());
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0 || ftruncate(fd, 8192)) return 3;
    char *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    strcpy(m + 4100, "posix shm");
    sc_ready();
    sc_wait_go();
    sc_check(strcmp(m + 4100, "posix shm") == 0, "data", "%.12s", m + 4100);
    sc_check(pwrite(fd, "fd!", 3, 10) == 3 && memcmp(m + 10, "fd!", 3) == 0, "descriptor and mapping one object",
             "%s", "");
    char path[128];
    snprintf(path, sizeof path, "/dev/shm%s", name);
    struct stat a, b;
    sc_check(stat(path, &a) == 0 && fstat(fd, &b) == 0 && a.st_ino == b.st_ino, "still the named object", "%s", "");
    shm_unlink(name);
    return sc_done();
}
