/* Self-checking: periodic timers whose signal is pending (blocked) at the
 * checkpoint keep firing after restore.   timer_pending OUT READY GO
 * ITIMER_REAL re-arms only when its SIGALRM is dequeued: at the freeze its
 * time left reads 0 while its interval does not.  A POSIX timer (SIGUSR2)
 * the same way.  After GO, three more signals of each must come, and both
 * timers still have their 20 ms interval. */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/time.h>
#include <time.h>
#include "selfcheck.h"

static int pending(int sig)
{
    sigset_t p;
    sigpending(&p);
    return sigismember(&p, sig);
}

int main(int argc, char **argv)
{
    sc_init(argc, argv);
    sigset_t both;
    sigemptyset(&both);
    sigaddset(&both, SIGALRM);
    sigaddset(&both, SIGUSR2);
    sigprocmask(SIG_BLOCK, &both, NULL);
    struct itimerval every = { { 0, 20000 }, { 0, 20000 } };
    setitimer(ITIMER_REAL, &every, NULL);
    timer_t t;
    struct sigevent sev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR2 };
    timer_create(CLOCK_MONOTONIC, &sev, &t);
    struct itimerspec spec = { { 0, 20000000 }, { 0, 20000000 } };
    timer_settime(t, 0, &spec, NULL);
    while (!pending(SIGALRM) || !pending(SIGUSR2))
        usleep(1000);
    struct itimerval now;
    getitimer(ITIMER_REAL, &now);
    sc_ready();
    sc_wait_go();
    int alrm = 0, usr2 = 0;
    struct timespec two = { 2, 0 };
    while (alrm < 4 || usr2 < 4) {
        int sig = sigtimedwait(&both, NULL, &two);
        if (sig < 0)
            break;
        alrm += sig == SIGALRM;
        usr2 += sig == SIGUSR2;
    }
    sc_check(alrm >= 4, "itimer keeps firing", "%d SIGALRM after restore (the pending one included)", alrm);
    sc_check(usr2 >= 4, "POSIX timer keeps firing", "%d SIGUSR2 after restore (the pending one included)", usr2);
    struct itimerval after;
    getitimer(ITIMER_REAL, &after);
    sc_check(after.it_interval.tv_usec == 20000 && after.it_interval.tv_sec == 0, "itimer interval",
             "%ld.%06ld s", (long)after.it_interval.tv_sec, (long)after.it_interval.tv_usec);
    struct itimerspec left;
    timer_gettime(t, &left);
    sc_check(left.it_interval.tv_nsec == 20000000 && left.it_interval.tv_sec == 0, "POSIX timer interval",
             "%ld.%09ld s", (long)left.it_interval.tv_sec, (long)left.it_interval.tv_nsec);
    sc_check(now.it_interval.tv_usec == 20000, "itimer interval before", "%ld", (long)now.it_interval.tv_usec);
    return sc_done();
}
