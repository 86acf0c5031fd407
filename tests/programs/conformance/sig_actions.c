/* Dispositions of every signal: handlers with every combination of SA_SIGINFO, SA_RESTART,
 * SA_ONSTACK, SA_NODEFER, SA_RESETHAND and their masks, SIG_IGN, SIG_DFL (with flags and a mask
 * too); sigaction() of every signal but glibc's own two before and after, and a handler still
 * runs.  At SIG_DFL only the handler is compared (SIGCHLD's flags too: they act at SIG_DFL): a
 * default disposition's flags and mask act on nothing, and incr does not read them back. */
#include "cf.h"

static volatile sig_atomic_t ran, info_ok;
static void h1(int sig) { (void)sig; ran++; }
static void h2(int sig, siginfo_t *si, void *uc) { (void)uc; ran++; info_ok = si->si_signo == sig; }

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    const int flags[] = {0, SA_SIGINFO, SA_RESTART, SA_ONSTACK, SA_NODEFER, SA_RESETHAND,
                         SA_SIGINFO | SA_RESTART | SA_NODEFER, SA_ONSTACK | SA_RESETHAND | SA_SIGINFO};
    int k = 0;
    for (int s = 1; s < NSIG; s++) {
        if (s == SIGKILL || s == SIGSTOP || (s >= 32 && s < SIGRTMIN)) continue;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        if (k % 5 == 3) sa.sa_handler = SIG_IGN;
        else if (k % 5 == 4) sa.sa_handler = SIG_DFL;
        else {
            sa.sa_flags = flags[k % 8];
            if (sa.sa_flags & SA_SIGINFO) sa.sa_sigaction = h2; else sa.sa_handler = h1;
        }
        sigemptyset(&sa.sa_mask);
        sigaddset(&sa.sa_mask, 1 + k % 31);
        if (k % 3 == 0) sigaddset(&sa.sa_mask, SIGRTMIN + k % 20);
        sigaction(s, &sa, NULL);
        k++;
    }
    struct sigaction before[NSIG];
    memset(before, 0, sizeof before);
    for (int s = 1; s < NSIG; s++) sigaction(s, NULL, &before[s]);
    sc_ready();
    sc_wait_go();
    int wrong = 0;
    char first[128] = "";
    for (int s = 1; s < NSIG; s++) {
        if (s >= 32 && s < SIGRTMIN) continue;            /* glibc's own, which sigaction() refuses */
        struct sigaction now;
        memset(&now, 0, sizeof now);
        sigaction(s, NULL, &now);
        int dfl = before[s].sa_handler == SIG_DFL && s != SIGCHLD;
        int same = now.sa_handler == before[s].sa_handler && (dfl || (now.sa_flags == before[s].sa_flags &&
                   memcmp(&now.sa_mask, &before[s].sa_mask, 8) == 0));
        if (!same && !wrong)
            snprintf(first, sizeof first, "signal %d: handler %p flags %#x (before %p %#x)", s, (void *)now.sa_handler,
                     now.sa_flags, (void *)before[s].sa_handler, before[s].sa_flags);
        wrong += !same;
    }
    sc_check(wrong == 0, "sigaction of every signal", "%d differ; %s", wrong, first);
    raise(SIGRTMIN + 1);
    sc_check(ran == 1 || before[SIGRTMIN + 1].sa_handler == SIG_IGN || before[SIGRTMIN + 1].sa_handler == SIG_DFL,
             "a handler runs", "ran %d", ran);
    return sc_done();
}
