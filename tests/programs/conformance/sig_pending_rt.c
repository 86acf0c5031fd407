/* Real-time signals queued at the checkpoint: SIGRTMIN+5 five times and SIGRTMIN+1 twice, each with
 * its own payload.  After restore they come out lower signal first, in queue order within one. */
#include "cf.h"

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGRTMIN + 5);
    sigaddset(&set, SIGRTMIN + 1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    /* (Not SigQ in /proc/self/status: it counts the signals queued for the whole user.) */
    for (int i = 0; i < 5; i++) { union sigval v = {.sival_int = 500 + i}; sigqueue(getpid(), SIGRTMIN + 5, v); }
    for (int i = 0; i < 2; i++) { union sigval v = {.sival_int = 100 + i}; sigqueue(getpid(), SIGRTMIN + 1, v); }
    sc_ready();
    sc_wait_go();
    const int want_sig[7] = {1, 1, 5, 5, 5, 5, 5}, want_val[7] = {100, 101, 500, 501, 502, 503, 504};
    struct timespec zero = {0, 0};
    for (int i = 0; i < 7; i++) {
        siginfo_t si;
        int r = sigtimedwait(&set, &si, &zero);
        char what[48];
        snprintf(what, sizeof what, "signal #%d", i + 1);
        sc_check(r == SIGRTMIN + want_sig[i] && si.si_value.sival_int == want_val[i] && si.si_code == SI_QUEUE, what,
                 "got %d value %d code %d", r - SIGRTMIN, si.si_value.sival_int, si.si_code);
    }
    siginfo_t si;
    sc_check(sigtimedwait(&set, &si, &zero) < 0 && errno == EAGAIN, "nothing more queued", "%s", "");
    return sc_done();
}
