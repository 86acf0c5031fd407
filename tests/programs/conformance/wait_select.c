/* Blocked in select(2) with a timeout; a child writes after GO.  The timeout left is updated and
 * never more than asked. */
#include "cf.h"
#include <sys/select.h>

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
    struct timeval tv = {.tv_sec = 1000};
    fd_set r;
    int n;
    do {
        FD_ZERO(&r);
        FD_SET(b[0], &r);
        n = select(b[0] + 1, &r, NULL, NULL, &tv);
    } while (n < 0 && errno == EINTR);
    sc_check(n == 1 && FD_ISSET(b[0], &r), "select returns the pipe", "n=%d errno=%d", n, errno);
    sc_check(tv.tv_sec < 1000 && tv.tv_sec > 0, "timeout left updated", "%ld.%06ld", (long)tv.tv_sec,
             (long)tv.tv_usec);
    int st;
    waitpid(child, &st, 0);
    sc_check(WIFEXITED(st) && !WEXITSTATUS(st), "writer exits 0", "%#x", st);
    return sc_done();
}
