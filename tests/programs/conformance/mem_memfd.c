/* A sealed memfd, mapped shared and held by a descriptor at an offset: name, size, seals, data,
 * offset, and the mapping and the descriptor being one object. */
#include "cf.h"
#include <sys/mman.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    int fd = memfd_create("cf-memfd", MFD_ALLOW_SEALING | MFD_CLOEXEC);
    if (ftruncate(fd, 5 * pg)) return 3;
    char *m = mmap(NULL, 5 * pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    for (size_t i = 0; i < 5 * pg; i++) m[i] = (char)(i * 3);
    lseek(fd, 1234, SEEK_SET);
    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW);
    char link[256], link_after[256];
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, link, sizeof link - 1);
    link[n > 0 ? n : 0] = 0;
    int seals = fcntl(fd, F_GET_SEALS), fdflags = fcntl(fd, F_GETFD), flflags = fcntl(fd, F_GETFL);
    sc_ready();
    sc_wait_go();
    n = readlink(path, link_after, sizeof link_after - 1);
    link_after[n > 0 ? n : 0] = 0;
    cf_same(link, link_after, "memfd name");
    struct stat st;
    fstat(fd, &st);
    sc_check(st.st_size == (off_t)(5 * pg), "size", "%lld", (long long)st.st_size);
    sc_check(fcntl(fd, F_GET_SEALS) == seals, "seals", "%#x, before %#x", fcntl(fd, F_GET_SEALS), seals);
    sc_check(fcntl(fd, F_GETFD) == fdflags && fcntl(fd, F_GETFL) == flflags, "descriptor flags", "%#x %#x",
             fcntl(fd, F_GETFD), fcntl(fd, F_GETFL));
    sc_check(lseek(fd, 0, SEEK_CUR) == 1234, "offset", "%lld", (long long)lseek(fd, 0, SEEK_CUR));
    int wrong = 0;
    for (size_t i = 0; i < 5 * pg; i++) wrong += m[i] != (char)(i * 3);
    sc_check(wrong == 0, "data", "%d wrong", wrong);
    sc_check(pwrite(fd, "via fd", 6, 2 * pg) == 6 && memcmp(m + 2 * pg, "via fd", 6) == 0,
             "descriptor and mapping are one object", "%s", "");
    sc_check(ftruncate(fd, pg) < 0 && errno == EPERM, "shrink seal enforced", "errno %d", errno);
    return sc_done();
}
