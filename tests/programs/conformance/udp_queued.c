/* A bound UDP socket with a datagram queued (engine/inet.py): after the restore it still holds it. */
#include "cf.h"
#include <netinet/in.h>
#include <sys/socket.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    if (bind(s, (struct sockaddr *)&a, sizeof a) || getsockname(s, (struct sockaddr *)&a, &l)) return 3;
    if (sendto(s, "dgram", 5, 0, (struct sockaddr *)&a, sizeof a) != 5) return 3;
    sc_ready();
    sc_wait_go();
    char buf[8];
    sc_check(recv(s, buf, sizeof buf, MSG_DONTWAIT) == 5, "datagram still queued", "%d", errno);
    return sc_done();
}
