/* A robust mutex held by a thread at the checkpoint: when that thread exits after restore without
 * unlocking, the next locker gets EOWNERDEAD (the kernel walks the thread's robust list). */
#include "cf.h"
#include <pthread.h>

static pthread_mutex_t m;
static _Atomic int locked;

static void *holder(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&m);
    locked = 1;
    sc_wait_go();
    return NULL;                                  /* exits holding it */
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&m, &a);
    pthread_t t;
    pthread_create(&t, NULL, holder, NULL);
    while (!locked) usleep(100);
    sc_ready();
    sc_wait_go();
    pthread_join(t, NULL);
    int r = pthread_mutex_lock(&m);
    sc_check(r == EOWNERDEAD, "EOWNERDEAD after the holder died", "lock returned %d", r);
    if (r == EOWNERDEAD) {
        pthread_mutex_consistent(&m);
        pthread_mutex_unlock(&m);
        sc_check(pthread_mutex_lock(&m) == 0, "consistent again", "%s", "");
    }
    return sc_done();
}
