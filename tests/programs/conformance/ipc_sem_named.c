/* A POSIX named semaphore kept under its name (sem_open without sem_unlink, as Python's
 * multiprocessing does with the spawn and forkserver methods), shared by a parent and its child:
 * after restore the value is as at the checkpoint, the name still leads to the very object the
 * processes map (a post through a handle opened anew shows through the old one), a post from the
 * child wakes the parent, and the mapping's maps line is as before (glibc maps a file made under
 * a temporary name, since removed). */
#include "cf.h"
#include <semaphore.h>
#include <sys/mman.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    char name[64];
    snprintf(name, sizeof name, "/incr-cf-named-%d", getpid());
    sem_t *sem = sem_open(name, O_CREAT | O_EXCL, 0600, 4);
    if (sem == SEM_FAILED) return 3;
    sem_t *go = mmap(NULL, sizeof(sem_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    sem_init(go, 1, 0);
    int gate[2];
    cf_gate_open(gate);
    pid_t child = fork();
    if (child == 0) {
        cf_sub("child");
        cf_gate_pass(gate);
        sem_wait(go);
        sc_check(sem_post(sem) == 0, "child posts", "%s", "");
        _exit(sc_done());
    }
    cf_gate_wait(gate, 1);
    sem_wait(sem);                                  /* 3 at the checkpoint */
    char before[256];
    snprintf(before, sizeof before, "%s", cf_maps_line("/dev/shm/"));
    sc_ready();
    sc_wait_go();
    int v = -1;
    sem_getvalue(sem, &v);
    sc_check(v == 3, "value", "%d, want 3", v);
    cf_same(before, cf_maps_line("/dev/shm/"), "maps line");
    sem_t *again = sem_open(name, 0);
    sc_check(again != SEM_FAILED, "the name is still there", "%s", name);
    if (again != SEM_FAILED) {
        sem_post(again);
        sem_getvalue(sem, &v);
        sc_check(v == 4, "the name leads to the mapped object", "%d, want 4", v);
    }
    sem_post(go);
    for (int i = 0; i < 5; i++) sem_wait(sem);      /* the child's post makes 5 */
    sem_getvalue(sem, &v);
    sc_check(v == 0, "the child's post arrived", "%d", v);
    cf_collect("child", child);
    sem_unlink(name);
    return sc_done();
}
