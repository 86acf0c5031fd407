/* PR_SET_PDEATHSIG in a child (SIGUSR1, handled): kept after restore (PR_GET_PDEATHSIG), and the
 * signal arrives when its parent exits. */
#include "cf.h"
#include <sys/prctl.h>

static volatile sig_atomic_t got;
static void on_usr1(int sig) { (void)sig; got++; }

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int gate[2];
    cf_gate_open(gate);
    pid_t mid = fork();
    if (mid == 0) {                            /* the parent that will die */
        pid_t kid = fork();
        if (kid == 0) {
            cf_sub("kid");
            signal(SIGUSR1, on_usr1);
            prctl(PR_SET_PDEATHSIG, SIGUSR1);
            cf_gate_pass(gate);
            sc_wait_go();
            int sig = 0;
            prctl(PR_GET_PDEATHSIG, &sig);
            sc_check(sig == SIGUSR1, "PR_GET_PDEATHSIG", "%d", sig);
            while (!got) usleep(1000);         /* until the middle process exits */
            sc_check(got == 1, "SIGUSR1 at the parent's death", "%d", got);
            exit(sc_done());
        }
        sc_wait_go();
        _exit(0);
    }
    cf_gate_wait(gate, 1);
    sc_ready();
    sc_wait_go();
    int st;
    waitpid(mid, &st, 0);
    /* the kid is orphaned now: it was re-parented away from us; its report is read from its file */
    char path[4200], text[4096];
    snprintf(path, sizeof path, "%s.kid", sc_out_path);
    for (int i = 0; i < 20000; i++) {
        if (cf_slurp(path, text, sizeof text) > 0 && strstr(text, "at the parent's death")) break;
        usleep(1000);
    }
    sc_check(strstr(text, "ok PR_GET_PDEATHSIG") != NULL, "[kid] PR_GET_PDEATHSIG", "%s", text);
    sc_check(strstr(text, "ok SIGUSR1 at the parent's death") != NULL, "[kid] SIGUSR1 at the parent's death", "%s",
             text);
    return sc_done();
}
