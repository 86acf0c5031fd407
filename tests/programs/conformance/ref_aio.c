/* Must be refused: a Linux AIO context (io_setup: a ring mapped into the process). */
#include "cf.h"
#include <linux/aio_abi.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    aio_context_t ctx = 0;
    if (syscall(SYS_io_setup, 8, &ctx)) return 3;
    sc_ready();
    sc_wait_go();
    sc_check(syscall(SYS_io_destroy, ctx) == 0, "context still there", "%d", errno);
    return sc_done();
}
