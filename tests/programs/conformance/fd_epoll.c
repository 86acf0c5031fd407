/* An epoll set: a pipe (level-triggered, data 11), an eventfd (edge-triggered, data 22), a second
 * pipe (EPOLLONESHOT, already fired and so disarmed, data 33), a third pipe (one-shot too, fired, then
 * emptied: disarmed on a file ready for nothing, data 66), and a watched epoll (nested).
 * fdinfo's watch list and the events seen after restore. */
#include "cf.h"
#include <sys/epoll.h>
#include <sys/eventfd.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int p[2], q[2], r[2];
    if (pipe(p) || pipe(q) || pipe2(r, O_NONBLOCK)) return 3;
    int ev = eventfd(0, EFD_NONBLOCK);
    int early = epoll_create1(0);          /* watches an epoll created after it (a higher number) */
    int inner = epoll_create1(0);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event e = {.events = EPOLLIN, .data.u64 = 11};
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &e);
    e.events = EPOLLIN | EPOLLET;
    e.data.u64 = 22;
    epoll_ctl(ep, EPOLL_CTL_ADD, ev, &e);
    e.events = EPOLLIN | EPOLLONESHOT;
    e.data.u64 = 33;
    epoll_ctl(ep, EPOLL_CTL_ADD, q[0], &e);
    e.events = EPOLLIN;
    e.data.u64 = 44;
    epoll_ctl(ep, EPOLL_CTL_ADD, inner, &e);
    e.data.u64 = 77;
    if (epoll_ctl(early, EPOLL_CTL_ADD, ep, &e)) return 3;
    if (write(q[1], "q", 1) != 1) return 3;
    struct epoll_event got[8];
    if (epoll_wait(ep, got, 8, 0) != 1 || got[0].data.u64 != 33) return 4;   /* the one-shot fires and disarms */
    e.events = EPOLLIN | EPOLLONESHOT;
    e.data.u64 = 66;
    epoll_ctl(ep, EPOLL_CTL_ADD, r[0], &e);
    char c;
    if (write(r[1], "r", 1) != 1 || epoll_wait(ep, got, 8, 0) != 1 || got[0].data.u64 != 66) return 4;
    if (read(r[0], &c, 1) != 1) return 3;
    if (write(p[1], "p", 1) != 1) return 3;
    char before[1024], after[1024], early_before[256], early_after[256];
    cf_epoll_watches(ep, before, sizeof before);
    cf_epoll_watches(early, early_before, sizeof early_before);
    sc_ready();
    sc_wait_go();
    cf_epoll_watches(ep, after, sizeof after);
    cf_same(before, after, "watch list (fdinfo)");
    cf_epoll_watches(early, early_after, sizeof early_after);
    cf_same(early_before, early_after, "watch list of the epoll watching a later one (fdinfo)");
    int n = epoll_wait(ep, got, 8, 0);
    sc_check(n == 1 && got[0].data.u64 == 11, "only the level-triggered pipe is ready", "n=%d first %llu", n,
             n > 0 ? (unsigned long long)got[0].data.u64 : 0ULL);
    uint64_t one = 1;
    if (write(ev, &one, 8) != 8) return 3;
    n = epoll_wait(ep, got, 8, 0);
    int saw22 = 0;
    for (int i = 0; i < n; i++) saw22 += got[i].data.u64 == 22;
    sc_check(saw22 == 1, "edge-triggered eventfd fires once", "n=%d", n);
    n = epoll_wait(ep, got, 8, 0);
    saw22 = 0;
    for (int i = 0; i < n; i++) saw22 += got[i].data.u64 == 22 || got[i].data.u64 == 33;
    sc_check(saw22 == 0, "and not again; the one-shot stays disarmed", "n=%d", n);
    if (write(r[1], "r", 1) != 1) return 3;
    n = epoll_wait(ep, got, 8, 0);
    int saw66 = 0;
    for (int i = 0; i < n; i++) saw66 += got[i].data.u64 == 66;
    sc_check(saw66 == 0 && read(r[0], &c, 1) == 1 && c == 'r' && read(r[0], &c, 1) < 0 && errno == EAGAIN,
             "the emptied one-shot pipe: disarmed, and empty before", "n=%d", n);
    int ip[2];
    if (pipe(ip)) return 3;
    e.events = EPOLLIN;
    e.data.u64 = 55;
    epoll_ctl(inner, EPOLL_CTL_ADD, ip[0], &e);
    if (write(ip[1], "i", 1) != 1) return 3;
    n = epoll_wait(ep, got, 8, 0);
    int saw44 = 0;
    for (int i = 0; i < n; i++) saw44 += got[i].data.u64 == 44;
    sc_check(saw44 == 1, "nested epoll reports readiness", "n=%d", n);
    return sc_done();
}
