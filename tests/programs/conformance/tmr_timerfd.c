/* timerfds: monotonic relative with an interval, realtime absolute, boottime disarmed, and one
 * that expired four times before the checkpoint unread: settings, flags, and the expiry count. */
#include "cf.h"
#include <sys/timerfd.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int a = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    int b = timerfd_create(CLOCK_REALTIME, 0);
    int c = timerfd_create(CLOCK_BOOTTIME, TFD_NONBLOCK);
    int d = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    struct itimerspec ia = {{3, 0}, {500, 0}};
    timerfd_settime(a, 0, &ia, NULL);
    struct timespec nowr;
    clock_gettime(CLOCK_REALTIME, &nowr);
    struct itimerspec ib = {{0, 0}, {nowr.tv_sec + 1000, 0}};
    timerfd_settime(b, TFD_TIMER_ABSTIME, &ib, NULL);
    struct itimerspec id = {{0, 1000000}, {0, 1000000}}, one_shot = {{0, 0}, {0, 1000}};
    int e = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    int64_t t0 = cf_now_ns(CLOCK_MONOTONIC);
    timerfd_settime(d, 0, &id, NULL);               /* periodic, 1 ms: four expiries at least, unread */
    timerfd_settime(e, 0, &one_shot, NULL);         /* one-shot, expired, unread */
    while (cf_now_ns(CLOCK_MONOTONIC) - t0 < 4500000) {}
    uint64_t ticks;
    struct itimerspec ba, bb;
    timerfd_gettime(a, &ba);
    timerfd_gettime(b, &bb);
    int fl[4] = {fcntl(a, F_GETFL), fcntl(b, F_GETFL), fcntl(c, F_GETFL), fcntl(d, F_GETFL)};
    int fd_a = fcntl(a, F_GETFD);
    sc_ready();
    sc_wait_go();
    struct itimerspec na, nb, nc;
    timerfd_gettime(a, &na);
    timerfd_gettime(b, &nb);
    timerfd_gettime(c, &nc);
    sc_check(na.it_interval.tv_sec == 3 && na.it_value.tv_sec <= ba.it_value.tv_sec && na.it_value.tv_sec > 400,
             "monotonic timer", "interval %ld value %ld", (long)na.it_interval.tv_sec, (long)na.it_value.tv_sec);
    sc_check(nb.it_value.tv_sec <= bb.it_value.tv_sec && nb.it_value.tv_sec > 900, "realtime absolute timer",
             "value %ld", (long)nb.it_value.tv_sec);
    sc_check(nc.it_value.tv_sec == 0 && nc.it_value.tv_nsec == 0, "disarmed timer", "%ld", (long)nc.it_value.tv_sec);
    int same = fcntl(a, F_GETFL) == fl[0] && fcntl(b, F_GETFL) == fl[1] && fcntl(c, F_GETFL) == fl[2] &&
               fcntl(d, F_GETFL) == fl[3] && fcntl(a, F_GETFD) == fd_a;
    sc_check(same, "descriptor flags", "%s", "");
    ticks = 0;
    errno = 0;
    ssize_t got = read(d, &ticks, 8);
    sc_check(got == 8 && ticks >= 4, "periodic timer: expiries from before counted", "read %zd ticks %llu errno %d",
             got, (unsigned long long)ticks, errno);
    struct itimerspec nd;
    timerfd_gettime(d, &nd);
    sc_check(nd.it_interval.tv_nsec == 1000000 && (nd.it_value.tv_sec || nd.it_value.tv_nsec), "periodic timer still "
             "armed", "interval %ld value %ld.%09ld", nd.it_interval.tv_nsec, (long)nd.it_value.tv_sec,
             nd.it_value.tv_nsec);
    ticks = 0;
    sc_check(read(e, &ticks, 8) == 8 && ticks == 1, "expired one-shot: count 1 unread", "ticks %llu errno %d",
             (unsigned long long)ticks, errno);
    sc_check(read(e, &ticks, 8) < 0 && errno == EAGAIN, "then nothing", "%s", "");
    struct itimerspec soon = {{0, 0}, {0, 1000000}};
    timerfd_settime(c, 0, &soon, NULL);
    int cf = fcntl(c, F_GETFL);
    fcntl(c, F_SETFL, cf & ~O_NONBLOCK);
    sc_check(read(c, &ticks, 8) == 8 && ticks == 1, "re-armed boottime timer fires", "%llu", (unsigned long long)ticks);
    return sc_done();
}
