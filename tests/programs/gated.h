/* What the gated test programs share: wait at a gate file, and read or write a whole
 * buffer or exit.  A gate spins (rather than sleeping) so that a checkpoint finds the
 * job running user code. */
#ifndef INCR_TEST_GATED_H
#define INCR_TEST_GATED_H
#include <stdint.h>
#include <unistd.h>

static inline void gate(const char *path)
{
    volatile uint64_t spin = 0;
    while (access(path, F_OK) != 0)
        for (int i = 0; i < 100000; i++) spin += i;
}

static inline void xwrite(int fd, const void *p, size_t n) { if (write(fd, p, n) != (ssize_t)n) _exit(3); }

/* 1 when all n bytes were read, 0 at end of file or on error. */
static inline int xread(int fd, void *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, (char *)p + got, n - got);
        if (k <= 0) return 0;
        got += k;
    }
    return 1;
}
#endif
