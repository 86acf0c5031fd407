/* MAP_SHARED anonymous memory between a parent and a child: data written before the checkpoint
 * by each is there, and writes after restore by one are seen by the other. */
#include "cf.h"
#include <sys/mman.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    volatile char *s = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    int gate[2];
    cf_gate_open(gate);
    s[0] = 'P';
    pid_t child = fork();
    if (child == 0) {
        cf_sub("child");
        s[pg] = 'C';
        cf_gate_pass(gate);
        sc_wait_go();
        while (s[2 * pg] != 'p') {}                   /* the parent's write after restore */
        sc_check(s[0] == 'P' && s[pg] == 'C', "child sees data from before", "%c %c", s[0], s[pg]);
        s[3 * pg] = 'c';
        exit(sc_done());
    }
    cf_gate_wait(gate, 1);
    sc_ready();
    sc_wait_go();
    sc_check(s[0] == 'P' && s[pg] == 'C', "parent sees data from before", "%c %c", s[0], s[pg]);
    s[2 * pg] = 'p';
    while (s[3 * pg] != 'c') {}
    sc_check(1, "parent sees the child's write", "%s", "");
    cf_collect("child", child);
    return sc_done();
}
