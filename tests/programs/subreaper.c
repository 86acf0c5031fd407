/* A child subreaper (PR_SET_CHILD_SUBREAPER): orphans below it come to it.
 *
 *   me (subreaper) --fork--> C --fork--> G
 *
 * After restore: me is still a subreaper; C exits; G finds me as its parent,
 * and me can reap it. */
#include "selfcheck.h"
#include <errno.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>

static int end_c[2], ask_g[2], up[2];

static int read_int(int fd)
{
    int v = -1;
    if (read(fd, &v, sizeof v) != sizeof v) return -1;
    return v;
}

int main(int argc, char **argv)
{
    sc_init(argc, argv);
    if (prctl(PR_SET_CHILD_SUBREAPER, 1)) return 20;
    if (pipe(end_c) || pipe(ask_g) || pipe(up)) return 21;
    pid_t c = fork();
    if (c == 0) {
        pid_t g = fork();
        if (g == 0) {
            char b;
            int ppid = getppid();
            if (write(up[1], &ppid, sizeof ppid) != sizeof ppid) _exit(2);
            if (read(ask_g[0], &b, 1) != 1) _exit(3);
            ppid = getppid();
            if (write(up[1], &ppid, sizeof ppid) != sizeof ppid) _exit(4);
            _exit(0);
        }
        char b;
        if (read(end_c[0], &b, 1) != 1) _exit(5);
        _exit(0);                     /* G is orphaned now */
    }
    close(end_c[0]), close(ask_g[0]), close(up[1]);    /* a dead child reads as end of file */
    if (read_int(up[0]) != c) return 22;
    sc_ready();
    sc_wait_go();

    int flag = -1;
    prctl(PR_GET_CHILD_SUBREAPER, &flag);
    sc_check(flag == 1, "still a subreaper", "PR_GET_CHILD_SUBREAPER gives %d", flag);
    if (write(end_c[1], "x", 1) != 1) return 23;
    int st;
    sc_check(waitpid(c, &st, 0) == c && WIFEXITED(st), "the middle child exited", "waitpid: %s", strerror(errno));
    if (write(ask_g[1], "x", 1) != 1) return 24;
    int ppid = read_int(up[0]);
    sc_check(ppid == getpid(), "the orphan came to the subreaper", "its parent is %d, not %d", ppid, getpid());
    pid_t got = -1;
    for (int i = 0; i < 5000 && got <= 0; i++) {   /* it exits right after its report */
        got = waitpid(-1, &st, WNOHANG);
        if (got == 0) usleep(1000);
    }
    sc_check(got > 0 && got != c && WIFEXITED(st) && WEXITSTATUS(st) == 0, "the subreaper reaps the orphan",
             "waitpid gives %d (%s), status %#x", got, got < 0 ? strerror(errno) : "", st);
    return sc_done();
}
