/* Netlink sockets: a route socket bound by the kernel (port id 0 asked: it gets the PID), joined
 * to the link and IPv4 address groups, NETLINK_EXT_ACK and a receive buffer set, non-blocking; a
 * second route socket bound to a port id of its own choosing; a generic one, connected.  After
 * restore: port ids, groups (NETLINK_LIST_MEMBERSHIPS), options, F_GETFL as before, and the
 * route socket still talks to the kernel: an RTM_GETLINK dump answers, ending in NLMSG_DONE. */
#include "cf.h"
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

static unsigned portid(int s)
{
    struct sockaddr_nl a;
    socklen_t len = sizeof a;
    return getsockname(s, (struct sockaddr *)&a, &len) ? 0 : a.nl_pid;
}

static unsigned groups_of(int s)
{
    unsigned g[4] = {0};
    socklen_t len = sizeof g;
    return getsockopt(s, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, g, &len) ? 0xffffffff : g[0];
}

static int opt(int s, int level, int name)
{
    int v = -1;
    socklen_t len = sizeof v;
    getsockopt(s, level, name, &v, &len);
    return v;
}

static int dump_links(int s)
{
    struct { struct nlmsghdr h; struct ifinfomsg i; } req = {
        .h = {.nlmsg_len = sizeof req, .nlmsg_type = RTM_GETLINK, .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
              .nlmsg_seq = 7},
        .i = {.ifi_family = AF_UNSPEC}};
    if (send(s, &req, sizeof req, 0) != sizeof req) return 0;
    static char buf[65536];
    for (int rounds = 0; rounds < 100; rounds++) {
        ssize_t n = recv(s, buf, sizeof buf, 0);
        if (n <= 0) return 0;
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (unsigned)n); h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_seq != 7) return 0;
            if (h->nlmsg_type == NLMSG_DONE) return 1;
            if (h->nlmsg_type == NLMSG_ERROR) return 0;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int r = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK, NETLINK_ROUTE);
    int own = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
    int gen = socket(AF_NETLINK, SOCK_DGRAM, NETLINK_GENERIC);
    struct sockaddr_nl a = {.nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR};
    struct sockaddr_nl b = {.nl_family = AF_NETLINK, .nl_pid = 0x7e570001u};
    struct sockaddr_nl k = {.nl_family = AF_NETLINK};          /* the kernel */
    int one = 1, rcvbuf = 300000;
    if (r < 0 || own < 0 || gen < 0 || bind(r, (struct sockaddr *)&a, sizeof a) || bind(own, (struct sockaddr *)&b, sizeof b) ||
        connect(gen, (struct sockaddr *)&k, sizeof k) ||
        setsockopt(r, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one) ||
        setsockopt(r, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf))
        return 3;
    unsigned pr = portid(r), po = portid(own), pg = portid(gen), gr = groups_of(r);
    int fl = fcntl(r, F_GETFL), ext = opt(r, SOL_NETLINK, NETLINK_EXT_ACK), buf = opt(r, SOL_SOCKET, SO_RCVBUF);
    if (pr != (unsigned)getpid() || po != 0x7e570001u || !pg || gr != (RTMGRP_LINK | RTMGRP_IPV4_IFADDR)) return 4;
    sc_ready();
    sc_wait_go();
    sc_check(portid(r) == pr && portid(own) == po && portid(gen) == pg, "port ids", "%u %u %u, were %u %u %u",
             portid(r), portid(own), portid(gen), pr, po, pg);
    sc_check(groups_of(r) == gr && groups_of(own) == 0, "groups", "%#x %#x", groups_of(r), groups_of(own));
    sc_check(fcntl(r, F_GETFL) == fl && opt(r, SOL_NETLINK, NETLINK_EXT_ACK) == ext &&
             opt(r, SOL_SOCKET, SO_RCVBUF) == buf, "flags and options", "%#x %d %d", fcntl(r, F_GETFL),
             opt(r, SOL_NETLINK, NETLINK_EXT_ACK), opt(r, SOL_SOCKET, SO_RCVBUF));
    fcntl(own, F_SETFL, 0);
    sc_check(dump_links(own), "the kernel answers a link dump", "%s", strerror(errno));
    return sc_done();
}
