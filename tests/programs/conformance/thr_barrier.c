/* Three threads blocked at a pthread barrier of four at the checkpoint; after GO the main thread
 * arrives, all four pass, exactly one gets PTHREAD_BARRIER_SERIAL_THREAD; the barrier is usable again. */
#include "cf.h"
#include <pthread.h>

static pthread_barrier_t bar;
static _Atomic int arrived, serial;

static void *worker(void *arg)
{
    (void)arg;
    arrived++;
    for (int round = 0; round < 2; round++)
        if (pthread_barrier_wait(&bar) == PTHREAD_BARRIER_SERIAL_THREAD) serial++;
    return NULL;
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    pthread_barrier_init(&bar, NULL, 4);
    pthread_t t[3];
    for (int i = 0; i < 3; i++) pthread_create(&t[i], NULL, worker, NULL);
    while (arrived < 3) usleep(100);
    sc_ready();
    sc_wait_go();
    for (int round = 0; round < 2; round++)
        if (pthread_barrier_wait(&bar) == PTHREAD_BARRIER_SERIAL_THREAD) serial++;
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    sc_check(serial == 2, "one serial thread per round", "%d", serial);
    return sc_done();
}
