/* Four threads blocked in pthread_cond_wait at the checkpoint: after GO a broadcast wakes them
 * all, each sees the predicate, and the mutex works. */
#include "cf.h"
#include <pthread.h>

#define N 4
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int waiting, go_flag, woke;

static void *waiter(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    waiting++;
    while (!go_flag) pthread_cond_wait(&cv, &mu);
    woke++;
    pthread_mutex_unlock(&mu);
    return NULL;
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    pthread_t t[N];
    for (int i = 0; i < N; i++) pthread_create(&t[i], NULL, waiter, NULL);
    for (;;) {
        pthread_mutex_lock(&mu);
        int w = waiting;
        pthread_mutex_unlock(&mu);
        if (w == N) break;
        usleep(100);
    }
    sc_ready();
    sc_wait_go();
    pthread_mutex_lock(&mu);
    go_flag = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    for (int i = 0; i < N; i++) pthread_join(t[i], NULL);
    sc_check(woke == N, "every waiter woke", "%d of %d", woke, N);
    return sc_done();
}
