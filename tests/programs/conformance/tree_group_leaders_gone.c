/* Process groups whose leader has exited while a member runs on, as a shell's pipeline leaves
 * them: G leads a group of its own, M joins it, G exits and is reaped; H leads another, N joins
 * it, H exits and is not reaped (a zombie).  After restore: M in G's group, N in H's, H still
 * leading it (getpgid of the zombie), H reaped with its status (exit 4), no child of G's PID. */
#include "cf.h"

static pid_t leader(int code, int gate[2], int release[2])
{
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        cf_gate_pass(gate);
        char c;
        if (read(release[0], &c, 1) < 0) _exit(3);  /* until the member has joined */
        _exit(code);
    }
    return pid;
}

static pid_t member(pid_t group, const char *tag)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (setpgid(0, group)) _exit(3);
        cf_sub(tag);
        sc_wait_go();
        sc_check(getpgrp() == group, "still in the group of its exited leader", "pgrp %d, was %d", getpgrp(), group);
        _exit(sc_done());
    }
    return pid;
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int gate[2], release[2];
    cf_gate_open(gate);
    cf_gate_open(release);
    pid_t g = leader(0, gate, release), h = leader(4, gate, release);
    cf_gate_wait(gate, 2);
    pid_t m = member(g, "m"), n = member(h, "n");
    while (getpgid(m) != g || getpgid(n) != h) usleep(1000);
    if (write(release[1], "xx", 2) != 2) return 3;
    int st;
    if (waitpid(g, &st, 0) != g) return 3;
    siginfo_t si;
    memset(&si, 0, sizeof si);
    while (waitid(P_PID, (id_t)h, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR) {}
    sc_ready();
    sc_wait_go();
    sc_check(getpgid(m) == g, "M in G's group", "%d, was %d", getpgid(m), g);
    sc_check(getpgid(n) == h && getpgid(h) == h, "N in H's group, and H (a zombie) leads it", "%d %d, was %d",
             getpgid(n), getpgid(h), h);
    errno = 0;
    int w = waitid(P_PID, (id_t)g, &si, WEXITED | WNOHANG | WNOWAIT);
    sc_check(w < 0 && errno == ECHILD, "no child of G's PID", "waitid %d errno %d", w, errno);
    sc_check(waitpid(h, &st, 0) == h && WIFEXITED(st) && WEXITSTATUS(st) == 4, "H reaped with exit 4", "%#x", st);
    cf_collect("m", m);
    cf_collect("n", n);
    return sc_done();
}
