/* In sigsuspend(2) with a temporary mask while checkpointed.  After the signal's handler the
 * original mask (SIGUSR1, SIGUSR2 and SIGHUP blocked) must be back, not the temporary one. */
#include "cf.h"

static volatile sig_atomic_t got;
static void on_sig(int sig) { (void)sig; got++; }

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    signal(SIGUSR1, on_sig);
    sigset_t block, wait_mask, now;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigaddset(&block, SIGUSR2);
    sigaddset(&block, SIGHUP);
    sigprocmask(SIG_BLOCK, &block, NULL);
    sigfillset(&wait_mask);
    sigdelset(&wait_mask, SIGUSR1);
    pid_t parent = getpid();
    pid_t child = fork();
    if (child == 0) {
        sc_wait_go();
        _exit(kill(parent, SIGUSR1) == 0 ? 0 : 1);
    }
    sc_ready();
    int r = sigsuspend(&wait_mask);
    sc_check(r == -1 && errno == EINTR && got == 1, "sigsuspend returns after the handler", "r=%d errno=%d got=%d",
             r, errno, got);
    sigprocmask(SIG_BLOCK, NULL, &now);
    int same = 1;
    for (int s = 1; s < NSIG; s++)
        if (sigismember(&now, s) != sigismember(&block, s)) same = 0;
    sc_check(same, "mask after sigsuspend is the original", "USR1 %d USR2 %d HUP %d TERM %d INT %d",
             sigismember(&now, SIGUSR1), sigismember(&now, SIGUSR2), sigismember(&now, SIGHUP),
             sigismember(&now, SIGTERM), sigismember(&now, SIGINT));
    int st;
    waitpid(child, &st, 0);
    sc_check(WIFEXITED(st) && !WEXITSTATUS(st), "sender exits 0", "%#x", st);
    return sc_done();
}
