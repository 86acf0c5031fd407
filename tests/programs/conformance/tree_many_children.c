/* Twelve children, each with its own pipe holding its own bytes and its own exit code; the root
 * waits for any of them (waitpid(-1)) after restore. */
#include "cf.h"

#define N 12

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int gate[2];
    cf_gate_open(gate);
    pid_t kids[N];
    for (int i = 0; i < N; i++) {
        int p[2];
        if (pipe(p)) return 3;
        char msg[16];
        snprintf(msg, sizeof msg, "child-%02d", i);
        if (write(p[1], msg, 8) != 8) return 3;
        kids[i] = fork();
        if (kids[i] == 0) {
            cf_gate_pass(gate);
            sc_wait_go();
            char buf[9] = {0};
            _exit(read(p[0], buf, 8) == 8 && strcmp(buf, msg) == 0 ? 10 + i : 1);
        }
        close(p[0]);
        close(p[1]);
    }
    cf_gate_wait(gate, N);
    sc_ready();
    sc_wait_go();
    int seen = 0, wrong = 0;
    for (int n = 0; n < N; n++) {
        int st;
        pid_t got = waitpid(-1, &st, 0);
        for (int i = 0; i < N; i++)
            if (got == kids[i]) {
                seen++;
                wrong += !(WIFEXITED(st) && WEXITSTATUS(st) == 10 + i);
            }
    }
    sc_check(seen == N && wrong == 0, "every child read its bytes", "%d seen, %d wrong", seen, wrong);
    return sc_done();
}
