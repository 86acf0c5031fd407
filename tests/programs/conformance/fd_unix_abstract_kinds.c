/* Unix sockets of all three types bound to abstract names (a leading NUL, an exact length, our PID
 * in it):  a seqpacket listener with one accepted connection holding two queued messages; a
 * datagram socket holding datagrams from an unbound socket connect()ed to it and from a socket
 * bound to an abstract name of its own (sendto); a stream socket bound but not listening.
 * After restore: every name (getsockname, getpeername, EADDRINUSE for a second bind), the
 * seqpacket boundaries and a new connection; the datagrams in order with their senders' addresses
 * (as recvfrom showed them for a probe before; Linux gives length 0 for an unbound sender), both
 * senders still send; SO_PEERCRED of the datagram sockets as before; the lone stream socket refuses
 * connect() with ECONNREFUSED. */
#include "cf.h"
#include <poll.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

static socklen_t abstract(struct sockaddr_un *a, const char *tag)
{
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    int n = snprintf(a->sun_path + 1, sizeof a->sun_path - 1, "incr-cf-%s-%d", tag, getpid());
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

static int named(int fd, int peer, const struct sockaddr_un *want, socklen_t len)
{
    struct sockaddr_un a;
    socklen_t l = sizeof a;
    if ((peer ? getpeername : getsockname)(fd, (struct sockaddr *)&a, &l)) return 0;
    return l == len && memcmp(&a, want, len) == 0;
}

static int taken(int type, const struct sockaddr_un *a, socklen_t len)   /* a second bind fails */
{
    int s = socket(AF_UNIX, type, 0);
    errno = 0;
    int r = bind(s, (const struct sockaddr *)a, len);
    int e = errno;
    close(s);
    return r < 0 && e == EADDRINUSE;
}

static void same_cred(int fd, const struct ucred *before, const char *what)
{
    struct ucred c = {0};
    socklen_t l = sizeof c;
    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c, &l);
    sc_check(c.pid == before->pid && c.uid == before->uid && c.gid == before->gid, what,
             "pid %d uid %d gid %d, before %d %d %d", c.pid, c.uid, c.gid, before->pid, before->uid, before->gid);
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    struct sockaddr_un sq, dg, bd, st, from;
    socklen_t sql = abstract(&sq, "seq"), dgl = abstract(&dg, "dg"), bdl = abstract(&bd, "bd");
    socklen_t stl = abstract(&st, "st"), froml;
    /* seqpacket: a listener, one connection accepted, two messages queued for the server, one back */
    int ls = socket(AF_UNIX, SOCK_SEQPACKET, 0), cs = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    if (bind(ls, (struct sockaddr *)&sq, sql) || listen(ls, 4) || connect(cs, (struct sockaddr *)&sq, sql)) return 3;
    int as = accept(ls, NULL, NULL);
    if (as < 0 || send(cs, "m-one", 5, 0) != 5 || send(cs, "m-two-longer", 12, 0) != 12 || send(as, "back", 4, 0) != 4)
        return 3;
    /* datagrams: d receives from u (unbound, connected) and b (bound, sendto) */
    int d = socket(AF_UNIX, SOCK_DGRAM, 0), u = socket(AF_UNIX, SOCK_DGRAM, 0), b = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (bind(d, (struct sockaddr *)&dg, dgl) || connect(u, (struct sockaddr *)&dg, dgl) ||
        bind(b, (struct sockaddr *)&bd, bdl)) return 3;
    char buf[64];
    if (send(u, "probe", 5, 0) != 5) return 3;             /* how recvfrom names an unbound sender */
    socklen_t ul_before = sizeof from;
    if (recvfrom(d, buf, sizeof buf, 0, (struct sockaddr *)&from, &ul_before) != 5) return 3;
    if (send(u, "from-u", 6, 0) != 6 || sendto(b, "from-b", 6, 0, (struct sockaddr *)&dg, dgl) != 6 ||
        send(u, "u-again", 7, 0) != 7) return 3;
    struct ucred cred_d, cred_u;
    socklen_t l = sizeof cred_d;
    getsockopt(d, SOL_SOCKET, SO_PEERCRED, &cred_d, &l);
    l = sizeof cred_u;
    getsockopt(u, SOL_SOCKET, SO_PEERCRED, &cred_u, &l);
    /* stream: bound, not listening */
    int ns = socket(AF_UNIX, SOCK_STREAM, 0);
    if (bind(ns, (struct sockaddr *)&st, stl)) return 3;
    sc_ready();
    sc_wait_go();

    sc_check(named(ls, 0, &sq, sql) && named(as, 0, &sq, sql) && named(cs, 1, &sq, sql),
             "seqpacket: listener, accepted end and client's peer keep the name", "%s", "");
    sc_check(taken(SOCK_SEQPACKET, &sq, sql), "seqpacket name still taken", "%s", "");
    ssize_t n1 = recv(as, buf, sizeof buf, MSG_DONTWAIT), n2 = recv(as, buf + 5, sizeof buf - 5, MSG_DONTWAIT);
    sc_check(n1 == 5 && n2 == 12 && memcmp(buf, "m-onem-two-longer", 17) == 0, "seqpacket messages, one by one",
             "%zd %zd", n1, n2);
    n1 = recv(cs, buf, sizeof buf, MSG_DONTWAIT);
    sc_check(n1 == 4 && memcmp(buf, "back", 4) == 0, "seqpacket message the other way", "%zd", n1);
    int c2 = socket(AF_UNIX, SOCK_SEQPACKET, 0), a2 = -1;
    struct pollfd p = {.fd = ls, .events = POLLIN};
    if (connect(c2, (struct sockaddr *)&sq, sql) == 0 && poll(&p, 1, 5000) == 1) a2 = accept(ls, NULL, NULL);
    sc_check(a2 >= 0 && send(c2, "new", 3, 0) == 3 && recv(a2, buf, sizeof buf, MSG_DONTWAIT) == 3,
             "a new seqpacket connection", "a2 %d errno %d", a2, errno);

    sc_check(named(d, 0, &dg, dgl) && named(b, 0, &bd, bdl) && named(u, 1, &dg, dgl),
             "datagram names (receiver, bound sender, connected sender's peer)", "%s", "");
    sc_check(taken(SOCK_DGRAM, &dg, dgl) && taken(SOCK_DGRAM, &bd, bdl), "datagram names still taken", "%s", "");
    struct sockaddr_un nm;
    socklen_t nml = sizeof nm;
    sc_check(getsockname(u, (struct sockaddr *)&nm, &nml) == 0 && nml == sizeof(sa_family_t),
             "connected sender still unbound", "len %u", nml);
    const char *want[3] = {"from-u", "from-b", "u-again"};
    for (int i = 0; i < 3; i++) {
        froml = sizeof from;
        memset(&from, 0, sizeof from);
        ssize_t n = recvfrom(d, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&from, &froml);
        int ok_from = i == 1 ? froml == bdl && memcmp(&from, &bd, bdl) == 0 : froml == ul_before;
        char what[64];
        snprintf(what, sizeof what, "datagram %d: \"%s\" and its sender's address", i + 1, want[i]);
        sc_check(n == (ssize_t)strlen(want[i]) && memcmp(buf, want[i], (size_t)n) == 0 && ok_from, what,
                 "%zd, address length %u (want %u)", n, froml, i == 1 ? bdl : ul_before);
    }
    sc_check(recv(d, buf, sizeof buf, MSG_DONTWAIT) < 0 && errno == EAGAIN, "then the queue is empty", "%d", errno);
    sc_check(send(u, "later-u", 7, MSG_DONTWAIT) == 7 && sendto(b, "later-b", 7, MSG_DONTWAIT,
             (struct sockaddr *)&dg, dgl) == 7, "both senders still send", "errno %d", errno);
    froml = sizeof from;
    n1 = recvfrom(d, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&from, &froml);
    sc_check(n1 == 7 && memcmp(buf, "later-u", 7) == 0 && froml == ul_before, "the connected one's arrives", "%zd %u",
             n1, froml);
    froml = sizeof from;
    n1 = recvfrom(d, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&from, &froml);
    sc_check(n1 == 7 && memcmp(buf, "later-b", 7) == 0 && froml == bdl && memcmp(&from, &bd, bdl) == 0,
             "the bound one's arrives, from its name", "%zd %u", n1, froml);
    same_cred(d, &cred_d, "SO_PEERCRED of the datagram receiver");
    same_cred(u, &cred_u, "SO_PEERCRED of the connected datagram sender");

    sc_check(named(ns, 0, &st, stl), "stream socket keeps its name", "%s", "");
    sc_check(taken(SOCK_STREAM, &st, stl), "stream name still taken", "%s", "");
    int t = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    errno = 0;
    sc_check(connect(t, (struct sockaddr *)&st, stl) < 0 && errno == ECONNREFUSED, "not listening: ECONNREFUSED",
             "errno %d", errno);
    return sc_done();
}
