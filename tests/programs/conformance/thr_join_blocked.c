/* The main thread blocked in pthread_join at the checkpoint (a futex wait on the thread's TID,
 * cleared by the kernel at its exit): the join completes with the thread's value. */
#include "cf.h"
#include <pthread.h>

static void *worker(void *arg)
{
    (void)arg;
    sc_wait_go();
    return (void *)0x5151;
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    sc_ready();
    void *ret = NULL;
    int r = pthread_join(t, &ret);
    sc_check(r == 0 && ret == (void *)0x5151, "join returns the value", "r=%d ret=%p", r, ret);
    sc_check(atoi(cf_field("/proc/self/status", "Threads:")) == 1, "one thread left", "%s",
             cf_field("/proc/self/status", "Threads:"));
    return sc_done();
}
