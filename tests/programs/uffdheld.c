/* A mapping registered with a userfaultfd (VmFlags "um") that the job no longer holds:
 * someone outside the job does.  The checkpoint must refuse it, naming the mapping.
 *   uffdheld OUT READY GO
 * Sets up the userfaultfd at descriptor 50, says ready; once GO exists (the test holds
 * the userfaultfd by then) closes it, says "ok closed" in OUT, and waits to be killed. */
#include "selfcheck.h"
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#define PG 4096UL

int main(int argc, char **argv)
{
    sc_init(argc, argv);
    int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
    struct uffdio_api api = { .api = UFFD_API };
    if (fd < 0 || ioctl(fd, UFFDIO_API, &api) != 0 || dup2(fd, 50) != 50) return 3;
    close(fd);
    void *p = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct uffdio_register reg = { .range = { .start = (unsigned long)p, .len = 4 * PG },
                                   .mode = UFFDIO_REGISTER_MODE_MISSING };
    if (p == MAP_FAILED || ioctl(50, UFFDIO_REGISTER, &reg) != 0) return 3;
    sc_ready();
    sc_wait_go();
    close(50);
    sc_check(1, "closed", "%s", "");
    sc_done();
    for (;;) pause();
}
