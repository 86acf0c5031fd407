/* POSIX timers on four clocks, notifying by signal with a pointer payload or not at all, some
 * armed with intervals, one disarmed, one deleted (a gap in the ids): ids, clocks, settings after
 * restore; an armed short timer still delivers its payload. */
#include "cf.h"

static volatile sig_atomic_t fired;
static void *volatile payload;
static void on_sig(int sig, siginfo_t *si, void *uc) { (void)sig; (void)uc; fired++; payload = si->si_value.sival_ptr; }

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    struct sigaction sa = {.sa_sigaction = on_sig, .sa_flags = SA_SIGINFO};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGRTMIN + 4, &sa, NULL);
    const clockid_t clocks[5] = {CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_BOOTTIME, CLOCK_PROCESS_CPUTIME_ID,
                                 CLOCK_MONOTONIC};
    static int tags[5];
    timer_t t[5];
    for (int i = 0; i < 5; i++) {
        struct sigevent ev;
        memset(&ev, 0, sizeof ev);
        ev.sigev_notify = i == 2 ? SIGEV_NONE : SIGEV_SIGNAL;
        ev.sigev_signo = SIGRTMIN + 4;
        ev.sigev_value.sival_ptr = &tags[i];
        if (timer_create(clocks[i], &ev, &t[i])) return 3;
    }
    timer_delete(t[3]);
    struct itimerspec far = {{7, 0}, {600, 0}}, once = {{0, 0}, {500, 0}};
    timer_settime(t[0], 0, &far, NULL);
    timer_settime(t[1], 0, &once, NULL);
    timer_settime(t[2], 0, &far, NULL);
    struct itimerspec before[5];
    for (int i = 0; i < 5; i++) if (i != 3) timer_gettime(t[i], &before[i]);
    sc_ready();
    sc_wait_go();
    for (int i = 0; i < 5; i++) {
        if (i == 3) continue;
        struct itimerspec now;
        char what[48];
        snprintf(what, sizeof what, "timer %d (id %ld)", i, (long)(intptr_t)t[i]);
        int r = timer_gettime(t[i], &now);
        long long v = now.it_value.tv_sec * 1000000000LL + now.it_value.tv_nsec;
        long long b = before[i].it_value.tv_sec * 1000000000LL + before[i].it_value.tv_nsec;
        sc_check(r == 0 && now.it_interval.tv_sec == before[i].it_interval.tv_sec &&
                 now.it_interval.tv_nsec == before[i].it_interval.tv_nsec && (b == 0 ? v == 0 : v > 0 && v <= b),
                 what, "r=%d interval %ld value %lld (before %lld)", r, (long)now.it_interval.tv_sec, v, b);
    }
    struct itimerspec now;
    sc_check(timer_gettime(t[3], &now) < 0 && errno == EINVAL, "deleted timer stays deleted", "errno %d", errno);
    struct itimerspec soon = {{0, 0}, {0, 2000000}};
    timer_settime(t[4], 0, &soon, NULL);
    sigset_t none;
    sigemptyset(&none);
    while (!fired) {
        sigset_t b, o;
        sigemptyset(&b);
        sigaddset(&b, SIGRTMIN + 4);
        sigprocmask(SIG_BLOCK, &b, &o);
        if (!fired) sigsuspend(&o);
        sigprocmask(SIG_SETMASK, &o, NULL);
    }
    sc_check(payload == &tags[4], "armed timer delivers its payload", "%p want %p", payload, (void *)&tags[4]);
    timer_t extra;
    struct sigevent ev = {.sigev_notify = SIGEV_NONE};
    timer_create(CLOCK_MONOTONIC, &ev, &extra);
    sc_check(1, "a new timer can be created", "%ld", (long)(intptr_t)extra);
    return sc_done();
}
