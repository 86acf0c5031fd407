/* Descriptors leading outside the job, not stdio: fd 7, the read end of a pipe whose write end
 * the caller holds (O_NONBLOCK), and fd 8, a Unix socket whose peer the caller holds.
 *   external OUT READY GO      (the caller passes them as fds 7 and 8)
 * Restored with --external 7:FIFO --external 8:null: fd 7 reads what the caller then writes into
 * the FIFO, with O_NONBLOCK still set; fd 8 is /dev/null, open for reading and writing. */
#include "selfcheck.h"
#include <errno.h>
#include <fcntl.h>
#include <string.h>

int main(int argc, char **argv)
{
    sc_init(argc, argv);
    int f7 = fcntl(7, F_GETFL), f8 = fcntl(8, F_GETFL);
    if (f7 < 0 || f8 < 0 || !(f7 & O_NONBLOCK)) return 3;
    sc_ready();
    sc_wait_go();
    sc_check((fcntl(7, F_GETFL) & (O_ACCMODE | O_NONBLOCK)) == (f7 & (O_ACCMODE | O_NONBLOCK)), "fd 7 flags",
             "%#o, was %#o", fcntl(7, F_GETFL), f7);
    char buf[16] = {0};
    ssize_t n;
    while ((n = read(7, buf, sizeof buf - 1)) < 0 && errno == EAGAIN)
        usleep(1000);
    sc_check(n == 6 && memcmp(buf, "hello\n", 6) == 0, "fd 7 reads the FIFO", "%zd %s", n, buf);
    char link[64] = {0};
    sc_check(readlink("/proc/self/fd/8", link, sizeof link - 1) > 0 && strcmp(link, "/dev/null") == 0,
             "fd 8 is /dev/null", "%s", link);
    sc_check((fcntl(8, F_GETFL) & O_ACCMODE) == O_RDWR && write(8, "x", 1) == 1, "fd 8 read-write", "%#o",
             fcntl(8, F_GETFL));
    return sc_done();
}
