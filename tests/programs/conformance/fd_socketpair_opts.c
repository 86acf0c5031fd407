/* Socket options of a Unix socket pair a program can set and read back: SO_PASSCRED, SO_RCVLOWAT,
 * SO_SNDTIMEO/SO_RCVTIMEO, SO_KEEPALIVE, SO_PRIORITY, SO_MARK (as root), SO_PEEK_OFF. */
#include "cf.h"
#include <sys/socket.h>
#include <sys/time.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) return 3;
    int one = 1, low = 3, prio = 5, mark = 77, peek = 2;
    struct timeval snd = {3, 250000}, rcv = {7, 0};
    setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
    setsockopt(sv[0], SOL_SOCKET, SO_RCVLOWAT, &low, sizeof low);
    setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof snd);
    setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof rcv);
    setsockopt(sv[0], SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    setsockopt(sv[0], SOL_SOCKET, SO_PRIORITY, &prio, sizeof prio);
    setsockopt(sv[0], SOL_SOCKET, SO_MARK, &mark, sizeof mark);
    setsockopt(sv[0], SOL_SOCKET, SO_PEEK_OFF, &peek, sizeof peek);
    const int opts[8] = {SO_PASSCRED, SO_RCVLOWAT, SO_KEEPALIVE, SO_PRIORITY, SO_MARK, SO_PEEK_OFF, SO_SNDTIMEO,
                         SO_RCVTIMEO};
    const char *names[8] = {"SO_PASSCRED", "SO_RCVLOWAT", "SO_KEEPALIVE", "SO_PRIORITY", "SO_MARK", "SO_PEEK_OFF",
                            "SO_SNDTIMEO", "SO_RCVTIMEO"};
    char before[8][32];
    socklen_t lens[8];
    for (int i = 0; i < 8; i++) {
        lens[i] = sizeof before[i];
        memset(before[i], 0, sizeof before[i]);
        getsockopt(sv[0], SOL_SOCKET, opts[i], before[i], &lens[i]);
    }
    sc_ready();
    sc_wait_go();
    for (int i = 0; i < 8; i++) {
        char now[32] = {0};
        socklen_t l = sizeof now;
        getsockopt(sv[0], SOL_SOCKET, opts[i], now, &l);
        sc_check(l == lens[i] && memcmp(now, before[i], l) == 0, names[i], "%d, before %d", *(int *)now,
                 *(int *)before[i]);
    }
    if (send(sv[1], "abcdef", 6, 0) != 6) return 3;
    char buf[8] = {0}, cbuf[CMSG_SPACE(sizeof(struct ucred))];
    struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    ssize_t n = recvmsg(sv[0], &m, 0);
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    struct ucred cred = {0, 0, 0};
    if (c && c->cmsg_type == SCM_CREDENTIALS) memcpy(&cred, CMSG_DATA(c), sizeof cred);
    sc_check(n == 6 && cred.pid == getpid() && cred.uid == getuid(), "SO_PASSCRED: credentials arrive",
             "n=%zd pid %d", n, cred.pid);
    return sc_done();
}
