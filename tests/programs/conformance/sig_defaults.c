/* Every signal left at its default disposition (as after exec): after restore each still is
 * (read with the raw rt_sigaction system call, glibc's own two included), and SIGPIPE still
 * kills a child writing to a pipe with no reader. */
#include "cf.h"

struct ksigaction { void *handler; unsigned long flags; void *restorer; uint64_t mask; };

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    for (int s = 1; s <= 64; s++) {
        if (s == SIGKILL || s == SIGSTOP) continue;
        struct ksigaction dfl = {0};
        syscall(SYS_rt_sigaction, s, &dfl, NULL, 8);
    }
    sc_ready();
    sc_wait_go();
    int not_default = 0;
    char first[64] = "";
    for (int s = 1; s <= 64; s++) {
        struct ksigaction now;
        memset(&now, 0xff, sizeof now);
        if (syscall(SYS_rt_sigaction, s, NULL, &now, 8) != 0) continue;
        if (now.handler != NULL) {
            if (!not_default) snprintf(first, sizeof first, "signal %d handler %p", s, now.handler);
            not_default++;
        }
    }
    sc_check(not_default == 0, "every disposition SIG_DFL", "%d are not; first %s", not_default, first);
    int p[2];
    if (pipe(p)) return 3;
    close(p[0]);
    pid_t c = fork();
    if (c == 0) {
        ssize_t n = write(p[1], "x", 1);
        _exit(n < 0 ? 2 : 1);
    }
    int st;
    waitpid(c, &st, 0);
    sc_check(WIFSIGNALED(st) && WTERMSIG(st) == SIGPIPE, "SIGPIPE kills", "status %#x", st);
    return sc_done();
}
