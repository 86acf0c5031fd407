/* A Unix datagram socket bound to an abstract name: after restore it is still bound to it
 * (a datagram sent to the name arrives). */
#include "cf.h"
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int s = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int n = snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "incr-cf-%d", getpid());
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
    if (bind(s, (struct sockaddr *)&a, len)) return 3;
    sc_ready();
    sc_wait_go();
    sc_check(sendto(s, "x", 1, 0, (struct sockaddr *)&a, len) == 1, "still bound", "%d", errno);
    return sc_done();
}
