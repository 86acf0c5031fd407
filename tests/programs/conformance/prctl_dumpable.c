/* PR_SET_DUMPABLE 0: kept after restore (and /proc/self/fd still owned by us). */
#include "cf.h"
#include <sys/prctl.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    prctl(PR_SET_DUMPABLE, 0);
    sc_ready();
    sc_wait_go();
    sc_check(prctl(PR_GET_DUMPABLE) == 0, "PR_GET_DUMPABLE", "%d", prctl(PR_GET_DUMPABLE));
    return sc_done();
}
