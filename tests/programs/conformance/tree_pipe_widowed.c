/* Widowed pipes shared in a tree: the read end of a pipe whose writers are all gone, held by the
 * root and its child (one description: what one reads is gone for the other, then EOF), and the
 * write end of a pipe whose readers are all gone, held by the child alone (EPIPE). */
#include "cf.h"

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    int a[2], b[2], gate[2];
    if (pipe(a) || pipe(b)) return 3;
    cf_gate_open(gate);
    if (write(a[1], "shared-bytes", 12) != 12) return 3;
    close(a[1]);
    close(b[0]);
    pid_t child = fork();
    if (child == 0) {
        cf_sub("child");
        cf_gate_pass(gate);
        sc_wait_go();
        char buf[8] = {0};
        sc_check(read(a[0], buf, 6) == 6 && memcmp(buf, "shared", 6) == 0, "the child reads the first bytes",
                 "%.6s", buf);
        sc_check(write(b[1], "x", 1) < 0 && errno == EPIPE, "writing with no reader: EPIPE", "errno %d", errno);
        exit(sc_done());
    }
    close(b[1]);
    cf_gate_wait(gate, 1);
    sc_ready();
    sc_wait_go();
    cf_collect("child", child);
    char buf[16] = {0};
    sc_check(read(a[0], buf, sizeof buf) == 6 && memcmp(buf, "-bytes", 6) == 0, "the root reads the rest",
             "%.6s", buf);
    sc_check(read(a[0], buf, sizeof buf) == 0, "then EOF", "%s", "");
    return sc_done();
}
