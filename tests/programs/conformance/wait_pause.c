/* In pause(2) while checkpointed; a child sends SIGUSR1 after GO; the handler runs once and
 * pause returns EINTR. */
#include "cf.h"

static volatile sig_atomic_t got, from;
static void on_usr1(int sig, siginfo_t *si, void *uc) { (void)sig; (void)uc; got++; from = si->si_pid; }

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    struct sigaction sa = {.sa_sigaction = on_usr1, .sa_flags = SA_SIGINFO};
    sigaction(SIGUSR1, &sa, NULL);
    pid_t parent = getpid();
    pid_t child = fork();
    if (child == 0) {
        sc_wait_go();
        _exit(kill(parent, SIGUSR1) == 0 ? 0 : 1);
    }
    sc_ready();
    int r = pause();
    sc_check(r == -1 && errno == EINTR, "pause returns EINTR", "r=%d errno=%d", r, errno);
    sc_check(got == 1 && from == child, "SIGUSR1 from the child once", "got %d from %d", got, from);
    int st;
    waitpid(child, &st, 0);
    sc_check(WIFEXITED(st) && !WEXITSTATUS(st), "sender exits 0", "%#x", st);
    return sc_done();
}
