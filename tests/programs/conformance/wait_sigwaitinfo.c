/* Blocked in sigwaitinfo(2) for SIGRTMIN+2 (blocked); a child sigqueue()s it with a payload
 * after GO. */
#include "cf.h"

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGRTMIN + 2);
    sigprocmask(SIG_BLOCK, &set, NULL);
    pid_t parent = getpid();
    pid_t child = fork();
    if (child == 0) {
        sc_wait_go();
        union sigval v = {.sival_int = 0x5eed};
        _exit(sigqueue(parent, SIGRTMIN + 2, v) == 0 ? 0 : 1);
    }
    sc_ready();
    siginfo_t si;
    int r;
    while ((r = sigwaitinfo(&set, &si)) < 0 && errno == EINTR) {}
    sc_check(r == SIGRTMIN + 2, "sigwaitinfo returns the signal", "r=%d errno=%d", r, errno);
    sc_check(si.si_code == SI_QUEUE && si.si_pid == child && si.si_value.sival_int == 0x5eed, "siginfo fields",
             "code %d pid %d value %#x", si.si_code, si.si_pid, si.si_value.sival_int);
    int st;
    waitpid(child, &st, 0);
    sc_check(WIFEXITED(st) && !WEXITSTATUS(st), "sender exits 0", "%#x", st);
    return sc_done();
}
