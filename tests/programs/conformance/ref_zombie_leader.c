/* Must be refused: the thread-group leader exited (pthread_exit) while another thread runs. */
#include "cf.h"
#include <pthread.h>

static void *worker(void *arg)
{
    (void)arg;
    sc_ready();
    sc_wait_go();
    sc_check(1, "the other thread still runs", "%s", "");
    exit(sc_done());
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    pthread_exit(NULL);
}
