/* A Unix stream listener bound to WORK/sock (mode 0640, listen(s, 7), O_NONBLOCK) with one
 * connection accepted and bytes queued both ways, and two connections a child made but nobody
 * accepted (neither has sent anything: data sent before accept is refused, tested apart).  After restore:
 * status flags, names (getsockname of the listener and the accepted end, getpeername of the
 * clients), SO_ACCEPTCONN, the socket file (a socket, mode 0640), SO_PEERCRED both ways, the
 * queued bytes; accept() yields the child's two connections in order (the child sends "1" and "2"
 * after GO), data flows both ways on them, and a new connect() to the path is accepted. */
#include "cf.h"
#include <poll.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

static struct sockaddr_un addr = {.sun_family = AF_UNIX};

static int named(int fd, int peer)   /* getsockname / getpeername is the path, NUL included */
{
    struct sockaddr_un a;
    socklen_t l = sizeof a;
    if ((peer ? getpeername : getsockname)(fd, (struct sockaddr *)&a, &l)) return 0;
    return l == offsetof(struct sockaddr_un, sun_path) + strlen(addr.sun_path) + 1 &&
           strcmp(a.sun_path, addr.sun_path) == 0;
}

static int unnamed_peer(int fd)
{
    struct sockaddr_un a;
    socklen_t l = sizeof a;
    return getpeername(fd, (struct sockaddr *)&a, &l) == 0 && l == sizeof(sa_family_t);
}

static pid_t peer_pid(int fd)
{
    struct ucred c = {0};
    socklen_t l = sizeof c;
    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c, &l);
    return c.pid;
}

static ssize_t recv_wait(int fd, char *buf, size_t n)   /* what arrives within 5 s */
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 5000) != 1) return -1;
    return recv(fd, buf, n, MSG_DONTWAIT);
}

static int accept_wait(int l)
{
    struct pollfd p = {.fd = l, .events = POLLIN};
    if (poll(&p, 1, 5000) != 1) return -1;
    return accept(l, NULL, NULL);
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    if (snprintf(addr.sun_path, sizeof addr.sun_path, "%s", cf_path("sock")) >= (int)sizeof addr.sun_path) return 3;
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    if (bind(l, (struct sockaddr *)&addr, sizeof addr) || chmod(addr.sun_path, 0640) || listen(l, 7)) return 3;
    fcntl(l, F_SETFL, fcntl(l, F_GETFL) | O_NONBLOCK);
    int c0 = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(c0, (struct sockaddr *)&addr, sizeof addr)) return 3;
    int a0 = accept(l, NULL, NULL);
    if (a0 < 0 || send(c0, "to-server", 9, 0) != 9 || send(a0, "to-client", 9, 0) != 9) return 3;
    pid_t parent = getpid();
    int gate[2];
    cf_gate_open(gate);
    pid_t child = fork();
    if (child == 0) {
        cf_sub("child");
        close(l);
        close(c0);
        close(a0);
        int p1 = socket(AF_UNIX, SOCK_STREAM, 0), p2 = socket(AF_UNIX, SOCK_STREAM, 0);
        if (connect(p1, (struct sockaddr *)&addr, sizeof addr) || connect(p2, (struct sockaddr *)&addr, sizeof addr))
            _exit(3);
        fcntl(p2, F_SETFL, O_NONBLOCK);
        int fl1 = fcntl(p1, F_GETFL), fl2 = fcntl(p2, F_GETFL);
        cf_gate_pass(gate);
        sc_wait_go();
        sc_check(fcntl(p1, F_GETFL) == fl1 && fcntl(p2, F_GETFL) == fl2, "pending clients' status flags",
                 "%#x %#x, were %#x %#x", fcntl(p1, F_GETFL), fcntl(p2, F_GETFL), fl1, fl2);
        sc_check(named(p1, 1) && named(p2, 1), "pending clients' getpeername is the path", "%s", "");
        sc_check(peer_pid(p1) == parent && peer_pid(p2) == parent, "their SO_PEERCRED is the listener's process",
                 "%d %d, want %d", peer_pid(p1), peer_pid(p2), parent);
        sc_check(send(p1, "1", 1, MSG_DONTWAIT) == 1 && send(p2, "2", 1, MSG_DONTWAIT) == 1, "they send after GO",
                 "errno %d", errno);
        char b1[8] = {0}, b2[8] = {0};
        ssize_t n1 = recv_wait(p1, b1, sizeof b1), n2 = recv_wait(p2, b2, sizeof b2);
        sc_check(n1 == 2 && memcmp(b1, "r1", 2) == 0 && n2 == 2 && memcmp(b2, "r2", 2) == 0,
                 "the accepted ends answer each", "%zd %.2s, %zd %.2s", n1, b1, n2, b2);
        exit(sc_done());
    }
    cf_gate_wait(gate, 1);
    int all[3] = {l, c0, a0}, fl[3];
    for (int i = 0; i < 3; i++) fl[i] = fcntl(all[i], F_GETFL);
    sc_ready();
    sc_wait_go();
    sc_check(fcntl(l, F_GETFL) == fl[0] && (fl[0] & O_NONBLOCK), "listener's status flags (O_NONBLOCK)",
             "%#x, was %#x", fcntl(l, F_GETFL), fl[0]);
    sc_check(fcntl(c0, F_GETFL) == fl[1] && fcntl(a0, F_GETFL) == fl[2], "connection's status flags",
             "%#x %#x, were %#x %#x", fcntl(c0, F_GETFL), fcntl(a0, F_GETFL), fl[1], fl[2]);
    sc_check(named(l, 0) && named(a0, 0), "getsockname of the listener and the accepted end", "%s", "");
    sc_check(named(c0, 1), "getpeername of the client", "%s", "");
    sc_check(unnamed_peer(a0), "getpeername of the accepted end: the unnamed client", "%s", "");
    int acc = -1;
    socklen_t ol = sizeof acc;
    getsockopt(l, SOL_SOCKET, SO_ACCEPTCONN, &acc, &ol);
    sc_check(acc == 1, "SO_ACCEPTCONN", "%d", acc);
    struct stat st;
    int r = stat(addr.sun_path, &st);
    sc_check(r == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 07777) == 0640, "the socket file, mode 0640",
             "stat %d, mode %o", r, r ? 0 : st.st_mode);
    sc_check(peer_pid(a0) == parent && peer_pid(c0) == parent, "SO_PEERCRED of the accepted end and the client",
             "%d %d, want %d", peer_pid(a0), peer_pid(c0), parent);
    char buf[32] = {0};
    ssize_t n = recv(a0, buf, sizeof buf, MSG_DONTWAIT);
    sc_check(n == 9 && memcmp(buf, "to-server", 9) == 0, "bytes queued for the server", "%zd %.9s", n, buf);
    n = recv(c0, buf, sizeof buf, MSG_DONTWAIT);
    sc_check(n == 9 && memcmp(buf, "to-client", 9) == 0, "bytes queued for the client", "%zd %.9s", n, buf);
    int a1 = accept_wait(l), a2 = accept_wait(l);
    sc_check(a1 >= 0 && a2 >= 0, "accept() yields the two pending connections", "%d %d errno %d", a1, a2, errno);
    sc_check(peer_pid(a1) == child && peer_pid(a2) == child, "their SO_PEERCRED is the child", "%d %d, want %d",
             peer_pid(a1), peer_pid(a2), child);
    sc_check(named(a1, 0) && named(a2, 0), "their getsockname is the path", "%s", "");
    char b1[8] = {0}, b2[8] = {0};
    ssize_t n1 = recv_wait(a1, b1, sizeof b1), n2 = recv_wait(a2, b2, sizeof b2);
    sc_check(n1 == 1 && b1[0] == '1', "the first accepted is the first connected (it sent \"1\")", "%zd %.1s",
             n1, b1);
    sc_check(n2 == 1 && b2[0] == '2', "the second accepted is the second connected (it sent \"2\")", "%zd %.1s",
             n2, b2);
    sc_check(send(a1, "r1", 2, MSG_DONTWAIT) == 2 && send(a2, "r2", 2, MSG_DONTWAIT) == 2, "answering them",
             "errno %d", errno);
    cf_collect("child", child);
    int c3 = socket(AF_UNIX, SOCK_STREAM, 0);
    sc_check(connect(c3, (struct sockaddr *)&addr, sizeof addr) == 0, "a new connect() to the path", "errno %d", errno);
    int a3 = accept_wait(l);
    sc_check(a3 >= 0 && send(c3, "n", 1, 0) == 1 && recv_wait(a3, buf, 1) == 1 && buf[0] == 'n' &&
             send(a3, "m", 1, 0) == 1 && recv_wait(c3, buf, 1) == 1 && buf[0] == 'm',
             "is accepted and carries bytes both ways", "a3 %d errno %d", a3, errno);
    errno = 0;
    sc_check(accept(l, NULL, NULL) < 0 && errno == EAGAIN, "then the backlog is empty", "errno %d", errno);
    return sc_done();
}
