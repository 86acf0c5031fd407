/* A thread waits on a futex (FUTEX_WAIT, no timeout) while checkpointed; after GO the main thread
 * stores a value and wakes it; the waiter sees the value. */
#include "cf.h"
#include <linux/futex.h>
#include <pthread.h>

static _Atomic int word;
static _Atomic pid_t waiter_tid;
static volatile int waiter_saw;

static void *waiter(void *arg)
{
    (void)arg;
    waiter_tid = cf_gettid();
    while (word == 0) {
        long r = syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
        if (r < 0 && errno != EAGAIN && errno != EINTR) return (void *)1;
    }
    waiter_saw = word;
    return NULL;
}

/* The thread's state letter in /proc (S: asleep in the kernel). */
static char state_of(pid_t tid)
{
    char path[64], text[1024];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
    if (cf_slurp(path, text, sizeof text) < 0) return '?';
    char *p = strrchr(text, ')');
    return p && p[1] ? p[2] : '?';
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    pthread_t t;
    pthread_create(&t, NULL, waiter, NULL);
    while (!waiter_tid) usleep(100);
    while (state_of(waiter_tid) != 'S') usleep(100);
    sc_ready();
    sc_wait_go();
    word = 7;
    syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    void *ret;
    pthread_join(t, &ret);
    sc_check(ret == NULL && waiter_saw == 7, "waiter woke with the value", "ret %p saw %d", ret, waiter_saw);
    return sc_done();
}
