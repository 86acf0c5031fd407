/* Must be refused: a pidfd (pidfd_open) of a child. */
#include "cf.h"

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    pid_t child = fork();
    if (child == 0) { sc_wait_go(); _exit(0); }
    int fd = (int)syscall(SYS_pidfd_open, child, 0);
    if (fd < 0) return 3;
    sc_ready();
    sc_wait_go();
    int st;
    waitpid(child, &st, 0);
    sc_check(fcntl(fd, F_GETFD) >= 0, "pidfd still open", "%s", "");
    return sc_done();
}
