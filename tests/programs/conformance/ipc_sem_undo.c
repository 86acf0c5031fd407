/* A System V semaphore set with values set, and a child that made an operation with SEM_UNDO (the
 * kernel undoes it when that process exits, and killing the checkpointed child does exactly
 * that).  After restore the values are those of the checkpoint, and the undo still applies when
 * the restored child exits. */
#include "cf.h"
#include <sys/ipc.h>
#include <sys/sem.h>

union semun { int val; struct semid_ds *buf; unsigned short *array; };

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int id = semget(IPC_PRIVATE, 3, IPC_CREAT | 0600);
    unsigned short init[3] = {5, 10, 0};
    union semun u = {.array = init};
    semctl(id, 0, SETALL, u);
    int gate[2], quit[2];
    cf_gate_open(gate);
    if (pipe(quit)) return 3;
    pid_t child = fork();
    if (child == 0) {
        struct sembuf op = {.sem_num = 1, .sem_op = -4, .sem_flg = SEM_UNDO};
        if (semop(id, &op, 1)) _exit(3);               /* 10 -> 6, undone at exit */
        cf_gate_pass(gate);
        char c;
        _exit(read(quit[0], &c, 1) == 1 ? 0 : 1);
    }
    cf_gate_wait(gate, 1);
    sc_ready();
    sc_wait_go();
    sc_check(semctl(id, 0, GETVAL) == 5 && semctl(id, 1, GETVAL) == 6 && semctl(id, 2, GETVAL) == 0,
             "values as at the checkpoint", "%d %d %d", semctl(id, 0, GETVAL), semctl(id, 1, GETVAL),
             semctl(id, 2, GETVAL));
    if (write(quit[1], "q", 1) != 1) return 3;
    int st;
    waitpid(child, &st, 0);
    sc_check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child exits 0", "%#x", st);
    sc_check(semctl(id, 1, GETVAL) == 10, "its undo applied when it exited", "%d", semctl(id, 1, GETVAL));
    semctl(id, 0, IPC_RMID);
    return sc_done();
}
