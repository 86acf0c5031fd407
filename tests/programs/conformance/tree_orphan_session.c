/* A double-forking daemon under a child subreaper: A makes a session of its own (setsid), forks
 * A1 into it and exits; we reap A.  A1, orphaned, comes to us, in a session whose leader is gone.
 * After restore: A1 still in session A and group A, a child of ours, and no child of A's PID
 * (nothing the restore made to put it there is left). */
#include "cf.h"
#include <sys/prctl.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) return 3;
    int gate[2];
    cf_gate_open(gate);
    pid_t a = fork();
    if (a == 0) {
        if (setsid() < 0) _exit(3);
        pid_t a1 = fork();
        if (a1 == 0) {
            cf_sub("a1");
            pid_t leader = getsid(0);
            while (getppid() == leader) usleep(1000);     /* until A has exited */
            cf_gate_pass(gate);
            sc_wait_go();
            sc_check(getsid(0) == leader, "A1 in the session of its leader, gone", "sid %d, leader %d",
                     getsid(0), leader);
            sc_check(getpgrp() == leader, "A1 in its group", "pgrp %d", getpgrp());
            _exit(sc_done());
        }
        _exit(a1 < 0 ? 3 : 0);
    }
    int st;
    if (waitpid(a, &st, 0) != a) return 3;
    cf_gate_wait(gate, 1);
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", getpid(), getpid());
    pid_t a1 = cf_slurp(path, buf, sizeof buf) > 0 ? atoi(buf) : -1;
    if (a1 <= 0) return 3;
    sc_ready();
    sc_wait_go();
    sc_check(getsid(a1) == a && getpgid(a1) == a, "A1 in A's session and group, seen from here",
             "sid %d pgid %d", getsid(a1), getpgid(a1));
    siginfo_t si;
    memset(&si, 0, sizeof si);
    errno = 0;
    int w = waitid(P_PID, (id_t)a, &si, WEXITED | WNOHANG | WNOWAIT);
    sc_check(w < 0 && errno == ECHILD, "no child of A's PID (reaped before)", "waitid %d errno %d pid %d", w,
             errno, si.si_pid);
    cf_collect("a1", a1);
    sc_check(waitpid(-1, &st, WNOHANG) < 0 && errno == ECHILD, "no other child", "errno %d", errno);
    return sc_done();
}
