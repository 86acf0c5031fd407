/* Unix socket pairs beyond what the conformance corpus checks (engine/unixsock.py):
 *   sockopts OUT READY GO opts      every SOL_SOCKET option a program can set and read back,
 *                                   on both ends of a stream, datagram and seqpacket pair, a
 *                                   peek offset part-way into queued data, shut-down ends of
 *                                   each type (with data queued where it can still be read)
 *   sockopts OUT READY GO deep      descriptors in flight in the second message of a datagram
 *                                   queue, and behind bytes in a stream (a pipe's two ends, which
 *                                   exist only in flight): every message is there, in order, with
 *                                   working descriptors
 *   sockopts OUT READY GO queues [hidden]
 *                                   a datagram and a seqpacket pair's queues of messages of many
 *                                   lengths, empty ones included (with `hidden`, one behind others,
 *                                   which no peek shows), one carrying a descriptor */
#include "selfcheck.h"
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#ifndef SO_PASSPIDFD
#define SO_PASSPIDFD 76
#endif
#ifndef SO_BUF_LOCK
#define SO_BUF_LOCK 72
#endif
#ifndef SO_RCVMARK
#define SO_RCVMARK 75
#endif
#ifndef SO_BINDTOIFINDEX
#define SO_BINDTOIFINDEX 62
#endif

static const struct {
    int opt;
    const char *name;
} OPTS[] = {
    {SO_DEBUG, "SO_DEBUG"}, {SO_REUSEADDR, "SO_REUSEADDR"}, {SO_DONTROUTE, "SO_DONTROUTE"},
    {SO_BROADCAST, "SO_BROADCAST"}, {SO_SNDBUF, "SO_SNDBUF"}, {SO_RCVBUF, "SO_RCVBUF"},
    {SO_KEEPALIVE, "SO_KEEPALIVE"}, {SO_OOBINLINE, "SO_OOBINLINE"}, {SO_NO_CHECK, "SO_NO_CHECK"},
    {SO_PRIORITY, "SO_PRIORITY"}, {SO_LINGER, "SO_LINGER"}, {SO_PASSCRED, "SO_PASSCRED"},
    {SO_RCVLOWAT, "SO_RCVLOWAT"}, {SO_RCVTIMEO, "SO_RCVTIMEO"}, {SO_SNDTIMEO, "SO_SNDTIMEO"},
    {SO_TIMESTAMP, "SO_TIMESTAMP"}, {SO_PASSSEC, "SO_PASSSEC"}, {SO_TIMESTAMPNS, "SO_TIMESTAMPNS"},
    {SO_MARK, "SO_MARK"}, {SO_RXQ_OVFL, "SO_RXQ_OVFL"}, {SO_PEEK_OFF, "SO_PEEK_OFF"},
    {SO_SELECT_ERR_QUEUE, "SO_SELECT_ERR_QUEUE"}, {SO_BUSY_POLL, "SO_BUSY_POLL"},
    {SO_INCOMING_CPU, "SO_INCOMING_CPU"}, {SO_BINDTOIFINDEX, "SO_BINDTOIFINDEX"},
    {SO_BUF_LOCK, "SO_BUF_LOCK"}, {SO_RCVMARK, "SO_RCVMARK"}, {SO_PASSPIDFD, "SO_PASSPIDFD"},
    {SO_LOCK_FILTER, "SO_LOCK_FILTER"},
};
#define NOPTS (int)(sizeof OPTS / sizeof OPTS[0])
#define NENDS 6

static void set_int(int fd, int opt, int v)
{
    if (setsockopt(fd, SOL_SOCKET, opt, &v, sizeof v)) exit(3);
}

/* Different values on every end: a restore that mixes up the ends, or sets only one, shows. */
static void set_all(int fd, int i)
{
    struct linger lg = {1, 5 + i};
    struct timeval snd = {1 + i, 500000}, rcv = {2, 4000 * (i + 1)};
    set_int(fd, SO_DEBUG, 1);
    set_int(fd, SO_REUSEADDR, 1);
    set_int(fd, SO_DONTROUTE, i & 1);
    set_int(fd, SO_BROADCAST, 1);
    set_int(fd, SO_SNDBUF, 100000 + 1000 * i);
    set_int(fd, SO_RCVBUF, 90000 + 1000 * i);
    set_int(fd, SO_KEEPALIVE, 1);
    set_int(fd, SO_OOBINLINE, 1);
    set_int(fd, SO_NO_CHECK, 1);
    set_int(fd, SO_PRIORITY, i);
    if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg)) exit(3);
    set_int(fd, SO_RCVLOWAT, 1 + i);
    if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof snd)) exit(3);
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof rcv)) exit(3);
    set_int(fd, i & 1 ? SO_TIMESTAMP : SO_TIMESTAMPNS, 1);
    set_int(fd, SO_PASSSEC, 1);
    set_int(fd, SO_MARK, 1000 + i);
    set_int(fd, SO_RXQ_OVFL, 1);
    set_int(fd, SO_SELECT_ERR_QUEUE, 1);
    set_int(fd, SO_BUSY_POLL, 10 + i);
    set_int(fd, SO_INCOMING_CPU, i % 2);
    set_int(fd, SO_BINDTOIFINDEX, 1);           /* lo */
    set_int(fd, SO_BUF_LOCK, i % 4);
    set_int(fd, SO_RCVMARK, 1);
    set_int(fd, SO_PASSPIDFD, i & 1);          /* not st[0]: bytes are queued to it */
    set_int(fd, SO_LOCK_FILTER, 1);
}

static int opts(void)
{
    int st[2], dg[2], sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, st) || socketpair(AF_UNIX, SOCK_DGRAM, 0, dg) ||
        socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp)) return 3;
    int all[NENDS] = {st[0], st[1], dg[0], dg[1], sp[0], sp[1]};
    for (int i = 0; i < NENDS; i++) set_all(all[i], i);
    /* A peek offset part-way into queued data: the next peek continues from there. */
    if (send(st[1], "0123456789", 10, 0) != 10) return 3;
    set_int(st[0], SO_PEEK_OFF, 0);
    char buf[16] = {0};
    if (recv(st[0], buf, 4, MSG_PEEK) != 4) return 3;
    static char before[NENDS][NOPTS][64];
    static socklen_t lens[NENDS][NOPTS];
    for (int i = 0; i < NENDS; i++)
        for (int o = 0; o < NOPTS; o++) {
            lens[i][o] = sizeof before[i][o];
            if (getsockopt(all[i], SOL_SOCKET, OPTS[o].opt, before[i][o], &lens[i][o])) return 3;
        }
    /* Shut-down ends: a stream whose one end can no longer send (bytes queued from it, then EOF),
     * a datagram end shut for reading (its peer's queue still carries data), a seqpacket end shut
     * both ways, nothing queued. */
    int st2[2], dg2[2], sp2[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, st2) || socketpair(AF_UNIX, SOCK_DGRAM, 0, dg2) ||
        socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp2)) return 3;
    if (send(st2[0], "to-1", 4, 0) != 4 || send(st2[1], "to-0", 4, 0) != 4) return 3;
    shutdown(st2[0], SHUT_WR);
    if (send(dg2[0], "d-one", 5, 0) != 5 || send(dg2[0], "", 0, 0) != 0 || send(dg2[0], "d-three", 7, 0) != 7)
        return 3;
    shutdown(dg2[0], SHUT_RD);
    shutdown(sp2[1], SHUT_RDWR);
    /* More bytes queued than a new socket's send buffer takes, through a buffer grown for them and
     * shrunk afterwards. */
    int st3[2];
    static char big[300000], got[300000];
    for (size_t i = 0; i < sizeof big; i++) big[i] = (char)(i * 7);
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, st3)) return 3;
    set_int(st3[1], SO_SNDBUF, 400000);
    if (send(st3[1], big, sizeof big, 0) != sizeof big) return 3;
    set_int(st3[1], SO_SNDBUF, 4096);
    int small;
    socklen_t sl = sizeof small;
    getsockopt(st3[1], SOL_SOCKET, SO_SNDBUF, &small, &sl);
    sc_ready();
    sc_wait_go();
    for (int i = 0; i < NENDS; i++)
        for (int o = 0; o < NOPTS; o++) {
            char now[64] = {0};
            socklen_t l = sizeof now;
            int rc = getsockopt(all[i], SOL_SOCKET, OPTS[o].opt, now, &l);
            char what[64];
            snprintf(what, sizeof what, "end %d: %s", i, OPTS[o].name);
            sc_check(rc == 0 && l == lens[i][o] && memcmp(now, before[i][o], l) == 0, what, "%d, before %d",
                     *(int *)now, *(int *)before[i][o]);
        }
    memset(buf, 0, sizeof buf);
    sc_check(recv(st[0], buf, 3, MSG_PEEK) == 3 && memcmp(buf, "456", 3) == 0, "peek continues at its offset",
             "%.3s", buf);
    sc_check(recv(st[0], buf, sizeof buf, 0) == 10 && memcmp(buf, "0123456789", 10) == 0, "then the bytes",
             "%.10s", buf);
    memset(buf, 0, sizeof buf);
    sc_check(recv(st2[1], buf, sizeof buf, MSG_DONTWAIT) == 4 && memcmp(buf, "to-1", 4) == 0 &&
             recv(st2[1], buf, sizeof buf, MSG_DONTWAIT) == 0, "stream: bytes then EOF", "%.4s", buf);
    sc_check(recv(st2[0], buf, sizeof buf, MSG_DONTWAIT) == 4 && memcmp(buf, "to-0", 4) == 0,
             "stream: the other way still open", "%.4s", buf);
    sc_check(send(st2[0], "x", 1, MSG_NOSIGNAL) < 0 && errno == EPIPE, "stream: the shut end cannot send",
             "errno %d", errno);
    ssize_t a = recv(dg2[1], buf, sizeof buf, MSG_DONTWAIT), b = recv(dg2[1], buf, sizeof buf, MSG_DONTWAIT);
    ssize_t c = recv(dg2[1], buf, sizeof buf, MSG_DONTWAIT);
    sc_check(a == 5 && b == 0 && c == 7 && memcmp(buf, "d-three", 7) == 0, "datagram: queued from the shut end",
             "%zd %zd %zd", a, b, c);
    sc_check(send(dg2[1], "x", 1, MSG_NOSIGNAL) < 0 && errno == EPIPE, "datagram: the end shut for reading "
             "takes nothing", "errno %d", errno);
    sc_check(send(sp2[1], "x", 1, MSG_NOSIGNAL) < 0 && errno == EPIPE && recv(sp2[0], buf, 1, MSG_DONTWAIT) == 0,
             "seqpacket: shut both ways", "errno %d", errno);
    size_t have = 0;
    for (ssize_t r; have < sizeof got && (r = recv(st3[0], got + have, sizeof got - have, MSG_DONTWAIT)) > 0;)
        have += (size_t)r;
    int now;
    sl = sizeof now;
    getsockopt(st3[1], SOL_SOCKET, SO_SNDBUF, &now, &sl);
    sc_check(have == sizeof big && memcmp(got, big, sizeof big) == 0 && now == small,
             "bytes beyond a shrunk send buffer", "%zu bytes, buffer %d, before %d", have, now, small);
    return sc_done();
}

static int send_fd(int sock, const char *data, int fd)
{
    char cbuf[CMSG_SPACE(sizeof(int))];
    memset(cbuf, 0, sizeof cbuf);
    struct iovec iov = {.iov_base = (void *)data, .iov_len = strlen(data)};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    return sendmsg(sock, &msg, 0) == (ssize_t)strlen(data) ? 0 : -1;
}

static int recv_fd(int sock, char *buf, size_t size, int *fd)
{
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {.iov_base = buf, .iov_len = size};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    int n = (int)recvmsg(sock, &msg, MSG_DONTWAIT);
    struct cmsghdr *c = n >= 0 ? CMSG_FIRSTHDR(&msg) : NULL;
    *fd = -1;
    if (c && c->cmsg_type == SCM_RIGHTS) memcpy(fd, CMSG_DATA(c), sizeof(int));
    return n;
}

static int deep(void)
{
    int dg[2], st[2], p[2];
    if (socketpair(AF_UNIX, SOCK_DGRAM, 0, dg) || socketpair(AF_UNIX, SOCK_STREAM, 0, st) || pipe(p)) return 3;
    if (write(p[1], "piped", 5) != 5) return 3;
    if (send(dg[0], "first", 5, 0) != 5 || send_fd(dg[0], "second", p[0]) || send(dg[0], "third", 5, 0) != 5)
        return 3;
    if (send(st[0], "bytes", 5, 0) != 5 || send_fd(st[0], "carrier", p[1])) return 3;
    close(p[0]);
    close(p[1]);
    sc_ready();
    sc_wait_go();
    char buf[16] = {0};
    int fd;
    int n = recv_fd(dg[1], buf, sizeof buf, &fd);
    sc_check(n == 5 && memcmp(buf, "first", 5) == 0 && fd < 0, "datagram 1", "n=%d %.5s fd %d", n, buf, fd);
    n = recv_fd(dg[1], buf, sizeof buf, &fd);
    sc_check(n == 6 && memcmp(buf, "second", 6) == 0 && fd >= 0, "datagram 2 with its descriptor", "n=%d fd %d", n,
             fd);
    int rfd = fd;
    n = recv_fd(dg[1], buf, sizeof buf, &fd);
    sc_check(n == 5 && memcmp(buf, "third", 5) == 0, "datagram 3", "n=%d", n);
    /* A stream read takes the bytes before those that carry descriptors along, and stops after them. */
    n = recv_fd(st[1], buf, sizeof buf, &fd);
    sc_check(n == 12 && memcmp(buf, "bytescarrier", 12) == 0 && fd >= 0, "stream bytes with a descriptor",
             "n=%d fd %d", n, fd);
    memset(buf, 0, sizeof buf);
    sc_check(rfd >= 0 && read(rfd, buf, 5) == 5 && memcmp(buf, "piped", 5) == 0 &&
             write(fd, "more", 4) == 4 && read(rfd, buf, 4) == 4, "the descriptors work", "%.5s", buf);
    return sc_done();
}

/* Messages of a datagram and a seqpacket pair: an empty one first, lengths up to 64 KiB, one carrying a
 * descriptor; with `hidden`, an empty one behind others too, which no peek from an offset shows. */
static const size_t QLEN[] = {0, 1, 1000, 65536, 7, 0, 300};
#define NQ (int)(sizeof QLEN / sizeof QLEN[0])
#define CARRIER 4

static int queues(int hidden)
{
    int dg[2], sp[2], p[2];
    static char msg[65536], got[65536 + 1];
    if (socketpair(AF_UNIX, SOCK_DGRAM, 0, dg) || socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp) || pipe(p)) return 3;
    int socks[2][2] = {{dg[0], dg[1]}, {sp[0], sp[1]}};
    for (int k = 0; k < 2; k++) {
        int big = 1 << 20;
        if (setsockopt(socks[k][0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big)) return 3;
        for (int i = 0; i < NQ; i++) {
            size_t len = QLEN[i] == 0 && i > 0 && !hidden ? 2 : QLEN[i];
            memset(msg, 'a' + i + k, len);
            if (i == CARRIER) {
                msg[len] = 0;
                if (send_fd(socks[k][0], msg, p[1])) return 3;
            } else if (send(socks[k][0], msg, len, 0) != (ssize_t)len) {
                return 3;
            }
        }
    }
    close(p[1]);
    sc_ready();
    sc_wait_go();
    for (int k = 0; k < 2; k++) {
        const char *kind = k ? "seqpacket" : "datagram";
        int good = 1, fd = -1;
        for (int i = 0; i < NQ; i++) {
            size_t len = QLEN[i] == 0 && i > 0 && !hidden ? 2 : QLEN[i];
            char want = (char)('a' + i + k);
            struct iovec iov = {got, sizeof got};
            union { struct cmsghdr h; char space[CMSG_SPACE(sizeof(int))]; } c;
            struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = &c, .msg_controllen = sizeof c};
            ssize_t n = recvmsg(socks[k][1], &mh, MSG_DONTWAIT);
            int carried = -1;
            struct cmsghdr *h = CMSG_FIRSTHDR(&mh);
            if (n >= 0 && h && h->cmsg_type == SCM_RIGHTS) memcpy(&carried, CMSG_DATA(h), sizeof carried);
            int right = n == (ssize_t)len && (i == CARRIER) == (carried >= 0);
            for (size_t j = 0; right && j < len; j++) right = got[j] == want;
            if (!right) {
                sc_check(0, kind, "message %d: %zd bytes (want %zu), descriptor %d", i, n, len, carried);
                good = 0;
                break;
            }
            if (carried >= 0) fd = carried;
        }
        if (!good) continue;
        char tail = 0, name[64];
        snprintf(name, sizeof name, "%s queue, whole and in order", kind);
        sc_check(recv(socks[k][1], &tail, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN, name, "a message too many");
        snprintf(name, sizeof name, "%s: the descriptor carried works", kind);
        sc_check(write(fd, "x", 1) == 1 && read(p[0], &tail, 1) == 1 && tail == 'x', name, "%c", tail);
    }
    return sc_done();
}

int main(int argc, char **argv)
{
    sc_init(argc, argv);
    if (argc > 4 && strcmp(argv[4], "deep") == 0) return deep();
    if (argc > 4 && strcmp(argv[4], "queues") == 0) return queues(argc > 5 && strcmp(argv[5], "hidden") == 0);
    return opts();
}
