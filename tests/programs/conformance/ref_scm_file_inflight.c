/* Must be refused (descriptors in flight are not supported): an SCM_RIGHTS message carrying a
 * descriptor of a regular file (closed by the sender), queued in a socket pair at the checkpoint.
 * After the refusal it arrives, and the descriptor reads the file from its offset. */
#include "cf.h"
#include <sys/socket.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv)) return 3;
    int f = open(cf_path("carried"), O_RDWR | O_CREAT, 0600);
    if (write(f, "0123456789", 10) != 10) return 3;
    lseek(f, 4, SEEK_SET);
    char cbuf[CMSG_SPACE(sizeof(int))];
    memset(cbuf, 0, sizeof cbuf);
    struct iovec iov = {.iov_base = "m", .iov_len = 1};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &f, sizeof(int));
    if (sendmsg(sv[0], &msg, 0) != 1) return 3;
    close(f);
    sc_ready();
    sc_wait_go();
    char data = 0;
    struct iovec riov = {.iov_base = &data, .iov_len = 1};
    char rbuf[CMSG_SPACE(sizeof(int))];
    struct msghdr r = {.msg_iov = &riov, .msg_iovlen = 1, .msg_control = rbuf, .msg_controllen = sizeof rbuf};
    ssize_t n = recvmsg(sv[1], &r, MSG_DONTWAIT);
    struct cmsghdr *rc = n == 1 ? CMSG_FIRSTHDR(&r) : NULL;
    int fd = -1;
    if (rc && rc->cmsg_type == SCM_RIGHTS) memcpy(&fd, CMSG_DATA(rc), sizeof fd);
    sc_check(n == 1 && data == 'm', "the message", "n=%zd errno=%d", n, errno);
    char buf[8] = {0};
    sc_check(fd >= 0 && read(fd, buf, 6) == 6 && strcmp(buf, "456789") == 0, "with the descriptor, at its offset",
             "fd %d read %.6s", fd, buf);
    return sc_done();
}
