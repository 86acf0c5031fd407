/* Scheduling: SCHED_BATCH with nice 3 for the process, SCHED_IDLE for a thread, an I/O priority
 * (best effort, level 6) and a timer slack of 123 us: each after restore. */
#include "cf.h"
#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>

static _Atomic int ready, leave;
static pid_t tid;

static void *worker(void *arg)
{
    (void)arg;
    struct sched_param p = {0};
    sched_setscheduler(0, SCHED_IDLE, &p);
    tid = cf_gettid();
    ready = 1;
    while (!leave) usleep(1000);
    return NULL;
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    struct sched_param p = {0};
    sched_setscheduler(0, SCHED_BATCH, &p);
    setpriority(PRIO_PROCESS, 0, 3);
    syscall(SYS_ioprio_set, 1, 0, (2 << 13) | 6);            /* IOPRIO_WHO_PROCESS, class BE, level 6 */
    prctl(PR_SET_TIMERSLACK, 123000);
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    while (!ready) usleep(100);
    sc_ready();
    sc_wait_go();
    sc_check(sched_getscheduler(0) == SCHED_BATCH, "process policy SCHED_BATCH", "%d", sched_getscheduler(0));
    sc_check(sched_getscheduler(tid) == SCHED_IDLE, "thread policy SCHED_IDLE", "%d", sched_getscheduler(tid));
    errno = 0;
    sc_check(getpriority(PRIO_PROCESS, 0) == 3, "nice 3", "%d", getpriority(PRIO_PROCESS, 0));
    long io = syscall(SYS_ioprio_get, 1, 0);
    sc_check(io == ((2 << 13) | 6), "I/O priority", "%#lx", io);
    sc_check(prctl(PR_GET_TIMERSLACK) == 123000, "timer slack", "%d", prctl(PR_GET_TIMERSLACK));
    leave = 1;
    pthread_join(t, NULL);
    return sc_done();
}
