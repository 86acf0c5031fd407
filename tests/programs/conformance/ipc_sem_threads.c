/* A System V semaphore set and a process of two threads, which share one list of undo adjustments
 * (CLONE_SYSVSEM): incr cannot read the adjustments without unsharing it, so the checkpoint must be
 * refused, the job running on unharmed: values and undo as they were. */
#include "cf.h"
#include <pthread.h>
#include <sys/ipc.h>
#include <sys/sem.h>

static int id;

static void *worker(void *arg)
{
    (void)arg;
    struct sembuf op = {.sem_num = 0, .sem_op = -1, .sem_flg = SEM_UNDO};      /* 3 -> 2, +1 at exit */
    semop(id, &op, 1);
    sc_wait_go();
    return NULL;
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    id = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
    semctl(id, 0, SETVAL, 3);
    pthread_t t;
    if (pthread_create(&t, NULL, worker, NULL)) return 3;
    while (semctl(id, 0, GETVAL) != 2) usleep(1000);
    sc_ready();
    sc_wait_go();
    pthread_join(t, NULL);
    sc_check(semctl(id, 0, GETVAL) == 2, "value unchanged", "%d", semctl(id, 0, GETVAL));
    pid_t child = fork();
    if (child == 0) {
        struct sembuf op = {.sem_num = 0, .sem_op = 0, .sem_flg = IPC_NOWAIT};
        _exit(semop(id, &op, 1) == -1 && errno == EAGAIN ? 0 : 1);              /* not 0: no adjustment lost */
    }
    int st;
    waitpid(child, &st, 0);
    sc_check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "value still above zero", "%#x", st);
    semctl(id, 0, IPC_RMID);
    return sc_done();
}
