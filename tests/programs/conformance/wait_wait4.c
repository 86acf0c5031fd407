/* Blocked in wait4(2) for a child that exits 42 after GO; the rusage and status arrive intact. */
#include "cf.h"
#include <sys/resource.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    pid_t child = fork();
    if (child == 0) {
        sc_wait_go();
        _exit(42);
    }
    sc_ready();
    int st = 0;
    struct rusage ru;
    errno = 0;
    pid_t got = wait4(child, &st, 0, &ru);
    sc_check(got == child, "wait4 returns the child", "got %d errno %d", got, errno);
    sc_check(WIFEXITED(st) && WEXITSTATUS(st) == 42, "exit status 42", "status %#x", st);
    sc_check(wait4(-1, &st, WNOHANG, NULL) < 0 && errno == ECHILD, "no other child", "errno %d", errno);
    return sc_done();
}
