/* TCP and UDP sockets inside one job (engine/inet.py), checked after a restore.
 *
 *   tcpjob OUT READY GO
 *
 * The parent listens on 127.0.0.1 (SO_REUSEADDR, backlog 7) and on ::1 (IPV6_V6ONLY); a child
 * connects to both.  Before the checkpoint, queues are left full on purpose:
 *   - the child sent "hello" over IPv4, the parent has not read it (the parent's receive queue);
 *   - the parent, non-blocking, wrote a pattern until EAGAIN, the child read none of it: the
 *     child's receive queue is full, the parent's send queue holds sent-not-acknowledged and
 *     never-sent bytes;
 *   - the child sent "six" over IPv6, unread;
 *   - the child sent "46" over IPv4 to a dual-stack IPv6 listener (IPV6_V6ONLY off): the parent's
 *     end names it by an IPv4-mapped address;
 *   - a second connection of the child to the IPv4 listener waits in its accept queue.
 * Options: TCP_NODELAY and TCP_KEEPIDLE 77 / SO_KEEPALIVE on the child's IPv4 socket, TCP_CORK
 * off and SO_RCVLOWAT 3 on the parent's accepted one.  A UDP socket bound to 127.0.0.1:0 and a
 * second one connected to it; two datagrams queued in the first, from the second and from a third
 * socket, and one in a UDP socket bound to ::1.
 *
 * After the restore each side checks names, options and F_GETFL flags; the child reads every
 * byte the parent wrote (checked against the pattern), then both directions carry on (512 KiB
 * one way, 100 KiB the other), the listeners accept new connections, and a datagram goes from
 * the connected UDP socket to the bound one.  The child reports its checks to the parent over a
 * socket pair; the parent writes OUT. */
#include "selfcheck.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>

static int ctl;                 /* child -> parent reports */

static unsigned char pat(size_t i, int k) { return (unsigned char)(i * (size_t)(7 + 2 * k) + (size_t)k); }

static void report(int ok, const char *what, const char *detail)
{
    char line[512];
    int n = snprintf(line, sizeof line, "%s %s%s%s\n", ok ? "ok" : "BAD", what, ok ? "" : ": ", ok ? "" : detail);
    if (write(ctl, line, (size_t)n) != n)
        _exit(9);
}

static int opt(int fd, int level, int name)
{
    int v = -1;
    socklen_t len = sizeof v;
    if (getsockopt(fd, level, name, &v, &len) < 0)
        return -1000 - errno;
    return v;
}

static int read_full(int fd, unsigned char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

static int write_full(int fd, const unsigned char *buf, size_t n)
{
    size_t put = 0;
    while (put < n) {
        ssize_t w = write(fd, buf + put, n - put);
        if (w <= 0)
            return -1;
        put += (size_t)w;
    }
    return 0;
}

static int check_pattern(const unsigned char *buf, size_t n, int k)
{
    for (size_t i = 0; i < n; i++)
        if (buf[i] != pat(i, k))
            return 0;
    return 1;
}

static int same_name(int fd, const struct sockaddr_storage *want, socklen_t want_len, int peer)
{
    struct sockaddr_storage now;
    socklen_t len = sizeof now;
    if ((peer ? getpeername(fd, (struct sockaddr *)&now, &len) : getsockname(fd, (struct sockaddr *)&now, &len)) < 0)
        return 0;
    return len == want_len && memcmp(&now, want, len) == 0;
}

struct names { struct sockaddr_storage local, peer; socklen_t local_len, peer_len; };

static void names_of(int fd, struct names *n)
{
    n->local_len = n->peer_len = sizeof n->local;
    getsockname(fd, (struct sockaddr *)&n->local, &n->local_len);
    if (getpeername(fd, (struct sockaddr *)&n->peer, &n->peer_len) < 0)
        n->peer_len = 0;
}

static int names_same(int fd, const struct names *n)
{
    return same_name(fd, &n->local, n->local_len, 0) && (!n->peer_len || same_name(fd, &n->peer, n->peer_len, 1));
}

int main(int argc, char **argv)
{
    sc_init(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    int one = 1, v6 = 1;
    struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
    socklen_t len4 = sizeof a4, len6 = sizeof a6;
    int l4 = socket(AF_INET, SOCK_STREAM, 0), l6 = socket(AF_INET6, SOCK_STREAM, 0), l46 = socket(AF_INET6, SOCK_STREAM, 0);
    int v6off = 0;
    struct sockaddr_in6 any6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT };
    socklen_t lenany = sizeof any6;
    setsockopt(l46, IPPROTO_IPV6, IPV6_V6ONLY, &v6off, sizeof v6off);
    if (bind(l46, (struct sockaddr *)&any6, sizeof any6) || listen(l46, 2)
        || getsockname(l46, (struct sockaddr *)&any6, &lenany))
        return 3;
    struct sockaddr_in to46 = { .sin_family = AF_INET, .sin_port = any6.sin6_port,
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    setsockopt(l4, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(l6, IPPROTO_IPV6, IPV6_V6ONLY, &v6, sizeof v6);
    if (bind(l4, (struct sockaddr *)&a4, sizeof a4) || listen(l4, 7) || getsockname(l4, (struct sockaddr *)&a4, &len4)
        || bind(l6, (struct sockaddr *)&a6, sizeof a6) || listen(l6, 3) || getsockname(l6, (struct sockaddr *)&a6, &len6))
        return 3;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
        return 3;
    pid_t child = fork();
    if (child == 0) {
        close(sv[0]);
        ctl = sv[1];
        int c4 = socket(AF_INET, SOCK_STREAM, 0), c6 = socket(AF_INET6, SOCK_STREAM, 0), idle = 77;
        setsockopt(c4, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(c4, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
        setsockopt(c4, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
        if (connect(c4, (struct sockaddr *)&a4, sizeof a4) || connect(c6, (struct sockaddr *)&a6, sizeof a6))
            _exit(3);
        int c46 = socket(AF_INET, SOCK_STREAM, 0), c4p = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(c46, (struct sockaddr *)&to46, sizeof to46) || connect(c4p, (struct sockaddr *)&a4, sizeof a4))
            _exit(3);
        if (write(c4, "hello", 5) != 5 || write(c6, "six", 3) != 3 || write(c46, "46", 2) != 2)
            _exit(3);
        struct names n4, n6, n4p;
        names_of(c4p, &n4p);
        names_of(c4, &n4);
        names_of(c6, &n6);
        size_t total;
        if (read(ctl, &total, sizeof total) != sizeof total)       /* the parent wrote this much */
            _exit(3);
        if (write(ctl, "r", 1) != 1)
            _exit(3);
        sc_wait_go();
        report(names_same(c4, &n4) && names_same(c6, &n6) && names_same(c4p, &n4p), "child names",
               "getsockname/getpeername changed");
        report(write(c4p, "p", 1) == 1, "child pending", strerror(errno));
        report(opt(c4, IPPROTO_TCP, TCP_NODELAY) == 1 && opt(c4, SOL_SOCKET, SO_KEEPALIVE) == 1
               && opt(c4, IPPROTO_TCP, TCP_KEEPIDLE) == 77, "child options", "TCP_NODELAY/SO_KEEPALIVE/TCP_KEEPIDLE");
        size_t more = 512 << 10;
        unsigned char *buf = malloc(total + more);
        int got = read_full(c4, buf, total + more) == 0;
        char detail[128];
        snprintf(detail, sizeof detail, "%zu + %zu bytes expected", total, more);
        report(got && check_pattern(buf, total, 0) && check_pattern(buf + total, more, 1), "child stream", detail);
        for (size_t i = 0; i < (100u << 10); i++)
            buf[i] = pat(i, 2);
        report(write_full(c4, buf, 100 << 10) == 0, "child sends", "write failed");
        char six[4] = {0};
        report(read_full(c6, (unsigned char *)six, 3) == 0 && memcmp(six, "xis", 3) == 0, "child ipv6", six);
        int again = socket(AF_INET, SOCK_STREAM, 0);
        report(connect(again, (struct sockaddr *)&a4, sizeof a4) == 0 && write(again, "x", 1) == 1, "child connects",
               strerror(errno));
        close(again);
        _exit(0);
    }
    close(sv[1]);
    /* The child's first IPv4 connection is accepted; its second one waits in the queue. */
    int s4 = accept(l4, NULL, NULL), s6 = accept(l6, NULL, NULL), s46 = accept(l46, NULL, NULL), lowat = 3, zero = 0;
    if (s4 < 0 || s6 < 0 || s46 < 0)
        return 3;
    setsockopt(s4, IPPROTO_TCP, TCP_CORK, &zero, sizeof zero);
    setsockopt(s4, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat);
    fcntl(s4, F_SETFL, fcntl(s4, F_GETFL) | O_NONBLOCK);
    size_t total = 0, room = 64 << 20;
    unsigned char *buf = malloc(room);
    for (size_t i = 0; i < room; i++)
        buf[i] = pat(i, 0);
    for (;;) {                      /* until the child's receive queue and our send queue are full */
        ssize_t w = write(s4, buf + total, 65536);
        if (w < 0 && errno == EAGAIN) {
            struct pollfd p = { .fd = s4, .events = POLLOUT };
            if (poll(&p, 1, 200) == 0)
                break;
            continue;
        }
        if (w <= 0)
            return 3;
        total += (size_t)w;
    }
    int u1 = socket(AF_INET, SOCK_DGRAM, 0), u2 = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in ua = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t ulen = sizeof ua;
    if (bind(u1, (struct sockaddr *)&ua, sizeof ua) || getsockname(u1, (struct sockaddr *)&ua, &ulen)
        || connect(u2, (struct sockaddr *)&ua, sizeof ua))
        return 3;
    int u3 = socket(AF_INET, SOCK_DGRAM, 0), u6 = socket(AF_INET6, SOCK_DGRAM, 0), u6b = socket(AF_INET6, SOCK_DGRAM, 0);
    struct sockaddr_in6 ua6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
    socklen_t ulen6 = sizeof ua6;
    if (bind(u6, (struct sockaddr *)&ua6, sizeof ua6) || getsockname(u6, (struct sockaddr *)&ua6, &ulen6)
        || send(u2, "first", 5, 0) != 5 || sendto(u3, "second!", 7, 0, (struct sockaddr *)&ua, sizeof ua) != 7
        || sendto(u6b, "sixth", 5, 0, (struct sockaddr *)&ua6, sizeof ua6) != 5)
        return 3;
    struct sockaddr_in u3name;
    struct sockaddr_in6 u6bname;
    socklen_t u3len = sizeof u3name, u6blen = sizeof u6bname;
    getsockname(u3, (struct sockaddr *)&u3name, &u3len);
    getsockname(u6b, (struct sockaddr *)&u6bname, &u6blen);
    struct names n4, n6, nl4, nu1, nu2;
    names_of(s4, &n4);
    names_of(s6, &n6);
    names_of(l4, &nl4);
    names_of(u1, &nu1);
    names_of(u2, &nu2);
    int fl4 = fcntl(s4, F_GETFL), fl6 = fcntl(s6, F_GETFL), fll = fcntl(l4, F_GETFL);
    char r;
    if (write(sv[0], &total, sizeof total) != sizeof total || read(sv[0], &r, 1) != 1)
        return 3;
    sc_ready();
    sc_wait_go();
    char detail[256];
    snprintf(detail, sizeof detail, "wrote %zu bytes before", total);
    sc_check(total > 0, "queued", "%s", detail);
    sc_check(names_same(s4, &n4) && names_same(s6, &n6) && names_same(l4, &nl4), "names",
             "getsockname/getpeername changed");
    sc_check(names_same(u1, &nu1) && names_same(u2, &nu2), "udp names", "getsockname/getpeername changed");
    sc_check(fcntl(s4, F_GETFL) == fl4 && fcntl(s6, F_GETFL) == fl6 && fcntl(l4, F_GETFL) == fll, "flags",
             "%o %o %o, were %o %o %o", fcntl(s4, F_GETFL), fcntl(s6, F_GETFL), fcntl(l4, F_GETFL), fl4, fl6, fll);
    sc_check(opt(l4, SOL_SOCKET, SO_REUSEADDR) == 1 && opt(l4, SOL_SOCKET, SO_ACCEPTCONN) == 1
             && opt(l6, IPPROTO_IPV6, IPV6_V6ONLY) == 1 && opt(s4, SOL_SOCKET, SO_RCVLOWAT) == 3
             && opt(s4, IPPROTO_TCP, TCP_CORK) == 0 && opt(s6, SOL_SOCKET, SO_REUSEADDR) == 0,
             "options", "reuseaddr %d acceptconn %d v6only %d rcvlowat %d cork %d s6 reuseaddr %d",
             opt(l4, SOL_SOCKET, SO_REUSEADDR), opt(l4, SOL_SOCKET, SO_ACCEPTCONN),
             opt(l6, IPPROTO_IPV6, IPV6_V6ONLY), opt(s4, SOL_SOCKET, SO_RCVLOWAT), opt(s4, IPPROTO_TCP, TCP_CORK),
             opt(s6, SOL_SOCKET, SO_REUSEADDR));
    char hello[6] = {0};
    struct pollfd p = { .fd = s4, .events = POLLIN };
    poll(&p, 1, 10000);
    sc_check(read(s4, hello, 5) == 5 && strcmp(hello, "hello") == 0, "receive queue", "read \"%s\"", hello);
    fcntl(s4, F_SETFL, fl4 & ~O_NONBLOCK);
    size_t more = 512 << 10;
    for (size_t i = 0; i < more; i++)
        buf[i] = pat(i, 1);
    sc_check(write_full(s4, buf, more) == 0, "send more", "%s", strerror(errno));
    sc_check(read_full(s4, buf, 100 << 10) == 0 && check_pattern(buf, 100 << 10, 2), "receive more",
             "100 KiB from the child");
    char six[4] = {0};
    sc_check(read_full(s6, (unsigned char *)six, 3) == 0 && memcmp(six, "six", 3) == 0 && write(s6, "xis", 3) == 3,
             "ipv6", "read \"%s\"", six);
    char b46[3] = {0};
    sc_check(read_full(s46, (unsigned char *)b46, 2) == 0 && strcmp(b46, "46") == 0, "dual stack", "read \"%s\"", b46);
    int sp = accept(l4, NULL, NULL);
    char pch = 0;
    sc_check(sp >= 0 && read(sp, &pch, 1) == 1 && pch == 'p', "pending accept", "%s", strerror(errno));
    int s4b = accept(l4, NULL, NULL);
    char x = 0;
    sc_check(s4b >= 0 && read(s4b, &x, 1) == 1 && x == 'x', "accept", "%s", strerror(errno));
    sc_check(send(u2, "dgram", 5, 0) == 5, "udp send", "%s", strerror(errno));
    char dg[16] = {0};
    struct sockaddr_in from;
    socklen_t flen = sizeof from;
    struct sockaddr_in u2name;
    socklen_t u2len = sizeof u2name;
    getsockname(u2, (struct sockaddr *)&u2name, &u2len);
    sc_check(recvfrom(u1, dg, sizeof dg, 0, (struct sockaddr *)&from, &flen) == 5 && strcmp(dg, "first") == 0
             && from.sin_port == u2name.sin_port && from.sin_addr.s_addr == u2name.sin_addr.s_addr,
             "udp queued 1", "got \"%s\"", dg);
    memset(dg, 0, sizeof dg);
    flen = sizeof from;
    sc_check(recvfrom(u1, dg, sizeof dg, 0, (struct sockaddr *)&from, &flen) == 7 && strcmp(dg, "second!") == 0
             && from.sin_port == u3name.sin_port, "udp queued 2", "got \"%s\"", dg);
    memset(dg, 0, sizeof dg);
    struct sockaddr_in6 from6;
    socklen_t flen6 = sizeof from6;
    sc_check(recvfrom(u6, dg, sizeof dg, 0, (struct sockaddr *)&from6, &flen6) == 5 && strcmp(dg, "sixth") == 0
             && from6.sin6_port == u6bname.sin6_port
             && memcmp(&from6.sin6_addr, &in6addr_loopback, sizeof from6.sin6_addr) == 0, "udp6 queued",
             "got \"%s\"", dg);
    memset(dg, 0, sizeof dg);
    flen = sizeof from;
    sc_check(recvfrom(u1, dg, sizeof dg, 0, (struct sockaddr *)&from, &flen) == 5 && strcmp(dg, "dgram") == 0
             && from.sin_port == u2name.sin_port, "udp", "got \"%s\"", dg);
    FILE *rep = fdopen(sv[0], "r");
    char line[512];
    int lines = 0;
    while (fgets(line, sizeof line, rep)) {
        line[strcspn(line, "\n")] = 0;
        sc_check(strncmp(line, "ok ", 3) == 0, line + (line[0] == 'o' ? 3 : 4), "%s", line);
        lines++;
    }
    int status;
    waitpid(child, &status, 0);
    sc_check(lines == 7 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "child", "%d reports, status %d", lines,
             status);
    return sc_done();
}
