/* Per-thread credentials: one thread switches its own uid/gid with raw setresuid/setresgid
 * (glibc would change all threads): each thread's ids after restore. */
#include "cf.h"
#include <pthread.h>

static _Atomic int ready, leave;
static pid_t tid;

static void *worker(void *arg)
{
    (void)arg;
    syscall(SYS_setresgid, 1234, 1234, 1234);
    syscall(SYS_setresuid, 4321, 4321, 4321);
    tid = cf_gettid();
    ready = 1;
    while (!leave) usleep(1000);
    return NULL;
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    while (!ready) usleep(100);
    char path[64], uid_t1[64], gid_t1[64], uid_main[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/status", tid);
    snprintf(uid_t1, sizeof uid_t1, "%s", cf_field(path, "Uid:"));
    snprintf(gid_t1, sizeof gid_t1, "%s", cf_field(path, "Gid:"));
    snprintf(uid_main, sizeof uid_main, "%s", cf_field("/proc/self/status", "Uid:"));
    sc_ready();
    sc_wait_go();
    cf_same(uid_t1, cf_field(path, "Uid:"), "thread's uids");
    cf_same(gid_t1, cf_field(path, "Gid:"), "thread's gids");
    cf_same(uid_main, cf_field("/proc/self/status", "Uid:"), "main thread's uids");
    leave = 1;
    pthread_join(t, NULL);
    return sc_done();
}
