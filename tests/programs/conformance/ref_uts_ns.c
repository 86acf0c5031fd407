/* Must be refused: the process unshared a UTS namespace (root) and set its own host name. */
#include "cf.h"
#include <sched.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    if (unshare(CLONE_NEWUTS) || sethostname("incr-cf-uts", 11)) return 3;
    sc_ready();
    sc_wait_go();
    char h[64];
    gethostname(h, sizeof h);
    sc_check(strcmp(h, "incr-cf-uts") == 0, "host name still ours", "%s", h);
    return sc_done();
}
