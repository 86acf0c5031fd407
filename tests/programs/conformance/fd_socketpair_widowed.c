/* Socket pairs whose other end was closed with data still queued: a stream (its bytes, then end
 * of file), a datagram pair (its messages, boundaries kept, then ECONNREFUSED on sending) and a
 * seqpacket pair (its message, then end of file).  After restore: the same, with each survivor's
 * receive buffer size and peer credentials as they were. */
#include "cf.h"
#include <sys/socket.h>

static int widowed(int type, const char **msgs, int n)
{
    int sv[2];
    if (socketpair(AF_UNIX, type, 0, sv)) exit(3);
    for (int i = 0; i < n; i++)
        if (send(sv[1], msgs[i], strlen(msgs[i]), 0) != (ssize_t)strlen(msgs[i])) exit(3);
    close(sv[1]);
    return sv[0];
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    const char *stream_msgs[] = {"left ", "behind"}, *dgram_msgs[] = {"m1", "m22"}, *seq_msgs[] = {"s1"};
    int st = widowed(SOCK_STREAM, stream_msgs, 2), dg = widowed(SOCK_DGRAM, dgram_msgs, 2);
    int sq = widowed(SOCK_SEQPACKET, seq_msgs, 1);
    int rcvbuf = 65536;
    setsockopt(st, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    int buf_before;
    socklen_t len = sizeof buf_before;
    getsockopt(st, SOL_SOCKET, SO_RCVBUF, &buf_before, &len);
    struct ucred cred_before, cred;
    len = sizeof cred_before;
    getsockopt(dg, SOL_SOCKET, SO_PEERCRED, &cred_before, &len);
    sc_ready();
    sc_wait_go();
    char buf[64] = {0};
    ssize_t n = recv(st, buf, sizeof buf, MSG_WAITALL);
    sc_check(n == 11 && memcmp(buf, "left behind", 11) == 0, "the stream's bytes", "%zd %.11s", n, buf);
    sc_check(recv(st, buf, sizeof buf, 0) == 0, "then end of file", "%s", "");
    int buf_now = 0;
    len = sizeof buf_now;
    getsockopt(st, SOL_SOCKET, SO_RCVBUF, &buf_now, &len);
    sc_check(buf_now == buf_before, "its receive buffer", "%d, was %d", buf_now, buf_before);
    n = recv(dg, buf, sizeof buf, MSG_DONTWAIT);
    ssize_t m = recv(dg, buf + 8, sizeof buf - 8, MSG_DONTWAIT);
    sc_check(n == 2 && m == 3 && memcmp(buf, "m1", 2) == 0 && memcmp(buf + 8, "m22", 3) == 0,
             "the datagrams, one by one", "%zd %zd", n, m);
    errno = 0;
    sc_check(send(dg, "x", 1, MSG_DONTWAIT) < 0 && errno == ECONNREFUSED, "no peer to send to", "errno %d", errno);
    len = sizeof cred;
    getsockopt(dg, SOL_SOCKET, SO_PEERCRED, &cred, &len);
    sc_check(cred.pid == cred_before.pid && cred.uid == cred_before.uid, "peer credentials", "pid %d uid %d", cred.pid,
             cred.uid);
    n = recv(sq, buf, sizeof buf, MSG_DONTWAIT);
    sc_check(n == 2 && memcmp(buf, "s1", 2) == 0, "the seqpacket message", "%zd", n);
    sc_check(recv(sq, buf, sizeof buf, MSG_DONTWAIT) == 0, "then end of file", "%s", "");
    return sc_done();
}
