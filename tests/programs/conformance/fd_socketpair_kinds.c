/* Unix socket pairs of all three types with data queued in both directions: stream bytes,
 * datagram and seqpacket boundaries, SO_TYPE, buffer sizes and flags of each end. */
#include "cf.h"
#include <sys/socket.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int st[2], dg[2], sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, st) || socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, dg) ||
        socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp)) return 3;
    int sz = 300000;
    setsockopt(st[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    sz = 200000;
    setsockopt(st[1], SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    if (send(st[0], "stream-a", 8, 0) != 8 || send(st[0], "stream-b", 8, 0) != 8 || send(st[1], "back", 4, 0) != 4)
        return 3;
    if (send(dg[0], "d1", 2, 0) != 2 || send(dg[0], "dgram2", 6, 0) != 6 || send(dg[1], "r", 1, 0) != 1) return 3;
    if (send(sp[0], "s1", 2, 0) != 2 || send(sp[0], "seq2", 4, 0) != 4) return 3;
    int all[6] = {st[0], st[1], dg[0], dg[1], sp[0], sp[1]};
    int snd[6], rcv[6], fl[6], fd_fl[6];
    for (int i = 0; i < 6; i++) {
        socklen_t l = sizeof(int);
        getsockopt(all[i], SOL_SOCKET, SO_SNDBUF, &snd[i], &l);
        getsockopt(all[i], SOL_SOCKET, SO_RCVBUF, &rcv[i], &l);
        fl[i] = fcntl(all[i], F_GETFL);
        fd_fl[i] = fcntl(all[i], F_GETFD);
    }
    sc_ready();
    sc_wait_go();
    for (int i = 0; i < 6; i++) {
        int s, r, type;
        socklen_t l = sizeof(int);
        getsockopt(all[i], SOL_SOCKET, SO_SNDBUF, &s, &l);
        getsockopt(all[i], SOL_SOCKET, SO_RCVBUF, &r, &l);
        getsockopt(all[i], SOL_SOCKET, SO_TYPE, &type, &l);
        char what[48];
        snprintf(what, sizeof what, "end %d: type, buffers, flags", i);
        int want_type = i < 2 ? SOCK_STREAM : i < 4 ? SOCK_DGRAM : SOCK_SEQPACKET;
        sc_check(type == want_type && s == snd[i] && r == rcv[i] && fcntl(all[i], F_GETFL) == fl[i] &&
                 fcntl(all[i], F_GETFD) == fd_fl[i], what, "type %d snd %d/%d rcv %d/%d flags %#x/%#x", type, s,
                 snd[i], r, rcv[i], fcntl(all[i], F_GETFL), fl[i]);
    }
    char buf[32] = {0};
    sc_check(recv(st[1], buf, sizeof buf, MSG_DONTWAIT) == 16 && memcmp(buf, "stream-astream-b", 16) == 0,
             "stream bytes", "%.16s", buf);
    sc_check(recv(st[0], buf, sizeof buf, MSG_DONTWAIT) == 4 && memcmp(buf, "back", 4) == 0, "stream reverse", "%s", "");
    ssize_t a = recv(dg[1], buf, sizeof buf, 0), b = recv(dg[1], buf + 2, sizeof buf, 0);
    sc_check(a == 2 && b == 6 && memcmp(buf, "d1dgram2", 8) == 0, "datagram boundaries", "%zd %zd", a, b);
    sc_check(recv(dg[0], buf, sizeof buf, 0) == 1 && buf[0] == 'r', "datagram reverse", "%s", "");
    a = recv(sp[1], buf, sizeof buf, MSG_DONTWAIT);
    b = recv(sp[1], buf + 2, sizeof buf, MSG_DONTWAIT);
    sc_check(a == 2 && b == 4 && memcmp(buf, "s1seq2", 6) == 0, "seqpacket boundaries", "%zd %zd", a, b);
    sc_check(send(st[0], "z", 1, 0) == 1 && recv(st[1], buf, 1, 0) == 1 && buf[0] == 'z', "still connected", "%s", "");
    return sc_done();
}
