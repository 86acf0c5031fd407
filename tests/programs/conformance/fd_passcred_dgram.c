/* A datagram socket pair whose receiving end has SO_PASSCRED, with a message queued: it carries
 * its sender's credentials (this process's).  After restore: the message with those credentials;
 * SO_PASSCRED still on. */
#include "cf.h"
#include <sys/socket.h>
#include <sys/wait.h>

static ssize_t recv_cred(int s, char *buf, size_t n, struct ucred *cred)
{
    char cbuf[CMSG_SPACE(sizeof(struct ucred))];
    struct iovec iov = {.iov_base = buf, .iov_len = n};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    ssize_t got = recvmsg(s, &m, MSG_DONTWAIT);
    struct cmsghdr *c = got >= 0 ? CMSG_FIRSTHDR(&m) : NULL;
    memset(cred, 0, sizeof *cred);
    if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) memcpy(cred, CMSG_DATA(c), sizeof *cred);
    return got;
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int sv[2], one = 1;
    if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv)) return 3;
    setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
    if (send(sv[1], "cred", 4, 0) != 4) return 3;
    sc_ready();
    sc_wait_go();
    char buf[8] = {0};
    struct ucred c;
    ssize_t n = recv_cred(sv[0], buf, sizeof buf, &c);
    sc_check(n == 4 && memcmp(buf, "cred", 4) == 0 && c.pid == getpid() && c.uid == getuid() && c.gid == getgid(),
             "the message, with this process's credentials", "n %zd pid %d uid %d gid %d", n, c.pid, c.uid, c.gid);
    int v = 0;
    socklen_t l = sizeof v;
    getsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &v, &l);
    sc_check(v == 1, "SO_PASSCRED still on", "%d", v);
    errno = 0;
    sc_check(recv_cred(sv[0], buf, sizeof buf, &c) < 0 && errno == EAGAIN, "then nothing", "errno %d", errno);
    return sc_done();
}
