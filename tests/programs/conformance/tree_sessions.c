/* Sessions and process groups of a tree: A leads a new session (setsid) with a child A1 in it,
 * B leads a new group in our session, C joins B's group, D stays in ours.  Every process's
 * session and group, seen from itself and from the root, come back. */
#include "cf.h"

static pid_t spawn(const char *tag, int kind, pid_t join, int gate[2])
{
    pid_t pid = fork();
    if (pid) return pid;
    cf_sub(tag);
    if (kind == 1) setsid();
    if (kind == 2) setpgid(0, 0);
    if (kind == 3) setpgid(0, join);
    pid_t grandchild = 0;
    if (kind == 1) {
        grandchild = fork();
        if (grandchild == 0) {
            cf_sub("A1");
            pid_t sid = getsid(0), pg = getpgrp();
            cf_gate_pass(gate);
            sc_wait_go();
            sc_check(getsid(0) == sid && getpgrp() == pg && sid == getppid(), "A1 in A's session and group",
                     "sid %d pgrp %d ppid %d", getsid(0), getpgrp(), getppid());
            exit(sc_done());
        }
    }
    pid_t sid = getsid(0), pg = getpgrp();
    cf_gate_pass(gate);
    sc_wait_go();
    sc_check(getsid(0) == sid && getpgrp() == pg, "own session and group as before", "sid %d->%d pgrp %d->%d", sid,
             getsid(0), pg, getpgrp());
    if (grandchild) {
        sc_check(getpgid(grandchild) == getpid() && getsid(grandchild) == getpid(), "child in our session",
                 "%d %d", getpgid(grandchild), getsid(grandchild));
        cf_collect("A1", grandchild);
    }
    exit(sc_done());
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int gate[2];
    cf_gate_open(gate);
    pid_t me = getpid(), sid = getsid(0), pg = getpgrp();
    pid_t a = spawn("A", 1, 0, gate);
    pid_t b = spawn("B", 2, 0, gate);
    cf_gate_wait(gate, 3);
    pid_t c = spawn("C", 3, b, gate);
    pid_t d = spawn("D", 0, 0, gate);
    cf_gate_wait(gate, 2);
    sc_ready();
    sc_wait_go();
    sc_check(getsid(0) == sid && getpgrp() == pg && getpid() == me, "root's session and group", "%d %d", getsid(0),
             getpgrp());
    sc_check(getsid(a) == a && getpgid(a) == a, "A leads its session", "sid %d pgid %d", getsid(a), getpgid(a));
    sc_check(getsid(b) == sid && getpgid(b) == b, "B leads a group in our session", "sid %d pgid %d", getsid(b),
             getpgid(b));
    sc_check(getsid(c) == sid && getpgid(c) == b, "C in B's group", "sid %d pgid %d", getsid(c), getpgid(c));
    sc_check(getsid(d) == sid && getpgid(d) == pg, "D in our group", "sid %d pgid %d", getsid(d), getpgid(d));
    cf_collect("A", a);
    cf_collect("B", b);
    cf_collect("C", c);
    cf_collect("D", d);
    return sc_done();
}
