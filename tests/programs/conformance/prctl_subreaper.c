/* PR_SET_CHILD_SUBREAPER on the root: kept after restore, and a grandchild orphaned after restore
 * is re-parented to us (we reap it). */
#include "cf.h"
#include <sys/prctl.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    int gate[2];
    cf_gate_open(gate);
    pid_t grandchild = 0;
    int gp[2];
    if (pipe(gp)) return 3;
    pid_t mid = fork();
    if (mid == 0) {
        pid_t g = fork();
        if (g == 0) {
            /* Its parent read before GO: after GO the middle process may exit before we look. */
            pid_t parent = getppid();
            sc_wait_go();
            while (getppid() == parent) usleep(1000);
            _exit(5);
        }
        if (write(gp[1], &g, sizeof g) != sizeof g) _exit(3);
        cf_gate_pass(gate);
        sc_wait_go();
        _exit(0);
    }
    if (read(gp[0], &grandchild, sizeof grandchild) != sizeof grandchild) return 3;
    cf_gate_wait(gate, 1);
    sc_ready();
    sc_wait_go();
    int v = 0;
    prctl(PR_GET_CHILD_SUBREAPER, &v);
    sc_check(v == 1, "PR_GET_CHILD_SUBREAPER", "%d", v);
    int st;
    waitpid(mid, &st, 0);
    pid_t r = waitpid(grandchild, &st, 0);
    sc_check(r == grandchild && WIFEXITED(st) && WEXITSTATUS(st) == 5, "orphaned grandchild reaped by us",
             "waitpid %d errno %d", r, errno);
    return sc_done();
}
