/* membarrier registrations (MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED): after restore the
 * private expedited barrier works without registering again (unregistered: EPERM). */
#include "cf.h"
#include <linux/membarrier.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    if (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0)) return 3;
    if (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE, 0, 0)) return 3;
    sc_ready();
    sc_wait_go();
    long r = syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
    sc_check(r == 0, "private expedited still registered", "r=%ld errno=%d", r, errno);
    r = syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE, 0, 0);
    sc_check(r == 0, "sync-core still registered", "r=%ld errno=%d", r, errno);
    return sc_done();
}
