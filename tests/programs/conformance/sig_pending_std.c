/* Standard signals pending at the checkpoint (blocked): SIGUSR1 queued with a payload by
 * sigqueue, SIGTERM by kill from a child, SIGWINCH raised twice (one instance).  After restore
 * sigpending, then each delivered to an SA_SIGINFO handler with its siginfo. */
#include "cf.h"

static volatile int seen[NSIG], codes[NSIG], values[NSIG], pids[NSIG];
static void on(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    seen[sig]++;
    codes[sig] = si->si_code;
    values[sig] = si->si_value.sival_int;
    pids[sig] = si->si_pid;
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGWINCH);
    sigprocmask(SIG_BLOCK, &set, NULL);
    struct sigaction sa = {.sa_sigaction = on, .sa_flags = SA_SIGINFO};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGWINCH, &sa, NULL);
    union sigval v = {.sival_int = 0x1234};
    sigqueue(getpid(), SIGUSR1, v);
    pid_t parent = getpid(), child = fork();
    if (child == 0) _exit(kill(parent, SIGTERM) ? 1 : 0);
    int st;
    waitpid(child, &st, 0);
    raise(SIGWINCH);
    raise(SIGWINCH);
    sc_ready();
    sc_wait_go();
    sigset_t pend;
    sigpending(&pend);
    sc_check(sigismember(&pend, SIGUSR1) && sigismember(&pend, SIGTERM) && sigismember(&pend, SIGWINCH),
             "all three pending", "%d %d %d", sigismember(&pend, SIGUSR1), sigismember(&pend, SIGTERM),
             sigismember(&pend, SIGWINCH));
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    sc_check(seen[SIGUSR1] == 1 && codes[SIGUSR1] == SI_QUEUE && values[SIGUSR1] == 0x1234 && pids[SIGUSR1] == parent,
             "SIGUSR1 siginfo", "seen %d code %d value %#x pid %d", seen[SIGUSR1], codes[SIGUSR1], values[SIGUSR1],
             pids[SIGUSR1]);
    sc_check(seen[SIGTERM] == 1 && codes[SIGTERM] == SI_USER && pids[SIGTERM] == child, "SIGTERM siginfo",
             "seen %d code %d pid %d", seen[SIGTERM], codes[SIGTERM], pids[SIGTERM]);
    sc_check(seen[SIGWINCH] == 1 && codes[SIGWINCH] == SI_TKILL, "SIGWINCH once", "seen %d code %d", seen[SIGWINCH],
             codes[SIGWINCH]);
    return sc_done();
}
