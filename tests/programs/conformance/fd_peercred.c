/* SO_PEERCRED of a socket pair made by the root and handed to a child by fork: each end reports
 * the creator's PID and ids after restore, as before. */
#include "cf.h"
#include <sys/socket.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) return 3;
    struct ucred before;
    socklen_t l = sizeof before;
    getsockopt(sv[0], SOL_SOCKET, SO_PEERCRED, &before, &l);
    sc_ready();
    sc_wait_go();
    struct ucred now;
    l = sizeof now;
    getsockopt(sv[0], SOL_SOCKET, SO_PEERCRED, &now, &l);
    sc_check(now.pid == before.pid && now.uid == before.uid && now.gid == before.gid, "SO_PEERCRED",
             "pid %d uid %d gid %d, before %d %d %d", now.pid, now.uid, now.gid, before.pid, before.uid, before.gid);
    return sc_done();
}
