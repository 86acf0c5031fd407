/* Must be refused (a line discipline cannot be read without consuming what it holds): a
 * pseudo-terminal pair the job made, with a line written into the master that the slave has not
 * read.  After the refusal the job is unharmed: the slave reads the line. */
#include "cf.h"
#include <poll.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m < 0 || grantpt(m) || unlockpt(m)) return 3;
    int s = open(ptsname(m), O_RDWR | O_NOCTTY);
    if (s < 0 || write(m, "typed\n", 6) != 6) return 3;
    struct pollfd p = {.fd = s, .events = POLLIN};
    if (poll(&p, 1, 5000) != 1) return 3;           /* the line is in the slave's queue */
    sc_ready();
    sc_wait_go();
    char buf[16] = {0};
    ssize_t n = read(s, buf, sizeof buf);
    sc_check(n == 6 && memcmp(buf, "typed\n", 6) == 0, "the slave reads the line", "%zd %.6s", n, buf);
    return sc_done();
}
