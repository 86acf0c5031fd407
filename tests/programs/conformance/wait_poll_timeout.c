/* poll(2) with a long timeout on a pipe a child writes after GO: the call completes with the
 * descriptor ready (EINTR, which Linux allows when a task is stopped and resumed, is retried). */
#include "cf.h"
#include <poll.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int b[2];
    if (pipe(b)) return 3;
    pid_t child = fork();
    if (child == 0) {
        sc_wait_go();
        _exit(write(b[1], "x", 1) == 1 ? 0 : 1);
    }
    close(b[1]);
    sc_ready();
    struct pollfd fd = {.fd = b[0], .events = POLLIN};
    int n, eintr = 0;
    while ((n = poll(&fd, 1, 600000)) < 0 && errno == EINTR) eintr++;
    sc_check(n == 1 && (fd.revents & ~POLLHUP) == POLLIN, "poll returns the ready pipe", "n=%d revents=%#x errno=%d eintr=%d",
             n, fd.revents, errno, eintr);
    int st;
    waitpid(child, &st, 0);
    sc_check(WIFEXITED(st) && !WEXITSTATUS(st), "writer exits 0", "%#x", st);
    return sc_done();
}
