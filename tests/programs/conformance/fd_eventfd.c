/* eventfds: a counter of 12345 (non-blocking), and a semaphore one with count 3: values,
 * flags, the semaphore semantics, and that they can still wake a poller. */
#include "cf.h"
#include <poll.h>
#include <sys/eventfd.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int a = eventfd(12000, EFD_NONBLOCK | EFD_CLOEXEC);
    uint64_t add = 345;
    if (write(a, &add, 8) != 8) return 3;
    int s = eventfd(3, EFD_SEMAPHORE);
    int fa = fcntl(a, F_GETFL), fs = fcntl(s, F_GETFL), da = fcntl(a, F_GETFD);
    sc_ready();
    sc_wait_go();
    sc_check(fcntl(a, F_GETFL) == fa && fcntl(s, F_GETFL) == fs && fcntl(a, F_GETFD) == da, "flags", "%#x %#x",
             fcntl(a, F_GETFL), fcntl(s, F_GETFL));
    uint64_t v = 0;
    sc_check(read(a, &v, 8) == 8 && v == 12345, "counter", "%llu", (unsigned long long)v);
    sc_check(read(a, &v, 8) < 0 && errno == EAGAIN, "then empty, non-blocking", "errno %d", errno);
    int ones = 0;
    for (int i = 0; i < 3; i++) ones += read(s, &v, 8) == 8 && v == 1;
    sc_check(ones == 3, "semaphore: three reads of 1", "%d", ones);
    struct pollfd p = {.fd = s, .events = POLLIN};
    sc_check(poll(&p, 1, 0) == 0, "semaphore now empty", "%s", "");
    add = 2;
    sc_check(write(s, &add, 8) == 8 && poll(&p, 1, 0) == 1, "a write makes it readable", "%s", "");
    return sc_done();
}
