/* All three interval timers armed far in the future with intervals: after restore each has its
 * interval and a value left no larger than before (and not expired), and alarm() agrees. */
#include "cf.h"
#include <sys/time.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    signal(SIGALRM, SIG_IGN);
    signal(SIGVTALRM, SIG_IGN);
    signal(SIGPROF, SIG_IGN);
    struct itimerval real = {{250, 500000}, {900, 0}}, virt = {{33, 0}, {800, 0}}, prof = {{0, 700000}, {700, 0}};
    setitimer(ITIMER_REAL, &real, NULL);
    setitimer(ITIMER_VIRTUAL, &virt, NULL);
    setitimer(ITIMER_PROF, &prof, NULL);
    struct itimerval before[3];
    for (int w = 0; w < 3; w++) getitimer(w, &before[w]);
    sc_ready();
    sc_wait_go();
    const char *names[3] = {"ITIMER_REAL", "ITIMER_VIRTUAL", "ITIMER_PROF"};
    for (int w = 0; w < 3; w++) {
        struct itimerval now;
        getitimer(w, &now);
        long long v = now.it_value.tv_sec * 1000000LL + now.it_value.tv_usec;
        long long b = before[w].it_value.tv_sec * 1000000LL + before[w].it_value.tv_usec;
        sc_check(now.it_interval.tv_sec == before[w].it_interval.tv_sec &&
                 now.it_interval.tv_usec == before[w].it_interval.tv_usec && v > 0 && v <= b, names[w],
                 "interval %ld.%06ld value %lld us (before %lld)", (long)now.it_interval.tv_sec,
                 (long)now.it_interval.tv_usec, v, b);
    }
    unsigned left = alarm(0);
    sc_check(left > 0 && left <= 900, "alarm() sees ITIMER_REAL", "%u", left);
    return sc_done();
}
