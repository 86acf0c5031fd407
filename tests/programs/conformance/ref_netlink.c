/* Must be refused: a netlink (route) socket. */
#include "cf.h"
#include <linux/netlink.h>
#include <sys/socket.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int s = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
    struct sockaddr_nl a = {.nl_family = AF_NETLINK};
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a)) return 3;
    sc_ready();
    sc_wait_go();
    sc_check(fcntl(s, F_GETFD) >= 0, "still open", "%s", "");
    return sc_done();
}
