/* Blocked in epoll_wait(2) (no timeout) on a pipe a child writes after GO. */
#include "cf.h"
#include <sys/epoll.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int b[2];
    if (pipe(b)) return 3;
    int ep = epoll_create1(0);
    struct epoll_event e = {.events = EPOLLIN, .data.u64 = 0xfeedbeefcafeULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, b[0], &e);
    pid_t child = fork();
    if (child == 0) {
        sc_wait_go();
        _exit(write(b[1], "x", 1) == 1 ? 0 : 1);
    }
    close(b[1]);
    sc_ready();
    struct epoll_event got[4];
    int n;
    while ((n = epoll_wait(ep, got, 4, -1)) < 0 && errno == EINTR) {}
    sc_check(n == 1 && got[0].data.u64 == 0xfeedbeefcafeULL && (got[0].events & ~EPOLLHUP) == EPOLLIN, "epoll_wait event",
             "n=%d data=%llx events=%#x", n, n > 0 ? (unsigned long long)got[0].data.u64 : 0ULL,
             n > 0 ? got[0].events : 0);
    int st;
    waitpid(child, &st, 0);
    sc_check(WIFEXITED(st) && !WEXITSTATUS(st), "writer exits 0", "%#x", st);
    return sc_done();
}
