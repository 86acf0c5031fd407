/* Access modes and status flags of regular-file descriptors: O_RDONLY, O_WRONLY, O_RDWR, with
 * O_NONBLOCK, O_NOATIME, O_SYNC, O_DSYNC, O_DIRECT, O_APPEND combinations: F_GETFL of each, and
 * the access mode enforced. */
#include "cf.h"

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    close(open(cf_path("f"), O_CREAT | O_WRONLY, 0600));
    const int how[8] = {O_RDONLY, O_WRONLY, O_RDWR, O_RDONLY | O_NONBLOCK, O_RDONLY | O_NOATIME,
                        O_WRONLY | O_SYNC, O_RDWR | O_DSYNC | O_APPEND, O_RDWR | O_DIRECT};
    int fd[8], fl[8];
    for (int i = 0; i < 8; i++) {
        fd[i] = open(cf_path("f"), how[i]);
        if (fd[i] < 0) fd[i] = open(cf_path("f"), how[i] & ~O_DIRECT);
        fl[i] = fcntl(fd[i], F_GETFL);
    }
    sc_ready();
    sc_wait_go();
    for (int i = 0; i < 8; i++) {
        char what[48];
        snprintf(what, sizeof what, "descriptor %d status flags", i);
        sc_check(fcntl(fd[i], F_GETFL) == fl[i], what, "%#o, before %#o", fcntl(fd[i], F_GETFL), fl[i]);
    }
    char c = 'x';
    sc_check(write(fd[0], &c, 1) < 0 && errno == EBADF, "O_RDONLY refuses writes", "%s", "");
    sc_check(read(fd[1], &c, 1) < 0 && errno == EBADF, "O_WRONLY refuses reads", "%s", "");
    return sc_done();
}
