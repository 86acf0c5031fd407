/* SIGCHLD ignored (SIG_IGN) in the parent, and a second process with SA_NOCLDWAIT and a handler:
 * in both, children exiting after restore never become zombies (wait fails with ECHILD), and the
 * handler still runs. */
#include "cf.h"

static volatile sig_atomic_t chld;
static void on_chld(int sig) { (void)sig; chld++; }

static void reaped_automatically(const char *what)
{
    pid_t c = fork();
    if (c == 0) _exit(3);
    int st;
    pid_t r;
    while ((r = waitpid(c, &st, 0)) < 0 && errno == EINTR) {}
    sc_check(r < 0 && errno == ECHILD, what, "waitpid %d errno %d", r, errno);
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int gate[2];
    cf_gate_open(gate);
    pid_t helper = fork();
    if (helper == 0) {
        cf_sub("nocldwait");
        struct sigaction sa = {.sa_handler = on_chld, .sa_flags = SA_NOCLDWAIT};
        sigemptyset(&sa.sa_mask);
        sigaction(SIGCHLD, &sa, NULL);
        cf_gate_pass(gate);
        sc_wait_go();
        reaped_automatically("SA_NOCLDWAIT: no zombie");
        sc_check(chld >= 1, "SA_NOCLDWAIT: handler ran", "%d", chld);
        struct sigaction now;
        sigaction(SIGCHLD, NULL, &now);
        sc_check(now.sa_flags & SA_NOCLDWAIT, "SA_NOCLDWAIT flag kept", "%#x", now.sa_flags);
        exit(sc_done());
    }
    cf_gate_wait(gate, 1);
    sc_ready();
    sc_wait_go();
    cf_collect("nocldwait", helper);
    signal(SIGCHLD, SIG_IGN);
    reaped_automatically("SIG_IGN set after restore: no zombie");
    return sc_done();
}
