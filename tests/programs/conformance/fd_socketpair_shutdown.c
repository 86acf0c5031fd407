/* A Unix stream socket pair with one direction shut down (shutdown(SHUT_WR) by one end after
 * sending): the queued bytes, then EOF that way; the other direction still carries data. */
#include "cf.h"
#include <sys/socket.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) return 3;
    if (send(sv[1], "abcdef", 6, 0) != 6) return 3;
    shutdown(sv[1], SHUT_WR);
    sc_ready();
    sc_wait_go();
    char buf[8] = {0};
    sc_check(recv(sv[0], buf, sizeof buf, 0) == 6 && memcmp(buf, "abcdef", 6) == 0, "queued bytes", "%.6s", buf);
    sc_check(recv(sv[0], buf, sizeof buf, 0) == 0, "then EOF (the peer shut down writing)", "%s", "");
    sc_check(send(sv[0], "x", 1, MSG_NOSIGNAL) == 1 && recv(sv[1], buf, 1, 0) == 1 && buf[0] == 'x',
             "the other direction still carries data", "errno %d", errno);
    sc_check(send(sv[1], "y", 1, MSG_NOSIGNAL) < 0 && errno == EPIPE, "the shut end cannot send", "errno %d", errno);
    return sc_done();
}
