/* A process signal mask blocking a mix of standard and real-time signals, and SIGSEGV caught by a
 * handler: the mask is the same, and a blocked signal sent after restore stays pending. */
#include "cf.h"

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    sigset_t m;
    sigemptyset(&m);
    int sigs[] = {SIGHUP, SIGINT, SIGQUIT, SIGUSR2, SIGPIPE, SIGALRM, SIGTERM, SIGCHLD, SIGTSTP, SIGTTIN, SIGIO,
                  SIGRTMIN, SIGRTMIN + 7, SIGRTMAX - 1, SIGRTMAX};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaddset(&m, sigs[i]);
    sigprocmask(SIG_SETMASK, &m, NULL);
    char blk[64];
    snprintf(blk, sizeof blk, "%s", cf_field("/proc/self/status", "SigBlk:"));
    sc_ready();
    sc_wait_go();
    cf_same(blk, cf_field("/proc/self/status", "SigBlk:"), "SigBlk");
    sigset_t now;
    sigprocmask(SIG_BLOCK, NULL, &now);
    int same = 1;
    for (int s = 1; s < NSIG; s++) same &= sigismember(&now, s) == sigismember(&m, s);
    sc_check(same, "sigprocmask", "%s", "");
    kill(getpid(), SIGTERM);
    sigset_t pend;
    sigpending(&pend);
    sc_check(sigismember(&pend, SIGTERM), "blocked SIGTERM stays pending", "%s", "");
    return sc_done();
}
