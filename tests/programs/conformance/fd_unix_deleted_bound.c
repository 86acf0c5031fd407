/* Unix sockets whose file was unlinked: a stream listener (O_NONBLOCK) bound at WORK/p with one
 * pending connection (it has sent nothing: data sent before accept is refused), then WORK/p unlinked and a second listener bound there;
 * and a datagram socket bound at WORK/q, whose file was then unlinked.  After restore: the first
 * listener still says WORK/p and accept() on it yields the pending connection (data both ways);
 * a new connect() to WORK/p reaches the second listener, not the first (EAGAIN there); WORK/p is a
 * socket; the datagram socket still says WORK/q, WORK/q does not exist (ENOENT: stat, sendto),
 * and its datagrams to a third socket come from WORK/q. */
#include "cf.h"
#include <poll.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

static socklen_t at(struct sockaddr_un *a, const char *name)
{
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    if (snprintf(a->sun_path, sizeof a->sun_path, "%s", cf_path(name)) >= (int)sizeof a->sun_path) exit(3);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(a->sun_path) + 1);
}

static int named(int fd, int peer, const struct sockaddr_un *want, socklen_t len)
{
    struct sockaddr_un a;
    socklen_t l = sizeof a;
    if ((peer ? getpeername : getsockname)(fd, (struct sockaddr *)&a, &l)) return 0;
    return l == len && memcmp(&a, want, len) == 0;
}

static int accept_wait(int l)
{
    struct pollfd p = {.fd = l, .events = POLLIN};
    if (poll(&p, 1, 5000) != 1) return -1;
    return accept(l, NULL, NULL);
}

static int both_ways(int x, int y)
{
    char c = 0;
    return send(x, "x", 1, MSG_DONTWAIT) == 1 && recv(y, &c, 1, MSG_DONTWAIT) == 1 && c == 'x' &&
           send(y, "y", 1, MSG_DONTWAIT) == 1 && recv(x, &c, 1, MSG_DONTWAIT) == 1 && c == 'y';
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    struct sockaddr_un p, q, r;
    socklen_t pl = at(&p, "p"), ql = at(&q, "q"), rl = at(&r, "r");
    int l1 = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0), c1 = socket(AF_UNIX, SOCK_STREAM, 0);
    if (bind(l1, (struct sockaddr *)&p, pl) || listen(l1, 4) || connect(c1, (struct sockaddr *)&p, pl) ||
        unlink(p.sun_path)) return 3;
    int l2 = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (bind(l2, (struct sockaddr *)&p, pl) || listen(l2, 4)) return 3;
    int dg = socket(AF_UNIX, SOCK_DGRAM, 0), rcv = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (bind(dg, (struct sockaddr *)&q, ql) || unlink(q.sun_path) || bind(rcv, (struct sockaddr *)&r, rl)) return 3;
    struct stat st;
    if (stat(p.sun_path, &st)) return 3;
    mode_t p_mode = st.st_mode;
    sc_ready();
    sc_wait_go();
    sc_check(named(l1, 0, &p, pl) && named(l2, 0, &p, pl), "both listeners say the path", "%s", "");
    sc_check(named(c1, 1, &p, pl), "the pending client's peer is the path", "%s", "");
    int a1 = accept_wait(l1);
    char buf[8] = {0};
    sc_check(a1 >= 0, "accept() on the first yields the pending connection", "a1 %d errno %d", a1, errno);
    sc_check(a1 >= 0 && named(a1, 0, &p, pl) && both_ways(c1, a1), "and it carries bytes both ways", "%s", "");
    int c2 = socket(AF_UNIX, SOCK_STREAM, 0);
    sc_check(connect(c2, (struct sockaddr *)&p, pl) == 0, "a new connect() to the path", "errno %d", errno);
    int a2 = accept_wait(l2);
    sc_check(a2 >= 0 && both_ways(c2, a2), "reaches the second listener", "a2 %d errno %d", a2, errno);
    errno = 0;
    sc_check(accept(l1, NULL, NULL) < 0 && errno == EAGAIN, "not the first (EAGAIN)", "errno %d", errno);
    int s = stat(p.sun_path, &st);
    sc_check(s == 0 && S_ISSOCK(st.st_mode) && st.st_mode == p_mode, "the path is a socket, mode as before",
             "stat %d mode %o, was %o", s, s ? 0 : st.st_mode, p_mode);
    sc_check(named(dg, 0, &q, ql), "the datagram socket still says its deleted path", "%s", "");
    errno = 0;
    s = stat(q.sun_path, &st);
    sc_check(s < 0 && errno == ENOENT, "its file stays deleted", "stat %d errno %d", s, errno);
    errno = 0;
    sc_check(sendto(rcv, "z", 1, MSG_DONTWAIT, (struct sockaddr *)&q, ql) < 0 && errno == ENOENT,
             "nobody reaches it by the path", "errno %d", errno);
    struct sockaddr_un from;
    socklen_t fl = sizeof from;
    sc_check(sendto(dg, "from-q", 6, MSG_DONTWAIT, (struct sockaddr *)&r, rl) == 6 &&
             recvfrom(rcv, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&from, &fl) == 6 && fl == ql &&
             memcmp(&from, &q, ql) == 0, "it still sends, from its deleted path", "from length %u", fl);
    return sc_done();
}
