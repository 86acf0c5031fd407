/* Connections through a named listener (WORK/sock) whose other end is gone: an accepted end whose
 * client sent "from-client" and closed, and a client whose accepted end sent "from-server" and
 * closed; then the listener was closed and its file unlinked.  After restore: each survivor reads
 * its bytes, then end of file; the accepted end still says WORK/sock (getsockname), the client's
 * peer is still WORK/sock (getpeername), the accepted end's peer as before; SO_PEERCRED and poll()
 * events as before; sending gives EPIPE; WORK/sock does not exist (ENOENT). */
#include "cf.h"
#include <poll.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

static struct sockaddr_un addr = {.sun_family = AF_UNIX};

static int named(int fd, int peer)
{
    struct sockaddr_un a;
    socklen_t l = sizeof a;
    if ((peer ? getpeername : getsockname)(fd, (struct sockaddr *)&a, &l)) return 0;
    return l == offsetof(struct sockaddr_un, sun_path) + strlen(addr.sun_path) + 1 &&
           strcmp(a.sun_path, addr.sun_path) == 0;
}

static int revents(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLOUT | POLLRDHUP};
    poll(&p, 1, 0);
    return p.revents;
}

static int send_errno(int fd)
{
    errno = 0;
    return send(fd, "x", 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 ? errno : 0;
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    if (snprintf(addr.sun_path, sizeof addr.sun_path, "%s", cf_path("sock")) >= (int)sizeof addr.sun_path) return 3;
    int l = socket(AF_UNIX, SOCK_STREAM, 0), c1 = socket(AF_UNIX, SOCK_STREAM, 0), c2 = socket(AF_UNIX, SOCK_STREAM, 0);
    if (bind(l, (struct sockaddr *)&addr, sizeof addr) || listen(l, 4) || connect(c1, (struct sockaddr *)&addr,
        sizeof addr)) return 3;
    int a1 = accept(l, NULL, NULL);
    if (a1 < 0 || connect(c2, (struct sockaddr *)&addr, sizeof addr)) return 3;
    int a2 = accept(l, NULL, NULL);
    if (a2 < 0 || send(c1, "from-client", 11, 0) != 11 || send(a2, "from-server", 11, 0) != 11) return 3;
    close(c1);
    close(a2);
    close(l);
    if (unlink(addr.sun_path)) return 3;
    struct sockaddr_un peer_before;
    socklen_t peer_l = sizeof peer_before;
    memset(&peer_before, 0, sizeof peer_before);
    int peer_r = getpeername(a1, (struct sockaddr *)&peer_before, &peer_l);
    struct ucred cred[2];
    int fds[2] = {a1, c2}, ev[2], err[2];
    for (int i = 0; i < 2; i++) {
        socklen_t cl = sizeof cred[i];
        getsockopt(fds[i], SOL_SOCKET, SO_PEERCRED, &cred[i], &cl);
        ev[i] = revents(fds[i]);
        err[i] = send_errno(fds[i]);
    }
    sc_ready();
    sc_wait_go();
    sc_check(named(a1, 0), "the accepted end still says the path", "%s", "");
    sc_check(named(c2, 1), "the client's peer is still the path", "%s", "");
    struct sockaddr_un peer;
    socklen_t pl = sizeof peer;
    memset(&peer, 0, sizeof peer);
    int r = getpeername(a1, (struct sockaddr *)&peer, &pl);
    sc_check(r == peer_r && pl == peer_l && memcmp(&peer, &peer_before, pl) == 0, "the accepted end's peer as before",
             "getpeername %d length %u, was %d %u", r, pl, peer_r, peer_l);
    const char *names[2] = {"accepted end", "client"}, *want[2] = {"from-client", "from-server"};
    for (int i = 0; i < 2; i++) {
        char what[80], buf[32] = {0};
        struct ucred now = {0};
        socklen_t cl = sizeof now;
        getsockopt(fds[i], SOL_SOCKET, SO_PEERCRED, &now, &cl);
        snprintf(what, sizeof what, "%s: SO_PEERCRED as before", names[i]);
        sc_check(now.pid == cred[i].pid && now.uid == cred[i].uid && now.gid == cred[i].gid, what,
                 "pid %d uid %d, was %d %d", now.pid, now.uid, cred[i].pid, cred[i].uid);
        snprintf(what, sizeof what, "%s: poll events as before", names[i]);
        sc_check(revents(fds[i]) == ev[i], what, "%#x, was %#x", revents(fds[i]), ev[i]);
        ssize_t n = recv(fds[i], buf, sizeof buf, MSG_DONTWAIT);
        snprintf(what, sizeof what, "%s: its bytes", names[i]);
        sc_check(n == 11 && memcmp(buf, want[i], 11) == 0, what, "%zd %.11s", n, buf);
        snprintf(what, sizeof what, "%s: then end of file", names[i]);
        sc_check(recv(fds[i], buf, sizeof buf, MSG_DONTWAIT) == 0, what, "errno %d", errno);
        snprintf(what, sizeof what, "%s: sending gives EPIPE", names[i]);
        sc_check(send_errno(fds[i]) == EPIPE && err[i] == EPIPE, what, "%d, was %d", send_errno(fds[i]), err[i]);
    }
    struct stat st;
    errno = 0;
    r = stat(addr.sun_path, &st);
    sc_check(r < 0 && errno == ENOENT, "the listener's path is gone", "stat %d errno %d", r, errno);
    return sc_done();
}
