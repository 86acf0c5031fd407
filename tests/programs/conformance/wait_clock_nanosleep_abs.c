/* clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME) to a deadline 0.4 s ahead, repeated until GO:
 * an absolute sleep never ends before its deadline, whatever interrupts it. */
#include "cf.h"

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    sc_ready();
    int early = 0, errors = 0, rounds = 0;
    while (access(sc_go_path, F_OK) != 0) {
        int64_t deadline = cf_now_ns(CLOCK_MONOTONIC) + 400 * 1000 * 1000LL;
        struct timespec at = {deadline / 1000000000LL, deadline % 1000000000LL};
        int r;
        while ((r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL)) == EINTR) {}
        if (r != 0) errors++;
        if (cf_now_ns(CLOCK_MONOTONIC) < deadline) early++;
        rounds++;
    }
    sc_check(errors == 0, "clock_nanosleep returns 0", "%d errors in %d", errors, rounds);
    sc_check(early == 0, "never woke before the deadline", "%d of %d", early, rounds);
    return sc_done();
}
