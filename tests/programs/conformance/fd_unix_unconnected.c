/* Unix sockets without a connection: a stream socket fresh from socket(); an unbound datagram
 * socket that sendto()'d two datagrams to a socket bound at WORK/r (SO_RCVBUF set), still queued;
 * a stream socket bound at WORK/n, not listening; and a datagram socket with SO_PASSCRED that
 * sent once (Linux autobinds it to an abstract name; its datagram was read before the checkpoint).
 * After restore: the fresh socket has an empty name and no peer, and can still bind(), listen()
 * and accept; the queued datagrams arrive with the sender address recvfrom showed before (peeked)
 * and the sender is still unbound; WORK/n refuses connect() with ECONNREFUSED; the autobound name
 * is kept (taken, and a datagram sent to it arrives with our credentials); SO_RCVBUF and
 * SO_PASSCRED read back as set. */
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

static socklen_t name_of(int fd, struct sockaddr_un *a)
{
    socklen_t l = sizeof *a;
    memset(a, 0, sizeof *a);
    return getsockname(fd, (struct sockaddr *)a, &l) ? 0 : l;
}

static int opt(int fd, int name)
{
    int v = -1;
    socklen_t l = sizeof v;
    getsockopt(fd, SOL_SOCKET, name, &v, &l);
    return v;
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    struct sockaddr_un r, n, r2, u_name, pc_name, peeked, a;
    socklen_t rl = at(&r, "r"), nl = at(&n, "n"), r2l = at(&r2, "r2");
    int fresh = socket(AF_UNIX, SOCK_STREAM, 0);
    int rcv = socket(AF_UNIX, SOCK_DGRAM, 0), u = socket(AF_UNIX, SOCK_DGRAM, 0), sz = 100000, one = 1;
    setsockopt(rcv, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    if (bind(rcv, (struct sockaddr *)&r, rl) || sendto(u, "u1", 2, 0, (struct sockaddr *)&r, rl) != 2 ||
        sendto(u, "u22", 3, 0, (struct sockaddr *)&r, rl) != 3) return 3;
    char buf[64];
    socklen_t peekl = sizeof peeked;
    memset(&peeked, 0, sizeof peeked);
    if (recvfrom(rcv, buf, sizeof buf, MSG_PEEK, (struct sockaddr *)&peeked, &peekl) != 2) return 3;
    int ns = socket(AF_UNIX, SOCK_STREAM, 0);
    if (bind(ns, (struct sockaddr *)&n, nl)) return 3;
    int t = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(t, (struct sockaddr *)&n, nl) == 0 || errno != ECONNREFUSED) return 3;
    close(t);
    int pc = socket(AF_UNIX, SOCK_DGRAM, 0), rcv2 = socket(AF_UNIX, SOCK_DGRAM, 0);
    setsockopt(pc, SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
    if (bind(rcv2, (struct sockaddr *)&r2, r2l) || sendto(pc, "pc", 2, 0, (struct sockaddr *)&r2, r2l) != 2 ||
        recv(rcv2, buf, sizeof buf, 0) != 2) return 3;      /* no credentials left in flight */
    socklen_t fresh_l = name_of(fresh, &a), u_l = name_of(u, &u_name), pc_l = name_of(pc, &pc_name);
    int rcvbuf = opt(rcv, SO_RCVBUF);
    sc_ready();
    sc_wait_go();

    sc_check(name_of(fresh, &a) == fresh_l && fresh_l == sizeof(sa_family_t), "fresh socket: empty name",
             "length %u, was %u", name_of(fresh, &a), fresh_l);
    socklen_t l = sizeof a;
    errno = 0;
    sc_check(getpeername(fresh, (struct sockaddr *)&a, &l) < 0 && errno == ENOTCONN, "and no peer", "errno %d",
             errno);
    struct sockaddr_un late;
    socklen_t latel = at(&late, "late");
    int c = socket(AF_UNIX, SOCK_STREAM, 0), acc = -1;
    struct pollfd p = {.fd = fresh, .events = POLLIN};
    if (bind(fresh, (struct sockaddr *)&late, latel) == 0 && listen(fresh, 2) == 0 &&
        connect(c, (struct sockaddr *)&late, latel) == 0 && poll(&p, 1, 5000) == 1)
        acc = accept(fresh, NULL, NULL);
    sc_check(acc >= 0 && send(c, "hi", 2, 0) == 2 && recv(acc, buf, sizeof buf, MSG_DONTWAIT) == 2,
             "it can still bind, listen and accept", "acc %d errno %d", acc, errno);

    sc_check(name_of(u, &a) == u_l && memcmp(&a, &u_name, u_l) == 0, "the unbound sender's name as before",
             "length %u, was %u", name_of(u, &a), u_l);
    const char *want[2] = {"u1", "u22"};
    for (int i = 0; i < 2; i++) {
        struct sockaddr_un from;
        socklen_t fl = sizeof from;
        memset(&from, 0, sizeof from);
        ssize_t got = recvfrom(rcv, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
        char what[80];
        snprintf(what, sizeof what, "queued datagram \"%s\", its sender's address as before", want[i]);
        sc_check(got == (ssize_t)strlen(want[i]) && memcmp(buf, want[i], (size_t)got) == 0 && fl == peekl &&
                 memcmp(&from, &peeked, fl) == 0, what, "%zd, address length %u, was %u", got, fl, peekl);
    }
    sc_check(recv(rcv, buf, sizeof buf, MSG_DONTWAIT) < 0 && errno == EAGAIN, "then no more", "errno %d", errno);
    sc_check(opt(rcv, SO_RCVBUF) == rcvbuf, "SO_RCVBUF", "%d, was %d", opt(rcv, SO_RCVBUF), rcvbuf);

    sc_check(name_of(ns, &a) == nl && strcmp(a.sun_path, n.sun_path) == 0, "bound stream socket keeps its path",
             "%s", "");
    t = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    errno = 0;
    sc_check(connect(t, (struct sockaddr *)&n, nl) < 0 && errno == ECONNREFUSED, "not listening: ECONNREFUSED",
             "errno %d", errno);

    sc_check(opt(pc, SO_PASSCRED) == 1 && opt(rcv, SO_PASSCRED) == 0, "SO_PASSCRED", "%d %d", opt(pc, SO_PASSCRED),
             opt(rcv, SO_PASSCRED));
    sc_check(name_of(pc, &a) == pc_l && memcmp(&a, &pc_name, pc_l) == 0, "the autobound name as before",
             "length %u, was %u", name_of(pc, &a), pc_l);
    int dup_bind = socket(AF_UNIX, SOCK_DGRAM, 0);
    errno = 0;
    sc_check(bind(dup_bind, (struct sockaddr *)&pc_name, pc_l) < 0 && errno == EADDRINUSE, "and taken", "errno %d",
             errno);
    union {
        struct cmsghdr h;
        char b[CMSG_SPACE(sizeof(struct ucred))];
    } ctl;
    struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = &ctl, .msg_controllen = sizeof ctl};
    ssize_t got = -1;
    if (sendto(rcv, "to-pc", 5, MSG_DONTWAIT, (struct sockaddr *)&pc_name, pc_l) == 5)
        got = recvmsg(pc, &m, MSG_DONTWAIT);
    struct cmsghdr *h = got == 5 ? CMSG_FIRSTHDR(&m) : NULL;
    struct ucred cr = {0};
    if (h && h->cmsg_type == SCM_CREDENTIALS) memcpy(&cr, CMSG_DATA(h), sizeof cr);
    sc_check(got == 5 && cr.pid == getpid() && cr.uid == getuid(), "a datagram to it arrives, with our credentials",
             "%zd pid %d uid %d", got, cr.pid, cr.uid);
    return sc_done();
}
