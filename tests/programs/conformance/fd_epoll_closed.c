/* An epoll set watching files through descriptor numbers since closed: one pipe's read end was
 * dup'd and its first number closed (the watch lives on, the file being open); another's number
 * was closed and taken again by an unrelated file (/dev/null, close-on-exec).  After restore: the
 * watch list fdinfo shows (by the old numbers), the events each pipe raises with its data, and
 * the unrelated file still at the reused number with its descriptor flags. */
#include "cf.h"
#include <sys/epoll.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int a[2], b[2];
    if (pipe(a) || pipe(b)) return 3;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0xa1};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, a[0], &ev)) return 3;
    ev.data.u64 = 0xb2;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, b[0], &ev)) return 3;
    int a_again = dup(a[0]);
    int b_again = dup(b[0]);
    int a_num = a[0], b_num = b[0];
    close(a[0]);
    close(b[0]);
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);          /* takes the lowest free number */
    if (null != a_num && null != b_num) return 3;
    char before[512];
    cf_epoll_watches(ep, before, sizeof before);
    sc_ready();
    sc_wait_go();
    char after[512];
    cf_epoll_watches(ep, after, sizeof after);
    cf_same(before, after, "the watch list");
    sc_check(fcntl(null, F_GETFD) == FD_CLOEXEC, "the reused number keeps its file and flags", "%d",
             fcntl(null, F_GETFD));
    char link[64] = {0}, proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", null);
    sc_check(readlink(proc, link, sizeof link - 1) > 0 && strcmp(link, "/dev/null") == 0, "it is /dev/null", "%s", link);
    struct epoll_event got[4];
    sc_check(epoll_wait(ep, got, 4, 0) == 0, "nothing ready yet", "%s", "");
    if (write(a[1], "x", 1) != 1 || write(b[1], "y", 1) != 1) return 3;
    int n = epoll_wait(ep, got, 4, 1000);
    unsigned long long seen = 0;
    for (int i = 0; i < n; i++) seen |= got[i].data.u64 << (i * 8);
    sc_check(n == 2 && (seen == (0xa1 | 0xb2ULL << 8) || seen == (0xb2 | 0xa1ULL << 8)), "both pipes' events",
             "%d %llx", n, seen);
    char c;
    sc_check(read(a_again, &c, 1) == 1 && c == 'x' && read(b_again, &c, 1) == 1 && c == 'y', "through the dups",
             "%s", "");
    (void)a_num;
    (void)b_num;
    return sc_done();
}
