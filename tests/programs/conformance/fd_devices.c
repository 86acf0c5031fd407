/* Character devices: /dev/null (write-only), /dev/zero (read-write), /dev/full, /dev/urandom and
 * /dev/random (read-only, non-blocking): each behaves as itself, with its flags. */
#include "cf.h"

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    const char *paths[5] = {"/dev/null", "/dev/zero", "/dev/full", "/dev/urandom", "/dev/random"};
    const int modes[5] = {O_WRONLY, O_RDWR, O_RDWR, O_RDONLY, O_RDONLY | O_NONBLOCK};
    int fd[5], fl[5];
    struct stat st[5];
    for (int i = 0; i < 5; i++) {
        fd[i] = open(paths[i], modes[i]);
        fl[i] = fcntl(fd[i], F_GETFL);
        fstat(fd[i], &st[i]);
    }
    sc_ready();
    sc_wait_go();
    for (int i = 0; i < 5; i++) {
        struct stat now;
        fstat(fd[i], &now);
        char what[48];
        snprintf(what, sizeof what, "%s: same device, flags", paths[i]);
        sc_check(now.st_rdev == st[i].st_rdev && fcntl(fd[i], F_GETFL) == fl[i], what, "rdev %#lx flags %#x",
                 (unsigned long)now.st_rdev, fcntl(fd[i], F_GETFL));
    }
    char buf[64];
    memset(buf, 1, sizeof buf);
    sc_check(write(fd[0], buf, 64) == 64 && read(fd[0], buf, 1) < 0 && errno == EBADF, "/dev/null write-only", "%s", "");
    sc_check(read(fd[1], buf, 64) == 64 && buf[0] == 0 && buf[63] == 0, "/dev/zero reads zeros", "%s", "");
    sc_check(write(fd[2], buf, 1) < 0 && errno == ENOSPC, "/dev/full is full", "errno %d", errno);
    sc_check(read(fd[3], buf, 64) == 64, "/dev/urandom reads", "%s", "");
    sc_check(read(fd[4], buf, 16) == 16, "/dev/random reads", "%s", "");
    return sc_done();
}
