/* Must be refused (a memfd's contents are read through a process of the job): a memfd sent over
 * a socket pair and closed by the sender, so that it exists only in flight.  After the refusal
 * the job is unharmed: the message arrives with the memfd, which reads its bytes. */
#include "cf.h"
#include <sys/mman.h>
#include <sys/socket.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int sv[2], m = memfd_create("carried", 0);
    if (m < 0 || socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) || write(m, "memory", 6) != 6) return 3;
    char cbuf[CMSG_SPACE(sizeof(int))];
    memset(cbuf, 0, sizeof cbuf);
    struct iovec iov = {.iov_base = "m", .iov_len = 1};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &m, sizeof(int));
    if (sendmsg(sv[0], &msg, 0) != 1) return 3;
    close(m);
    sc_ready();
    sc_wait_go();
    char data = 0, rbuf[CMSG_SPACE(sizeof(int))], buf[8] = {0};
    struct iovec riov = {.iov_base = &data, .iov_len = 1};
    struct msghdr r = {.msg_iov = &riov, .msg_iovlen = 1, .msg_control = rbuf, .msg_controllen = sizeof rbuf};
    ssize_t n = recvmsg(sv[1], &r, MSG_DONTWAIT);
    struct cmsghdr *rc = n == 1 ? CMSG_FIRSTHDR(&r) : NULL;
    int fd = -1;
    if (rc && rc->cmsg_type == SCM_RIGHTS) memcpy(&fd, CMSG_DATA(rc), sizeof fd);
    sc_check(fd >= 0 && pread(fd, buf, 6, 0) == 6 && memcmp(buf, "memory", 6) == 0, "the memfd, with its bytes",
             "fd %d %.6s", fd, buf);
    return sc_done();
}
