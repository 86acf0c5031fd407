/* Zombies left unreaped at the checkpoint: one exited with 7, one killed by SIGTERM, one by
 * SIGKILL.  After restore each is reaped with its own status, in any order. */
#include "cf.h"

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    pid_t z[3];
    z[0] = fork();
    if (z[0] == 0) _exit(7);
    z[1] = fork();
    if (z[1] == 0) { pause(); _exit(1); }
    z[2] = fork();
    if (z[2] == 0) { pause(); _exit(1); }
    kill(z[1], SIGTERM);
    kill(z[2], SIGKILL);
    for (int i = 0; i < 3; i++) {                  /* until all three are zombies */
        siginfo_t si;
        memset(&si, 0, sizeof si);
        while (waitid(P_PID, (id_t)z[i], &si, WEXITED | WNOWAIT) < 0 && errno == EINTR) {}
    }
    sc_ready();
    sc_wait_go();
    int st;
    sc_check(waitpid(z[0], &st, 0) == z[0] && WIFEXITED(st) && WEXITSTATUS(st) == 7, "zombie exited 7", "%#x", st);
    sc_check(waitpid(z[1], &st, 0) == z[1] && WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM, "zombie killed by SIGTERM",
             "%#x", st);
    sc_check(waitpid(z[2], &st, 0) == z[2] && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "zombie killed by SIGKILL",
             "%#x", st);
    sc_check(waitpid(-1, &st, WNOHANG) < 0 && errno == ECHILD, "no other child", "errno %d", errno);
    return sc_done();
}
