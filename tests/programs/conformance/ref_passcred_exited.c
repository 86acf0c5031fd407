/* Must be refused (a send cannot name a process that is gone): a datagram socket pair whose
 * receiving end has SO_PASSCRED, holding a message from a child that exited since (the message
 * still names its PID).  After the refusal the job is unharmed: the message, with that PID. */
#include "cf.h"
#include <sys/socket.h>
#include <sys/wait.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int sv[2], one = 1;
    if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv)) return 3;
    setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
    pid_t child = fork();
    if (child == 0) _exit(send(sv[1], "gone", 4, 0) == 4 ? 0 : 3);
    int st;
    if (waitpid(child, &st, 0) != child || st != 0) return 3;
    sc_ready();
    sc_wait_go();
    char buf[8] = {0}, cbuf[CMSG_SPACE(sizeof(struct ucred))];
    struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    ssize_t n = recvmsg(sv[0], &m, MSG_DONTWAIT);
    struct ucred c = {0};
    struct cmsghdr *h = n >= 0 ? CMSG_FIRSTHDR(&m) : NULL;
    if (h && h->cmsg_type == SCM_CREDENTIALS) memcpy(&c, CMSG_DATA(h), sizeof c);
    sc_check(n == 4 && c.pid == child, "the message, naming the exited child", "n %zd pid %d, child %d", n, c.pid,
             child);
    return sc_done();
}
