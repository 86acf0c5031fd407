/* Must be refused (credentials in flight are not supported): a Unix socket pair whose receiving
 * end has SO_PASSCRED, with a message queued (it carries the sender's credentials). */
#include "cf.h"
#include <sys/socket.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int sv[2], one = 1;
    if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv)) return 3;
    setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
    if (send(sv[1], "cred", 4, 0) != 4) return 3;
    sc_ready();
    sc_wait_go();
    char buf[8];
    sc_check(recv(sv[0], buf, sizeof buf, MSG_DONTWAIT) == 4, "message still queued", "%d", errno);
    return sc_done();
}
