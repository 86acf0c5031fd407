/* Sleeping in nanosleep(2) (relative, 50 ms at a time) while checkpointed.  Every sleep that
 * returns 0 lasted at least what was asked; one cut short by EINTR (what CRIU and incr do to a
 * sleep interrupted by a checkpoint) reports a remaining time within the request. */
#include "cf.h"

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    sc_ready();
    int short_sleeps = 0, bad_rem = 0, calls = 0;
    while (access(sc_go_path, F_OK) != 0) {
        struct timespec req = {0, 50 * 1000 * 1000}, rem = {0, 0};
        int64_t t0 = cf_now_ns(CLOCK_MONOTONIC);
        int r = nanosleep(&req, &rem);
        int64_t took = cf_now_ns(CLOCK_MONOTONIC) - t0;
        calls++;
        if (r == 0 && took < 50 * 1000 * 1000) short_sleeps++;
        if (r < 0 && (errno != EINTR || rem.tv_sec != 0 || rem.tv_nsec > req.tv_nsec)) bad_rem++;
    }
    sc_check(short_sleeps == 0, "no sleep returned 0 early", "%d of %d", short_sleeps, calls);
    sc_check(bad_rem == 0, "interrupted sleeps report a sane remainder", "%d of %d", bad_rem, calls);
    struct timespec req = {0, 20 * 1000 * 1000};
    int64_t t0 = cf_now_ns(CLOCK_MONOTONIC);
    sc_check(nanosleep(&req, NULL) == 0 && cf_now_ns(CLOCK_MONOTONIC) - t0 >= 20 * 1000 * 1000,
             "nanosleep after restore", "%s", "");
    return sc_done();
}
