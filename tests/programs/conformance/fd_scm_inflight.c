/* Descriptors and credentials in flight between two processes of the job: a child sent them over
 * three socket pairs and closed its copies; the parent has not read them at the checkpoint.
 *  - datagram pair: "plain"; "two" carrying a regular file (O_RDWR|O_APPEND, offset 4; no one
 *    holds it but the message) and an eventfd the parent holds too; "pipe" carrying a pipe's read
 *    end (only in flight; 7 bytes in the pipe, whose write end the child keeps); "socks" carrying
 *    an end of a stream pair the parent holds too ("q" queued in it) and a listener bound at
 *    WORK/l the parent holds too;
 *  - stream pair: "xx", then "yy" carrying a directory, then "zz";
 *  - seqpacket pair whose receiving end has SO_PASSCRED: "c1" (the child's credentials) and "c2"
 *    with them and /dev/null (O_WRONLY).
 * After restore: the messages in order, with their descriptors; the file reads from its offset
 * with its flags; the eventfd is the parent's own (a write through one is read through the
 * other); the pipe yields its bytes, then what the child writes after GO; a stream read stops
 * after the bytes that carry the directory (the same inode); the credentials name the child; the
 * pair's end is the parent's (its queued byte, then a byte written through it reaches its peer),
 * and the listener accepts a new connection to WORK/l. */
#include "cf.h"
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>

static int send_fds(int s, const char *data, const int *fds, int n)
{
    char cbuf[CMSG_SPACE(sizeof(int) * 4)];
    memset(cbuf, 0, sizeof cbuf);
    struct iovec iov = {.iov_base = (void *)data, .iov_len = strlen(data)};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    if (n) {
        m.msg_control = cbuf;
        m.msg_controllen = CMSG_SPACE(sizeof(int) * n);
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * n);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
    }
    return sendmsg(s, &m, 0) == (ssize_t)strlen(data);
}

struct got {
    ssize_t n;
    char data[64];
    int fds[4];
    int nfds;
    int has_cred;
    struct ucred cred;
};

static struct got recv_all(int s)
{
    struct got g = {0};
    char cbuf[CMSG_SPACE(sizeof(int) * 4) + CMSG_SPACE(sizeof(struct ucred))];
    struct iovec iov = {.iov_base = g.data, .iov_len = sizeof g.data - 1};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    g.n = recvmsg(s, &m, MSG_DONTWAIT);
    if (g.n < 0) return g;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            g.nfds = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            memcpy(g.fds, CMSG_DATA(c), sizeof(int) * (size_t)g.nfds);
        } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
            g.has_cred = 1;
            memcpy(&g.cred, CMSG_DATA(c), sizeof g.cred);
        }
    }
    return g;
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int dg[2], st[2], sq[2], p[2], sp[2], one = 1;
    if (socketpair(AF_UNIX, SOCK_DGRAM, 0, dg) || socketpair(AF_UNIX, SOCK_STREAM, 0, st) ||
        socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sq) || socketpair(AF_UNIX, SOCK_STREAM, 0, sp) || pipe(p)) return 3;
    struct sockaddr_un la = {.sun_family = AF_UNIX};
    snprintf(la.sun_path, sizeof la.sun_path, "%s", cf_path("l"));
    int lis = socket(AF_UNIX, SOCK_STREAM, 0);
    if (bind(lis, (struct sockaddr *)&la, sizeof la) || listen(lis, 4) || send(sp[1], "q", 1, 0) != 1) return 3;
    if (setsockopt(sq[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof one)) return 3;
    int f = open(cf_path("carried"), O_RDWR | O_CREAT | O_APPEND, 0600);
    if (f < 0 || write(f, "0123456789", 10) != 10 || lseek(f, 4, SEEK_SET) != 4) return 3;
    int ev = eventfd(0, 0);
    int dir = open(cf_work, O_RDONLY | O_DIRECTORY);
    if (ev < 0 || dir < 0 || write(p[1], "through", 7) != 7) return 3;
    int f_flags = fcntl(f, F_GETFL);
    struct stat dir_st;
    fstat(dir, &dir_st);
    int gate[2];
    cf_gate_open(gate);
    pid_t child = fork();
    if (child == 0) {
        cf_sub("child");
        close(dg[0]);
        close(st[0]);
        close(sq[0]);
        int two[2] = {f, ev}, socks[2] = {sp[1], lis}, null = open("/dev/null", O_WRONLY);
        if (!send_fds(dg[1], "plain", NULL, 0) || !send_fds(dg[1], "two", two, 2) ||
            !send_fds(dg[1], "pipe", &p[0], 1) || !send_fds(dg[1], "socks", socks, 2) ||
            !send_fds(st[1], "xx", NULL, 0) ||
            !send_fds(st[1], "yy", &dir, 1) || !send_fds(st[1], "zz", NULL, 0) ||
            !send_fds(sq[1], "c1", NULL, 0) || !send_fds(sq[1], "c2", &null, 1)) _exit(3);
        close(f);
        close(ev);
        close(dir);
        close(null);
        close(p[0]);
        close(sp[0]);
        close(sp[1]);
        close(lis);
        cf_gate_pass(gate);
        sc_wait_go();
        sc_check(write(p[1], "more", 4) == 4, "the child writes on into the pipe", "errno %d", errno);
        exit(sc_done());
    }
    cf_gate_wait(gate, 1);
    close(f);                                /* the file and the pipe's read end are only in flight now */
    close(p[0]);
    close(p[1]);
    close(dir);
    close(dg[1]);
    close(st[1]);
    close(sq[1]);
    sc_ready();
    sc_wait_go();

    struct got g = recv_all(dg[0]);
    sc_check(g.n == 5 && memcmp(g.data, "plain", 5) == 0 && g.nfds == 0, "datagram 1: plain", "n %zd nfds %d",
             g.n, g.nfds);
    g = recv_all(dg[0]);
    sc_check(g.n == 3 && memcmp(g.data, "two", 3) == 0 && g.nfds == 2, "datagram 2 with two descriptors",
             "n %zd nfds %d", g.n, g.nfds);
    if (g.nfds == 2) {
        char buf[16] = {0};
        sc_check(read(g.fds[0], buf, 6) == 6 && memcmp(buf, "456789", 6) == 0, "the file reads from its offset",
                 "%.6s", buf);
        sc_check(fcntl(g.fds[0], F_GETFL) == f_flags, "the file's status flags (O_RDWR|O_APPEND)", "%#x, was %#x",
                 fcntl(g.fds[0], F_GETFL), f_flags);
        uint64_t v = 5, r = 0;
        sc_check(write(g.fds[1], &v, 8) == 8 && read(ev, &r, 8) == 8 && r == 5,
                 "the eventfd is the parent's own (a write through one, read through the other)", "read %llu",
                 (unsigned long long)r);
    }
    g = recv_all(dg[0]);
    sc_check(g.n == 4 && memcmp(g.data, "pipe", 4) == 0 && g.nfds == 1, "datagram 3 with the pipe's read end",
             "n %zd nfds %d", g.n, g.nfds);
    if (g.nfds == 1) {
        char buf[16] = {0};
        sc_check(read(g.fds[0], buf, 7) == 7 && memcmp(buf, "through", 7) == 0, "the pipe's queued bytes", "%.7s",
                 buf);
        memset(buf, 0, sizeof buf);
        sc_check(read(g.fds[0], buf, 4) == 4 && memcmp(buf, "more", 4) == 0, "then what the child wrote after GO",
                 "%.4s", buf);
    }
    g = recv_all(dg[0]);
    sc_check(g.n == 5 && memcmp(g.data, "socks", 5) == 0 && g.nfds == 2, "datagram 4 with two sockets",
             "n %zd nfds %d", g.n, g.nfds);
    if (g.nfds == 2) {
        char b = 0;
        sc_check(recv(sp[0], &b, 1, MSG_DONTWAIT) == 1 && b == 'q', "the pair's queued byte", "%c", b);
        b = 0;
        sc_check(write(g.fds[0], "w", 1) == 1 && recv(sp[0], &b, 1, MSG_DONTWAIT) == 1 && b == 'w',
                 "the carried end is the parent's own (a byte through it reaches its peer)", "%c", b);
        int c = socket(AF_UNIX, SOCK_STREAM, 0);
        int a = connect(c, (struct sockaddr *)&la, sizeof la) == 0 ? accept(g.fds[1], NULL, NULL) : -1;
        sc_check(a >= 0 && write(c, "k", 1) == 1 && read(a, &b, 1) == 1 && b == 'k',
                 "the carried listener accepts a new connection", "a %d errno %d", a, errno);
    }
    errno = 0;
    g = recv_all(dg[0]);
    sc_check(g.n < 0 && errno == EAGAIN, "then no datagram", "n %zd errno %d", g.n, errno);

    g = recv_all(st[0]);
    sc_check(g.n == 4 && memcmp(g.data, "xxyy", 4) == 0 && g.nfds == 1,
             "a stream read stops after the bytes carrying the directory", "n %zd %.8s nfds %d", g.n, g.data, g.nfds);
    if (g.nfds == 1) {
        struct stat s2;
        sc_check(fstat(g.fds[0], &s2) == 0 && S_ISDIR(s2.st_mode) && s2.st_ino == dir_st.st_ino,
                 "the directory, the same inode", "%s", "");
    }
    g = recv_all(st[0]);
    sc_check(g.n == 2 && memcmp(g.data, "zz", 2) == 0 && g.nfds == 0, "then the last bytes", "n %zd nfds %d", g.n,
             g.nfds);

    g = recv_all(sq[0]);
    sc_check(g.n == 2 && memcmp(g.data, "c1", 2) == 0 && g.has_cred && g.cred.pid == child &&
             g.cred.uid == getuid() && g.cred.gid == getgid(), "seqpacket 1 with the child's credentials",
             "n %zd cred %d pid %d uid %d", g.n, g.has_cred, g.cred.pid, g.cred.uid);
    g = recv_all(sq[0]);
    sc_check(g.n == 2 && memcmp(g.data, "c2", 2) == 0 && g.has_cred && g.cred.pid == child && g.nfds == 1,
             "seqpacket 2 with credentials and a descriptor", "n %zd cred %d pid %d nfds %d", g.n, g.has_cred,
             g.cred.pid, g.nfds);
    if (g.nfds == 1) {
        char link[64] = {0}, path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", g.fds[0]);
        sc_check(readlink(path, link, sizeof link - 1) > 0 && strcmp(link, "/dev/null") == 0 &&
                 (fcntl(g.fds[0], F_GETFL) & O_ACCMODE) == O_WRONLY && write(g.fds[0], "x", 1) == 1,
                 "it is /dev/null, write-only", "%s", link);
    }
    cf_collect("child", child);
    return sc_done();
}
