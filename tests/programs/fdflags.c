/* Self-checking: the file status flags (F_GETFL) and close-on-exec (F_GETFD)
 * of every kind of descriptor incr restores come back as they were.
 *   fdflags OUT READY GO DIR        (DIR: a scratch directory for files and a FIFO)
 * Regular files with O_APPEND/O_SYNC/O_DSYNC/O_DIRECT/O_NOATIME/O_NONBLOCK,
 * a directory and an O_PATH descriptor, devices, pipes (both ends, flags set
 * at pipe2 or later by F_SETFL on one end only, packet mode), a pipe whose
 * other end only a child holds, a FIFO, socket pairs, eventfd, signalfd,
 * timerfd, epoll, inotify, memfds (O_APPEND, a read-only reopen) and
 * /dev/shm files.  Every value is recorded before the checkpoint and
 * compared after GO; the child checks its own end the same way. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>

#include "selfcheck.h"

struct rec { int fd; char what[64]; int fl, fdfl; };
static struct rec recs[64];
static int nrec;

static int note(int fd, const char *what)
{
    if (fd < 0) {
        perror(what);
        exit(3);
    }
    struct rec *r = &recs[nrec++];
    r->fd = fd;
    snprintf(r->what, sizeof r->what, "%s (fd %d)", what, fd);
    r->fl = fcntl(fd, F_GETFL);
    r->fdfl = fcntl(fd, F_GETFD);
    return fd;
}

static void setfl(int fd, int add)
{
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | add) != 0) {
        perror("F_SETFL");
        exit(3);
    }
}

static void check_all(void)
{
    for (int i = 0; i < nrec; i++) {
        struct rec *r = &recs[i];
        int fl = fcntl(r->fd, F_GETFL), fdfl = fcntl(r->fd, F_GETFD);
        sc_check(fl == r->fl && fdfl == r->fdfl, r->what, "F_GETFL %#o (was %#o), F_GETFD %d (was %d)",
                 fl, r->fl, fdfl, r->fdfl);
    }
}

static char *path(const char *dir, const char *name)
{
    static char buf[8][4096];
    static int n;
    char *p = buf[n++ % 8];
    snprintf(p, 4096, "%s/%s", dir, name);
    return p;
}

int main(int argc, char **argv)
{
    sc_init(argc, argv);
    if (argc < 5) return 2;
    const char *dir = argv[4];
    char shm[64];
    snprintf(shm, sizeof shm, "/dev/shm/incr-fdflags-%d", getpid());

    int f = open(path(dir, "data"), O_RDWR | O_CREAT | O_APPEND, 0600);
    if (write(f, "0123456789", 10) != 10) return 3;
    note(f, "file O_RDWR|O_APPEND");
    note(open(path(dir, "data"), O_WRONLY | O_SYNC), "file O_WRONLY|O_SYNC");
    note(open(path(dir, "data"), O_WRONLY | O_DSYNC | O_CLOEXEC), "file O_DSYNC|O_CLOEXEC");
    note(open(path(dir, "data"), O_RDONLY | O_NOATIME), "file O_NOATIME");
    note(open(path(dir, "data"), O_RDONLY | O_DIRECT), "file O_DIRECT");
    note(open(path(dir, "data"), O_RDONLY | O_NONBLOCK), "file O_NONBLOCK");
    int later = open(path(dir, "data"), O_RDWR);
    setfl(later, O_APPEND | O_NONBLOCK);
    note(later, "file F_SETFL O_APPEND|O_NONBLOCK");
    note(open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), "directory");
    note(open(dir, O_PATH), "O_PATH");
    note(open("/dev/null", O_WRONLY | O_NONBLOCK | O_APPEND), "/dev/null O_NONBLOCK|O_APPEND");
    note(open("/dev/zero", O_RDONLY), "/dev/zero");

    int p[2], q[2], r[2], c[2];
    if (pipe2(p, O_NONBLOCK) || pipe(q) || pipe2(r, O_DIRECT) || pipe(c)) return 3;
    note(p[0], "pipe2 O_NONBLOCK read end");
    note(p[1], "pipe2 O_NONBLOCK write end");
    setfl(q[1], O_NONBLOCK);
    fcntl(q[0], F_SETFD, FD_CLOEXEC);
    note(q[0], "pipe read end, FD_CLOEXEC");
    note(q[1], "pipe write end, F_SETFL O_NONBLOCK");
    note(r[0], "packet pipe read end");
    note(r[1], "packet pipe write end");
    setfl(c[0], O_NONBLOCK);
    setfl(c[1], O_DIRECT);
    note(c[1], "pipe write end (read end in the child)");

    if (mkfifo(path(dir, "fifo"), 0600)) return 3;
    note(open(path(dir, "fifo"), O_RDWR | O_NONBLOCK), "FIFO O_RDWR|O_NONBLOCK");
    note(open(path(dir, "fifo"), O_RDONLY | O_NONBLOCK | O_CLOEXEC), "FIFO O_RDONLY|O_NONBLOCK");

    int s[2], t[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, s) || socketpair(AF_UNIX, SOCK_DGRAM, 0, t)) return 3;
    note(s[0], "socketpair SOCK_NONBLOCK end a");
    note(s[1], "socketpair SOCK_NONBLOCK end b");
    setfl(t[1], O_NONBLOCK | O_APPEND);
    note(t[0], "socketpair end a");
    note(t[1], "socketpair end b, F_SETFL O_NONBLOCK|O_APPEND");

    note(eventfd(1, EFD_NONBLOCK), "eventfd EFD_NONBLOCK");
    int ev = eventfd(0, EFD_CLOEXEC);
    setfl(ev, O_NONBLOCK | O_APPEND);
    note(ev, "eventfd F_SETFL O_NONBLOCK|O_APPEND");
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    sigprocmask(SIG_BLOCK, &m, NULL);
    note(signalfd(-1, &m, SFD_NONBLOCK | SFD_CLOEXEC), "signalfd SFD_NONBLOCK|SFD_CLOEXEC");
    note(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK), "timerfd TFD_NONBLOCK");
    int ep = epoll_create1(0);
    setfl(ep, O_NONBLOCK);
    note(ep, "epoll F_SETFL O_NONBLOCK");
    note(inotify_init1(IN_NONBLOCK), "inotify IN_NONBLOCK");

    int mf = memfd_create("fdflags", 0);
    if (mf < 0 || write(mf, "memfd", 5) != 5) return 3;
    setfl(mf, O_APPEND);
    note(mf, "memfd F_SETFL O_APPEND");
    char self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", mf);
    note(open(self, O_RDONLY | O_NONBLOCK), "memfd reopened O_RDONLY|O_NONBLOCK");
    note(memfd_create("fdflags-cloexec", MFD_CLOEXEC), "memfd MFD_CLOEXEC");

    int sh = open(shm, O_RDWR | O_CREAT | O_APPEND, 0600);
    if (sh < 0 || write(sh, "shm", 3) != 3) return 3;
    note(sh, "/dev/shm O_RDWR|O_APPEND");
    note(open(shm, O_RDONLY), "/dev/shm O_RDONLY");

    int c0_fl = fcntl(c[0], F_GETFL), c0_fdfl = fcntl(c[0], F_GETFD);
    pid_t kid = fork();
    if (kid == 0) {
        close(c[1]);
        char out[4096];
        snprintf(out, sizeof out, "%s.child", sc_out_path);
        sc_out_path = out;
        sc_wait_go();
        int fl = fcntl(c[0], F_GETFL), fdfl = fcntl(c[0], F_GETFD);
        sc_check(fl == c0_fl && fdfl == c0_fdfl, "child: pipe read end",
                 "F_GETFL %#o (was %#o), F_GETFD %d (was %d)", fl, c0_fl, fdfl, c0_fdfl);
        _exit(sc_done());
    }
    close(c[0]);

    sc_ready();
    sc_wait_go();
    check_all();
    int status;
    char out[4096], line[512];
    snprintf(out, sizeof out, "%s.child", sc_out_path);
    status = -1;
    pid_t got = waitpid(kid, &status, 0);
    sc_check(got == kid && WIFEXITED(status) && WEXITSTATUS(status) == 0, "child", "waitpid %d (%m), status %#x",
             (int)got, status);
    FILE *cf = fopen(out, "r");
    while (cf && fgets(line, sizeof line, cf)) {
        line[strcspn(line, "\n")] = 0;
        int good = strncmp(line, "ok ", 3) == 0;
        sc_check(good, good ? line + 3 : line, "(the child's line)");
    }
    unlink(shm);
    return sc_done();
}
