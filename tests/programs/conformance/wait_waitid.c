/* Blocked in waitid(P_PID, WEXITED) for a child killed by SIGTERM after GO. */
#include "cf.h"

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    pid_t child = fork();
    if (child == 0) {
        sc_wait_go();
        raise(SIGTERM);
        _exit(1);
    }
    sc_ready();
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int r;
    while ((r = waitid(P_PID, (id_t)child, &si, WEXITED)) < 0 && errno == EINTR) {}
    sc_check(r == 0 && si.si_pid == child, "waitid returns the child", "r=%d pid %d errno %d", r, si.si_pid, errno);
    sc_check(si.si_code == CLD_KILLED && si.si_status == SIGTERM, "killed by SIGTERM", "code %d status %d",
             si.si_code, si.si_status);
    sc_check(si.si_uid == getuid(), "si_uid is ours", "uid %d", si.si_uid);
    return sc_done();
}
