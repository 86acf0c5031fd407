/* Every resource limit, with soft limits lowered from their defaults where allowed: getrlimit
 * of all sixteen, before and after, and one of them enforced (RLIMIT_NOFILE). */
#include "cf.h"
#include <sys/resource.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    struct rlimit r;
    const struct { int res; rlim_t soft; } set[] = {{RLIMIT_NOFILE, 200}, {RLIMIT_CORE, 0}, {RLIMIT_STACK, 6 << 20},
        {RLIMIT_CPU, 100000}, {RLIMIT_FSIZE, 1ULL << 40}, {RLIMIT_DATA, 1ULL << 42}, {RLIMIT_NPROC, 100000},
        {RLIMIT_MEMLOCK, 1 << 20}, {RLIMIT_MSGQUEUE, 4096}, {RLIMIT_SIGPENDING, 1000}, {RLIMIT_RTTIME, 500000},
        {RLIMIT_AS, 1ULL << 46}, {RLIMIT_LOCKS, 1000}};
    for (size_t i = 0; i < sizeof set / sizeof set[0]; i++) {
        getrlimit(set[i].res, &r);
        r.rlim_cur = set[i].soft < r.rlim_max ? set[i].soft : r.rlim_max;
        setrlimit(set[i].res, &r);
    }
    getrlimit(RLIMIT_CORE, &r);
    r.rlim_max = 1 << 20;                               /* a hard limit lowered too */
    setrlimit(RLIMIT_CORE, &r);
    struct rlimit before[RLIM_NLIMITS];
    for (int i = 0; i < RLIM_NLIMITS; i++) getrlimit(i, &before[i]);
    sc_ready();
    sc_wait_go();
    for (int i = 0; i < RLIM_NLIMITS; i++) {
        getrlimit(i, &r);
        char what[32];
        snprintf(what, sizeof what, "rlimit %d", i);
        sc_check(r.rlim_cur == before[i].rlim_cur && r.rlim_max == before[i].rlim_max, what,
                 "(%llu, %llu), before (%llu, %llu)", (unsigned long long)r.rlim_cur, (unsigned long long)r.rlim_max,
                 (unsigned long long)before[i].rlim_cur, (unsigned long long)before[i].rlim_max);
    }
    int fds = 0, fd;
    while ((fd = open("/dev/null", O_RDONLY)) >= 0) fds++;
    sc_check(errno == EMFILE && fd < 0, "RLIMIT_NOFILE enforced", "errno %d after %d opens", errno, fds);
    return sc_done();
}
