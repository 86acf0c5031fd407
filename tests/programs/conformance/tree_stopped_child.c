/* A child stopped by SIGSTOP while checkpointed: after restore it is still stopped (state T,
 * its parent has no new stop to report and gets no new SIGCHLD for it), SIGCONT resumes it, and
 * the parent sees it continue. */
#include "cf.h"

static volatile sig_atomic_t stop_signals;

static void on_chld(int sig, siginfo_t *info, void *uc)
{
    (void)sig;
    (void)uc;
    if (info->si_code == CLD_STOPPED) stop_signals++;
}

static char state_of(pid_t pid)
{
    char path[64], text[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    if (cf_slurp(path, text, sizeof text) < 0) return '?';
    char *p = strrchr(text, ')');
    return p && p[1] ? p[2] : '?';
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    struct sigaction sa = {.sa_sigaction = on_chld, .sa_flags = SA_SIGINFO | SA_RESTART};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGCHLD, &sa, NULL);
    pid_t child = fork();
    if (child == 0) {
        cf_sub("child");
        raise(SIGSTOP);
        sc_check(1, "resumed", "%s", "");
        exit(sc_done());
    }
    int st;
    waitpid(child, &st, WUNTRACED);
    if (!WIFSTOPPED(st)) return 3;
    sigset_t chld, pending;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);        /* the stop's SIGCHLD was delivered or is pending now */
    sigprocmask(SIG_UNBLOCK, &chld, NULL);
    int stops_before = stop_signals;
    sc_ready();
    sc_wait_go();
    sigpending(&pending);
    sc_check(stop_signals == stops_before && !sigismember(&pending, SIGCHLD), "no second SIGCHLD for the stop",
             "%d CLD_STOPPED signals, %d before", stop_signals, stops_before);
    sc_check(state_of(child) == 'T', "child still stopped", "state %c", state_of(child));
    sc_check(waitpid(child, &st, WUNTRACED | WNOHANG) == 0, "no second stop report", "status %#x", st);
    kill(child, SIGCONT);
    sc_check(waitpid(child, &st, WCONTINUED) == child && WIFCONTINUED(st), "parent sees it continue", "%#x", st);
    cf_collect("child", child);
    return sc_done();
}
