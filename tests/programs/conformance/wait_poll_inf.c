/* Blocked in poll(2) with no timeout on two pipes; a child writes to the second after GO. */
#include "cf.h"
#include <poll.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int a[2], b[2];
    if (pipe(a) || pipe(b)) return 3;
    pid_t child = fork();
    if (child == 0) {
        sc_wait_go();
        _exit(write(b[1], "x", 1) == 1 ? 0 : 1);
    }
    close(b[1]);
    sc_ready();
    struct pollfd fds[2] = {{.fd = a[0], .events = POLLIN}, {.fd = b[0], .events = POLLIN | POLLPRI}};
    errno = 0;
    int n = poll(fds, 2, -1);
    sc_check(n == 1, "poll returns one ready descriptor", "n=%d errno=%d", n, errno);
    sc_check(fds[0].revents == 0 && (fds[1].revents & ~POLLHUP) == POLLIN, "revents", "%#x %#x", fds[0].revents,
             fds[1].revents);
    int st;
    waitpid(child, &st, 0);
    sc_check(WIFEXITED(st) && !WEXITSTATUS(st), "writer exits 0", "%#x", st);
    return sc_done();
}
