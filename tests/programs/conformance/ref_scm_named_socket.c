/* Must be refused (the restore sends a named socket's messages while it makes the named sockets):
 * a datagram socket bound at WORK/d holding a message that carries a listener bound at WORK/l,
 * which the job holds too.  After the refusal the job is unharmed: the message arrives with the
 * listener, which accepts a connection. */
#include "cf.h"
#include <sys/socket.h>
#include <sys/un.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    struct sockaddr_un d = {.sun_family = AF_UNIX}, l = {.sun_family = AF_UNIX};
    snprintf(d.sun_path, sizeof d.sun_path, "%s", cf_path("d"));
    snprintf(l.sun_path, sizeof l.sun_path, "%s", cf_path("l"));
    int rcv = socket(AF_UNIX, SOCK_DGRAM, 0), snd = socket(AF_UNIX, SOCK_DGRAM, 0);
    int lis = socket(AF_UNIX, SOCK_STREAM, 0);
    if (bind(rcv, (struct sockaddr *)&d, sizeof d) || bind(lis, (struct sockaddr *)&l, sizeof l) || listen(lis, 2))
        return 3;
    char cbuf[CMSG_SPACE(sizeof(int))];
    memset(cbuf, 0, sizeof cbuf);
    struct iovec iov = {.iov_base = "L", .iov_len = 1};
    struct msghdr m = {.msg_name = &d, .msg_namelen = sizeof d, .msg_iov = &iov, .msg_iovlen = 1,
                       .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &lis, sizeof lis);
    if (sendmsg(snd, &m, 0) != 1) return 3;
    sc_ready();
    sc_wait_go();
    char data = 0, rbuf[CMSG_SPACE(sizeof(int))];
    struct iovec riov = {.iov_base = &data, .iov_len = 1};
    struct msghdr r = {.msg_iov = &riov, .msg_iovlen = 1, .msg_control = rbuf, .msg_controllen = sizeof rbuf};
    ssize_t n = recvmsg(rcv, &r, MSG_DONTWAIT);
    struct cmsghdr *rc = n == 1 ? CMSG_FIRSTHDR(&r) : NULL;
    int fd = -1;
    if (rc && rc->cmsg_type == SCM_RIGHTS) memcpy(&fd, CMSG_DATA(rc), sizeof fd);
    int cl = socket(AF_UNIX, SOCK_STREAM, 0);
    sc_check(fd >= 0 && connect(cl, (struct sockaddr *)&l, sizeof l) == 0 && accept(fd, NULL, NULL) >= 0,
             "the message with the listener, which accepts", "n %zd fd %d errno %d", n, fd, errno);
    return sc_done();
}
