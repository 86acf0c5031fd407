/* A System V semaphore set with values set, and a child that made operations with SEM_UNDO (the
 * kernel undoes them when that process exits, and killing the checkpointed child does exactly
 * that).  After restore the set has its id, permissions, values and last operators (GETPID) as at
 * the checkpoint, and the undo still applies when the restored child exits -- a negative one too,
 * made on a value the parent then took back to 0 (which the kernel would clamp at 0 on exit). */
#include "cf.h"
#include <sys/ipc.h>
#include <sys/sem.h>

union semun { int val; struct semid_ds *buf; unsigned short *array; };

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int id = semget(IPC_PRIVATE, 3, IPC_CREAT | 0640);
    unsigned short init[3] = {5, 10, 0};
    union semun u = {.array = init};
    semctl(id, 0, SETALL, u);
    int gate[2], quit[2];
    cf_gate_open(gate);
    if (pipe(quit)) return 3;
    pid_t child = fork();
    if (child == 0) {
        struct sembuf ops[2] = {{.sem_num = 1, .sem_op = -4, .sem_flg = SEM_UNDO},     /* 10 -> 6, +4 at exit */
                                {.sem_num = 2, .sem_op = 3, .sem_flg = SEM_UNDO}};     /* 0 -> 3, -3 at exit */
        if (semop(id, ops, 2)) _exit(3);
        cf_gate_pass(gate);
        char c;
        _exit(read(quit[0], &c, 1) == 1 ? 0 : 1);
    }
    cf_gate_wait(gate, 1);
    struct sembuf take = {.sem_num = 2, .sem_op = -3};                                 /* 3 -> 0, no undo */
    if (semop(id, &take, 1)) return 3;
    int pids_before[3];
    for (int i = 0; i < 3; i++) pids_before[i] = semctl(id, i, GETPID);
    sc_ready();
    sc_wait_go();
    sc_check(semctl(id, 0, GETVAL) == 5 && semctl(id, 1, GETVAL) == 6 && semctl(id, 2, GETVAL) == 0,
             "values as at the checkpoint", "%d %d %d", semctl(id, 0, GETVAL), semctl(id, 1, GETVAL),
             semctl(id, 2, GETVAL));
    int pids[3];
    for (int i = 0; i < 3; i++) pids[i] = semctl(id, i, GETPID);
    sc_check(pids[0] == pids_before[0] && pids[1] == pids_before[1] && pids[2] == pids_before[2] &&
             pids[1] == child && pids[2] == getpid(), "last operators (GETPID)", "%d %d %d, before %d %d %d",
             pids[0], pids[1], pids[2], pids_before[0], pids_before[1], pids_before[2]);
    struct semid_ds ds;
    union semun su = {.buf = &ds};
    int st_ok = semctl(id, 0, IPC_STAT, su) == 0;
    sc_check(st_ok && (ds.sem_perm.mode & 0777) == 0640 && ds.sem_nsems == 3 && ds.sem_perm.uid == getuid() &&
             ds.sem_perm.cuid == getuid(), "permissions and size", "mode %o nsems %lu",
             st_ok ? ds.sem_perm.mode & 0777 : 0, st_ok ? (unsigned long)ds.sem_nsems : 0UL);
    struct sembuf give = {.sem_num = 2, .sem_op = 5};                                  /* 0 -> 5, no undo */
    semop(id, &give, 1);
    if (write(quit[1], "q", 1) != 1) return 3;
    int st;
    waitpid(child, &st, 0);
    sc_check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child exits 0", "%#x", st);
    sc_check(semctl(id, 1, GETVAL) == 10 && semctl(id, 2, GETVAL) == 2, "its undo applied when it exited",
             "%d %d", semctl(id, 1, GETVAL), semctl(id, 2, GETVAL));
    semctl(id, 0, IPC_RMID);
    return sc_done();
}
