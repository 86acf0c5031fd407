/* Thread names (pthread_setname_np) and CPU affinity per thread (one pinned to each CPU, one
 * free): /proc/self/task/TID/comm, pthread_getname_np and sched_getaffinity per thread. */
#include "cf.h"
#include <pthread.h>
#include <sched.h>

#define N 3
static _Atomic int ready, leave;
static pid_t tids[N];
static int ncpu;

static void *worker(void *arg)
{
    long i = (long)arg;
    tids[i] = cf_gettid();
    if (i < 2 && i < ncpu) {
        cpu_set_t s;
        CPU_ZERO(&s);
        CPU_SET(i, &s);
        sched_setaffinity(0, sizeof s, &s);
    }
    ready++;
    while (!leave) usleep(1000);
    return NULL;
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    pthread_t t[N];
    for (long i = 0; i < N; i++) pthread_create(&t[i], NULL, worker, (void *)i);
    while (ready < N) usleep(100);
    const char *names[N] = {"cf-zero", "cf-one", "cf-two-longname"};
    for (int i = 0; i < N; i++) pthread_setname_np(t[i], names[i]);
    cpu_set_t before[N];
    for (int i = 0; i < N; i++) sched_getaffinity(tids[i], sizeof before[i], &before[i]);
    sc_ready();
    sc_wait_go();
    for (int i = 0; i < N; i++) {
        char name[16] = {0}, path[64], comm[32];
        pthread_getname_np(t[i], name, sizeof name);
        snprintf(path, sizeof path, "/proc/self/task/%d/comm", tids[i]);
        cf_slurp(path, comm, sizeof comm);
        comm[strcspn(comm, "\n")] = 0;
        char what[48];
        snprintf(what, sizeof what, "thread %d name", i);
        sc_check(strcmp(name, names[i]) == 0 && strcmp(comm, names[i]) == 0, what, "%s / %s", name, comm);
        cpu_set_t now;
        sched_getaffinity(tids[i], sizeof now, &now);
        snprintf(what, sizeof what, "thread %d affinity", i);
        sc_check(CPU_EQUAL(&now, &before[i]), what, "%d CPUs, before %d", CPU_COUNT(&now), CPU_COUNT(&before[i]));
    }
    leave = 1;
    for (int i = 0; i < N; i++) pthread_join(t[i], NULL);
    return sc_done();
}
