/* membarrier() registrations: the process registers every expedited kind the
 * kernel offers; after restore each barrier still works (it fails with EPERM
 * when not registered) and MEMBARRIER_CMD_GET_REGISTRATIONS says the same. */
#include "selfcheck.h"
#include <errno.h>
#include <string.h>
#include <sys/syscall.h>

#define CMD_QUERY 0
#define CMD_GET_REGISTRATIONS (1 << 9)

static const struct { const char *name; int reg, use; } kinds[] = {
    { "GLOBAL_EXPEDITED", 1 << 2, 1 << 1 },
    { "PRIVATE_EXPEDITED", 1 << 4, 1 << 3 },
    { "PRIVATE_EXPEDITED_SYNC_CORE", 1 << 6, 1 << 5 },
    { "PRIVATE_EXPEDITED_RSEQ", 1 << 8, 1 << 7 },
};

static int membarrier(int cmd) { return (int)syscall(SYS_membarrier, cmd, 0, 0); }

int main(int argc, char **argv)
{
    sc_init(argc, argv);
    int offered = membarrier(CMD_QUERY);
    if (offered < 0) return 20;
    int registered = 0;
    for (unsigned i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        if (!(offered & kinds[i].reg)) continue;
        if (membarrier(kinds[i].reg)) return 21;
        registered |= kinds[i].reg;
    }
    if (!(registered & (1 << 4)) || membarrier(CMD_GET_REGISTRATIONS) != registered) return 22;
    sc_ready();
    sc_wait_go();

    for (unsigned i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        if (!(registered & kinds[i].reg)) continue;
        int r = membarrier(kinds[i].use);
        sc_check(r == 0, kinds[i].name, "the barrier fails: %s", strerror(errno));
    }
    int now = membarrier(CMD_GET_REGISTRATIONS);
    sc_check(now == registered, "registrations", "GET_REGISTRATIONS gives %#x, registered %#x", now, registered);
    return sc_done();
}
