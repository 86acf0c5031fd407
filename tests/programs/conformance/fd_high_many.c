/* Descriptor numbers: 600 descriptors of mixed kinds, some at high numbers (1000, 4000, and the
 * highest the hard limit allows, the soft limit raised to it), holes between them: the same set of numbers, each its kind.
 * Then the soft limit lowered below most of them (open descriptors stay open): the same limits. */
#include "cf.h"
#include <sys/resource.h>

static char before[1 << 16], after[1 << 16];

static void listing(char *out, size_t size)
{
    size_t used = 0;
    out[0] = 0;
    for (int fd = 0; fd < 65536; fd++) {
        if (fcntl(fd, F_GETFD) < 0) continue;
        char path[64], link[256];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(path, link, sizeof link - 1);
        link[n > 0 ? n : 0] = 0;
        if (strncmp(link, "pipe:", 5) == 0) strcpy(link, "pipe");
        used += (size_t)snprintf(out + used, size - used, "%d %s %d\n", fd, link, fcntl(fd, F_GETFL));
        if (used >= size) break;
    }
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    struct rlimit r;
    getrlimit(RLIMIT_NOFILE, &r);
    int top = r.rlim_max < 65536 ? (int)r.rlim_max - 1 : 65535;
    r.rlim_cur = (rlim_t)top + 1;
    setrlimit(RLIMIT_NOFILE, &r);
    for (int i = 0; i < 200; i++) {
        int p[2];
        if (pipe(p)) return 3;
    }
    int first = -1;
    for (int i = 0; i < 200; i++) {
        int fd = open(i % 2 ? "/dev/null" : cf_path(""), O_RDONLY);
        if (first < 0) first = fd;
    }
    for (int fd = first + 3; fd < first + 200; fd += 7) close(fd);   /* holes (never one end of a pipe) */
    int t = open("/dev/zero", O_RDONLY);
    dup2(t, 1000);
    dup2(t, 4000);
    dup2(t, top);
    close(t);
    sc_open_out();
    struct rlimit lowered = {.rlim_cur = 512, .rlim_max = r.rlim_max};
    if (setrlimit(RLIMIT_NOFILE, &lowered)) return 3;
    listing(before, sizeof before);
    sc_ready();
    sc_wait_go();
    listing(after, sizeof after);
    cf_same(before, after, "descriptor table (numbers, targets, flags)");
    char z = 1;
    sc_check(read(top, &z, 1) == 1 && z == 0, "the highest descriptor reads /dev/zero", "fd %d", top);
    struct rlimit now;
    getrlimit(RLIMIT_NOFILE, &now);
    sc_check(now.rlim_cur == 512 && now.rlim_max == r.rlim_max, "the open-files limits", "%lu %lu",
             (unsigned long)now.rlim_cur, (unsigned long)now.rlim_max);
    return sc_done();
}
