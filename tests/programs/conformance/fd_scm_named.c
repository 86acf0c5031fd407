/* Descriptors and credentials in flight in named Unix sockets, sent by a child that then closed
 * its copies: a datagram socket bound at WORK/d with SO_PASSCRED holds "f" from a sender bound to
 * an abstract name, carrying a regular file (offset 3; only in flight), and "e" from an unbound
 * sender connect()ed to it, carrying an eventfd the parent holds too; a connection accepted from
 * a listener at WORK/s holds "hello" from the child's client end, carrying a pipe's read end (only
 * in flight; "piped" in it, the write end kept by the parent).
 * After restore: the datagrams in order, each from its sender's address (none: unbound), with
 * the child's credentials and its descriptors (the file from its offset; the eventfd the parent's
 * own); the connection's bytes with the pipe end, which reads "piped"; the bound sender sends on. */
#include "cf.h"
#include <stddef.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>

static socklen_t at(struct sockaddr_un *a, const char *name)
{
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    if (snprintf(a->sun_path, sizeof a->sun_path, "%s", cf_path(name)) >= (int)sizeof a->sun_path) exit(3);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(a->sun_path) + 1);
}

static int send_fd(int s, const char *data, int fd, const struct sockaddr_un *to, socklen_t tl)
{
    char cbuf[CMSG_SPACE(sizeof(int))];
    memset(cbuf, 0, sizeof cbuf);
    struct iovec iov = {.iov_base = (void *)data, .iov_len = strlen(data)};
    struct msghdr m = {.msg_name = (void *)to, .msg_namelen = to ? tl : 0, .msg_iov = &iov, .msg_iovlen = 1,
                       .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    return sendmsg(s, &m, 0) == (ssize_t)strlen(data);
}

struct got {
    ssize_t n;
    char data[32];
    int fd;
    pid_t pid;
    struct sockaddr_un from;
    socklen_t fromlen;
};

static struct got recv_one(int s)
{
    struct got g = {.fd = -1, .fromlen = sizeof g.from};
    char cbuf[CMSG_SPACE(sizeof(int)) + CMSG_SPACE(sizeof(struct ucred))];
    struct iovec iov = {.iov_base = g.data, .iov_len = sizeof g.data - 1};
    struct msghdr m = {.msg_name = &g.from, .msg_namelen = g.fromlen, .msg_iov = &iov, .msg_iovlen = 1,
                       .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    g.n = recvmsg(s, &m, MSG_DONTWAIT);
    g.fromlen = m.msg_namelen;
    for (struct cmsghdr *c = g.n >= 0 ? CMSG_FIRSTHDR(&m) : NULL; c; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_type == SCM_RIGHTS) memcpy(&g.fd, CMSG_DATA(c), sizeof g.fd);
        if (c->cmsg_type == SCM_CREDENTIALS) {
            struct ucred u;
            memcpy(&u, CMSG_DATA(c), sizeof u);
            g.pid = u.pid;
        }
    }
    return g;
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    struct sockaddr_un d, s, b = {.sun_family = AF_UNIX};
    socklen_t dl = at(&d, "d"), sl = at(&s, "s");
    int bl = snprintf(b.sun_path + 1, sizeof b.sun_path - 1, "incr-cf-scm-%d", getpid());
    socklen_t blen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + bl);
    int one = 1, rcv = socket(AF_UNIX, SOCK_DGRAM, 0), lis = socket(AF_UNIX, SOCK_STREAM, 0), p[2];
    if (bind(rcv, (struct sockaddr *)&d, dl) || setsockopt(rcv, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) ||
        bind(lis, (struct sockaddr *)&s, sl) || listen(lis, 2) || pipe(p) || write(p[1], "piped", 5) != 5) return 3;
    int f = open(cf_path("carried"), O_RDWR | O_CREAT, 0600), ev = eventfd(0, 0);
    if (f < 0 || ev < 0 || write(f, "0123456789", 10) != 10 || lseek(f, 3, SEEK_SET) != 3) return 3;
    int gate[2];
    cf_gate_open(gate);
    pid_t child = fork();
    if (child == 0) {
        cf_sub("child");
        int bound = socket(AF_UNIX, SOCK_DGRAM, 0), conn = socket(AF_UNIX, SOCK_DGRAM, 0);
        int cl = socket(AF_UNIX, SOCK_STREAM, 0);
        if (bind(bound, (struct sockaddr *)&b, blen) || connect(conn, (struct sockaddr *)&d, dl) ||
            connect(cl, (struct sockaddr *)&s, sl)) _exit(3);
        if (!send_fd(bound, "f", f, &d, dl) || !send_fd(conn, "e", ev, NULL, 0) || !send_fd(cl, "hello", p[0], NULL, 0))
            _exit(3);
        close(f);
        close(ev);
        close(p[0]);
        close(p[1]);
        cf_gate_pass(gate);
        sc_wait_go();
        sc_check(sendto(bound, "again", 5, 0, (struct sockaddr *)&d, dl) == 5, "the bound sender still sends",
                 "errno %d", errno);
        exit(sc_done());
    }
    cf_gate_wait(gate, 1);
    int acc = accept(lis, NULL, NULL);
    close(f);
    close(p[0]);
    if (acc < 0) return 3;
    sc_ready();
    sc_wait_go();
    struct got g = recv_one(rcv);
    sc_check(g.n == 1 && g.data[0] == 'f' && g.fromlen == blen && memcmp(&g.from, &b, blen) == 0,
             "datagram 1 from the bound sender's name", "n %zd fromlen %u", g.n, g.fromlen);
    sc_check(g.pid == child, "with the child's credentials", "pid %d, child %d", g.pid, child);
    char buf[16] = {0};
    sc_check(g.fd >= 0 && read(g.fd, buf, 7) == 7 && memcmp(buf, "3456789", 7) == 0 &&
             (fcntl(g.fd, F_GETFL) & O_ACCMODE) == O_RDWR, "and the file, from its offset", "fd %d %.7s", g.fd, buf);
    g = recv_one(rcv);
    sc_check(g.n == 1 && g.data[0] == 'e' && g.fromlen == 0 && g.pid == child,
             "datagram 2 from the unbound sender, with the child's credentials", "n %zd fromlen %u pid %d", g.n,
             g.fromlen, g.pid);
    uint64_t v = 7, r = 0;
    sc_check(g.fd >= 0 && write(g.fd, &v, 8) == 8 && read(ev, &r, 8) == 8 && r == 7,
             "and the eventfd, the parent's own", "fd %d read %llu", g.fd, (unsigned long long)r);
    g = recv_one(acc);
    sc_check(g.n == 5 && memcmp(g.data, "hello", 5) == 0 && g.fd >= 0, "the connection's bytes with the pipe end",
             "n %zd fd %d", g.n, g.fd);
    memset(buf, 0, sizeof buf);
    sc_check(g.fd >= 0 && read(g.fd, buf, 5) == 5 && memcmp(buf, "piped", 5) == 0, "the pipe reads its bytes",
             "%.5s", buf);
    cf_collect("child", child);
    g = recv_one(rcv);
    sc_check(g.n == 5 && memcmp(g.data, "again", 5) == 0 && g.pid == child, "the child's later datagram",
             "n %zd pid %d", g.n, g.pid);
    return sc_done();
}
