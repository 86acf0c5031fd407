/* Must be refused: an io_uring instance. */
#include "cf.h"
#include <linux/io_uring.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    int fd = (int)syscall(SYS_io_uring_setup, 4, &p);
    if (fd < 0) return 3;
    sc_ready();
    sc_wait_go();
    sc_check(fcntl(fd, F_GETFD) >= 0, "ring still open", "%s", "");
    return sc_done();
}
