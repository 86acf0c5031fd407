/* SIGCHLD left at SIG_DFL but with SA_NOCLDWAIT (and SA_NOCLDSTOP): the kernel reaps children
 * itself; after restore a child that exits leaves no zombie, and the flags read back. */
#include "cf.h"

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    struct sigaction sa = {.sa_handler = SIG_DFL, .sa_flags = SA_NOCLDWAIT | SA_NOCLDSTOP};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGCHLD, &sa, NULL);
    sc_ready();
    sc_wait_go();
    struct sigaction now;
    sigaction(SIGCHLD, NULL, &now);
    sc_check(now.sa_handler == SIG_DFL && (now.sa_flags & (SA_NOCLDWAIT | SA_NOCLDSTOP)) ==
             (SA_NOCLDWAIT | SA_NOCLDSTOP), "SIGCHLD flags", "%#x", now.sa_flags);
    pid_t c = fork();
    if (c == 0) _exit(3);
    int st;
    pid_t r;
    while ((r = waitpid(c, &st, 0)) < 0 && errno == EINTR) {}
    sc_check(r < 0 && errno == ECHILD, "no zombie: the kernel reaped the child", "waitpid %d errno %d", r, errno);
    return sc_done();
}
