/* A System V segment marked for removal (IPC_RMID) while attached, the usual way to get one freed
 * when the job ends: its data after restore, still one segment between a parent and its child. */
#include "cf.h"
#include <sys/ipc.h>
#include <sys/shm.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int id = shmget(IPC_PRIVATE, 8192, IPC_CREAT | 0600);
    volatile char *a = shmat(id, NULL, 0);
    if (a == (void *)-1) return 3;
    shmctl(id, IPC_RMID, NULL);
    strcpy((char *)a + 100, "removed but attached");
    int gate[2];
    cf_gate_open(gate);
    pid_t child = fork();
    if (child == 0) {
        cf_sub("child");
        cf_gate_pass(gate);
        sc_wait_go();
        while (a[5000] != 'p') {}
        sc_check(strcmp((char *)a + 100, "removed but attached") == 0, "child sees the data", "%s", "");
        a[5001] = 'c';
        exit(sc_done());
    }
    cf_gate_wait(gate, 1);
    sc_ready();
    sc_wait_go();
    sc_check(strcmp((char *)a + 100, "removed but attached") == 0, "data", "%.24s", a + 100);
    a[5000] = 'p';
    while (a[5001] != 'c') {}
    sc_check(1, "the child's write is seen", "%s", "");
    cf_collect("child", child);
    return sc_done();
}
