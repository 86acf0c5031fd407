/* FLOOD real-time signals queued and blocked (10000; CRIU restores them): each comes back with
 * its value, and once unblocked the job handles every one of them, each once, in order.  Built
 * with -DFLOOD=20000 as ref_sig_flood: more than incr reads back (the kernel's PTRACE_PEEKSIGINFO
 * walks the queue from its head for each entry, the job frozen): the checkpoint must refuse in
 * one line, at once, and the job then handles them all as here. */
#include "cf.h"

#ifndef FLOOD
#define FLOOD 10000
#endif

static volatile int received, out_of_order;

static void on_rt(int sig, siginfo_t *si, void *ctx)
{
    (void)sig, (void)ctx;
    if (si->si_value.sival_int != received) out_of_order++;
    received++;
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    struct sigaction sa = {0};
    sa.sa_sigaction = on_rt;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGRTMIN + 2, &sa, NULL);
    sigset_t rt, old;
    sigemptyset(&rt);
    sigaddset(&rt, SIGRTMIN + 2);
    sigprocmask(SIG_BLOCK, &rt, &old);
    int queued = 0;
    for (int i = 0; i < FLOOD; i++) {
        union sigval v = {.sival_int = i};
        if (sigqueue(getpid(), SIGRTMIN + 2, v) == 0) queued++;
    }
    sc_ready();
    sc_wait_go();
    sigprocmask(SIG_SETMASK, &old, NULL);
    sc_check(queued == FLOOD, "all queued", "%d", queued);
    sc_check(received == queued, "every one handled", "%d of %d", received, queued);
    sc_check(out_of_order == 0, "each once, in order", "%d", out_of_order);
    return sc_done();
}
