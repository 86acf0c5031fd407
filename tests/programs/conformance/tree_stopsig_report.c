/* A child stopped by SIGTSTP whose stop its parent has not collected yet: after restore,
 * waitpid(WUNTRACED) reports it, stopped by SIGTSTP. */
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
    siginfo_t si;
    memset(&si, 0, sizeof si);
    waitid(P_PID, (id_t)child, &si, WSTOPPED | WNOWAIT);   /* stopped, the report left pending */
    sc_ready();
    sc_wait_go();
    int st = 0;
    pid_t r = waitpid(child, &st, WUNTRACED | WNOHANG);
    sc_check(r == child && WIFSTOPPED(st) && WSTOPSIG(st) == SIGTSTP, "stop reported with SIGTSTP", "r=%d status %#x",
             r, st);
    kill(child, SIGCONT);
    waitpid(child, &st, 0);
    return sc_done();
}
