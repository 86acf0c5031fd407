/* ITIMER_REAL firing every 5 ms into a SIGALRM handler: after restore it keeps firing (three more
 * ticks arrive while we wait in sigsuspend). */
#include "cf.h"
#include <sys/time.h>

static volatile sig_atomic_t ticks;
static void on_alrm(int sig) { (void)sig; ticks++; }

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    struct sigaction sa = {.sa_handler = on_alrm, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 5000}, {0, 5000}};
    setitimer(ITIMER_REAL, &it, NULL);
    while (ticks < 3) pause();
    sc_ready();
    sc_wait_go();
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGALRM);
    sigprocmask(SIG_BLOCK, &block, &old);
    int start = ticks;
    while (ticks < start + 3) sigsuspend(&old);
    sigprocmask(SIG_SETMASK, &old, NULL);
    sc_check(ticks >= start + 3, "ticks after restore", "%d -> %d", start, ticks);
    struct itimerval now;
    getitimer(ITIMER_REAL, &now);
    sc_check(now.it_interval.tv_sec == 0 && now.it_interval.tv_usec == 5000, "interval", "%ld.%06ld",
             (long)now.it_interval.tv_sec, (long)now.it_interval.tv_usec);
    return sc_done();
}
