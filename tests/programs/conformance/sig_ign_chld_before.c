/* SIGCHLD set to SIG_IGN before the checkpoint: a child exiting after restore is reaped by the
 * kernel (waitpid fails with ECHILD) and SIGCHLD is still ignored. */
#include "cf.h"

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    signal(SIGCHLD, SIG_IGN);
    pid_t c = fork();
    if (c == 0) {
        sc_wait_go();
        _exit(3);
    }
    sc_ready();
    sc_wait_go();
    int st;
    pid_t r;
    while ((r = waitpid(c, &st, 0)) < 0 && errno == EINTR) {}
    sc_check(r < 0 && errno == ECHILD, "no zombie left", "waitpid %d errno %d status %#x", r, errno, st);
    struct sigaction now;
    sigaction(SIGCHLD, NULL, &now);
    sc_check(now.sa_handler == SIG_IGN, "still ignored", "%p", (void *)now.sa_handler);
    return sc_done();
}
