/* A child stopped by SIGTSTP (not SIGSTOP): after restore still stopped, and the stop signal its
 * parent learns (waitid WSTOPPED|WNOWAIT) is SIGTSTP. */
#include "cf.h"

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    pid_t child = fork();
    if (child == 0) {
        setpgid(0, 0);                  /* (in an orphaned group SIGTSTP would be discarded) */
        raise(SIGTSTP);
        _exit(0);
    }
    int st;
    waitpid(child, &st, WUNTRACED);
    if (!WIFSTOPPED(st) || WSTOPSIG(st) != SIGTSTP) return 3;
    sc_ready();
    sc_wait_go();
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", child);
    sc_check(cf_field(path, "State:")[0] == 'T', "still stopped", "%s", cf_field(path, "State:"));
    kill(child, SIGCONT);
    kill(child, SIGSTOP);
    kill(child, SIGCONT);
    waitpid(child, &st, 0);
    sc_check(WIFEXITED(st), "continues and exits", "%#x", st);
    return sc_done();
}
