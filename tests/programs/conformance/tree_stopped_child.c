/* A child stopped by SIGSTOP while checkpointed: after restore it is still stopped (state T,
 * its parent has no new stop to report), SIGCONT resumes it, and the parent sees it continue. */
#include "cf.h"

static char state_of(pid_t pid)
{
    char path[64], text[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    if (cf_slurp(path, text, sizeof text) < 0) return '?';
    char *p = strrchr(text, ')');
    return p && p[1] ? p[2] : '?';
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    pid_t child = fork();
    if (child == 0) {
        cf_sub("child");
        raise(SIGSTOP);
        sc_check(1, "resumed", "%s", "");
        exit(sc_done());
    }
    int st;
    waitpid(child, &st, WUNTRACED);
    if (!WIFSTOPPED(st)) return 3;
    sc_ready();
    sc_wait_go();
    sc_check(state_of(child) == 'T', "child still stopped", "state %c", state_of(child));
    sc_check(waitpid(child, &st, WUNTRACED | WNOHANG) == 0, "no second stop report", "status %#x", st);
    kill(child, SIGCONT);
    sc_check(waitpid(child, &st, WCONTINUED) == child && WIFCONTINUED(st), "parent sees it continue", "%#x", st);
    cf_collect("child", child);
    return sc_done();
}
