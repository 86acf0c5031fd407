/* Must be refused (a socket that exists only in flight is not supported): one end of a socket
 * pair sent over a datagram pair and closed by the sender, its other end kept; the message is the
 * second of three (deeper than a running job's check looks: the frozen dump refuses it).  After
 * the refusal the job is unharmed: the three messages in order, the end with the second, and it
 * still reaches its peer. */
#include "cf.h"
#include <sys/socket.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int carrier[2], carried[2];
    if (socketpair(AF_UNIX, SOCK_DGRAM, 0, carrier) || socketpair(AF_UNIX, SOCK_STREAM, 0, carried)) return 3;
    char cbuf[CMSG_SPACE(sizeof(int))];
    memset(cbuf, 0, sizeof cbuf);
    struct iovec iov = {.iov_base = "s", .iov_len = 1};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &carried[1], sizeof(int));
    if (send(carrier[0], "1", 1, 0) != 1 || sendmsg(carrier[0], &msg, 0) != 1 || send(carrier[0], "3", 1, 0) != 1)
        return 3;
    close(carried[1]);
    sc_ready();
    sc_wait_go();
    char data = 0, rbuf[CMSG_SPACE(sizeof(int))];
    sc_check(recv(carrier[1], &data, 1, MSG_DONTWAIT) == 1 && data == '1', "message 1", "%c", data);
    struct iovec riov = {.iov_base = &data, .iov_len = 1};
    struct msghdr r = {.msg_iov = &riov, .msg_iovlen = 1, .msg_control = rbuf, .msg_controllen = sizeof rbuf};
    ssize_t n = recvmsg(carrier[1], &r, MSG_DONTWAIT);
    struct cmsghdr *rc = n == 1 ? CMSG_FIRSTHDR(&r) : NULL;
    int fd = -1;
    if (rc && rc->cmsg_type == SCM_RIGHTS) memcpy(&fd, CMSG_DATA(rc), sizeof fd);
    sc_check(n == 1 && data == 's', "message 2", "%c", data);
    char b = 0;
    sc_check(recv(carrier[1], &b, 1, MSG_DONTWAIT) == 1 && b == '3', "message 3", "%c", b);
    sc_check(fd >= 0 && write(fd, "y", 1) == 1 && read(carried[0], &b, 1) == 1 && b == 'y',
             "the message with the end, which reaches its peer", "fd %d", fd);
    return sc_done();
}
