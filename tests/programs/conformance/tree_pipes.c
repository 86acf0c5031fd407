/* A three-level tree (root -> A -> B) with a pipe between each pair, data queued in each while
 * checkpointed; parents, PIDs and the queued bytes come back. */
#include "cf.h"

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int ra[2], ab[2], gate[2];
    if (pipe(ra) || pipe(ab)) return 3;
    cf_gate_open(gate);
    pid_t root = getpid();
    if (write(ra[1], "to-A", 4) != 4) return 3;
    pid_t a = fork();
    if (a == 0) {
        cf_sub("A");
        pid_t me = getpid();
        if (write(ab[1], "to-B", 4) != 4) _exit(3);
        pid_t b = fork();
        if (b == 0) {
            cf_sub("B");
            cf_gate_pass(gate);
            sc_wait_go();
            char buf[8] = {0};
            sc_check(read(ab[0], buf, 4) == 4 && memcmp(buf, "to-B", 4) == 0, "B reads its bytes", "%.4s", buf);
            sc_check(getppid() == me, "B's parent is A", "%d, want %d", getppid(), me);
            exit(sc_done());
        }
        cf_gate_wait(gate, 0);
        sc_wait_go();
        char buf[8] = {0};
        sc_check(read(ra[0], buf, 4) == 4 && memcmp(buf, "to-A", 4) == 0, "A reads its bytes", "%.4s", buf);
        sc_check(getppid() == root, "A's parent is the root", "%d, want %d", getppid(), root);
        cf_collect("B", b);
        exit(sc_done());
    }
    cf_gate_wait(gate, 1);
    sc_ready();
    sc_wait_go();
    cf_collect("A", a);
    return sc_done();
}
