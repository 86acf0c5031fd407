/* A session whose leader has exited (a zombie not reaped yet) while a process of it runs on:
 * A makes a session of its own (setsid), forks A1 into it, and exits; A1, orphaned, comes to us
 * (a child subreaper).  After restore: A1 still in A's session and group, a child of ours; A
 * reaped with its own status (exit 5). */
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
            pid_t leader = getsid(0);                     /* A: it made the session */
            while (getppid() == leader) usleep(1000);     /* until A has exited */
            cf_gate_pass(gate);
            sc_wait_go();
            sc_check(getsid(0) == leader, "A1 in the session of its exited leader", "sid %d, leader %d",
                     getsid(0), leader);
            sc_check(getpgrp() == leader, "A1 in its group", "pgrp %d", getpgrp());
            _exit(sc_done());
        }
        _exit(a1 < 0 ? 3 : 5);
    }
    siginfo_t si;
    memset(&si, 0, sizeof si);
    while (waitid(P_PID, (id_t)a, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR) {}
    cf_gate_wait(gate, 1);
    pid_t a1 = -1;                                    /* the one child of ours besides A */
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", getpid(), getpid());
    if (cf_slurp(path, buf, sizeof buf) > 0) {
        for (char *t = strtok(buf, " \n"); t; t = strtok(NULL, " \n"))
            if (atoi(t) != a) a1 = atoi(t);
    }
    if (a1 < 0) return 3;
    sc_ready();
    sc_wait_go();
    sc_check(getsid(a1) == a && getpgid(a1) == a, "A1 in A's session and group, seen from here",
             "sid %d pgid %d", getsid(a1), getpgid(a1));
    int st;
    sc_check(waitpid(a, &st, 0) == a && WIFEXITED(st) && WEXITSTATUS(st) == 5, "A reaped with exit 5", "%#x", st);
    cf_collect("a1", a1);
    return sc_done();
}
