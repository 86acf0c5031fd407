/* Modes set with prctl that /proc does not show: a thread with PR_SET_TSC(PR_TSC_SIGSEGV) (rdtsc
 * faults in it, not in the main thread), and memory-deny-write-execute for the process
 * (PR_SET_MDWE(PR_MDWE_REFUSE_EXEC_GAIN): a writable and executable mapping is refused).  After
 * restore each thread checks PR_GET_TSC, and the process PR_GET_MDWE and that W+X is still
 * refused.   hardening OUT READY GO */
#include "selfcheck.h"
#include <errno.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#ifndef PR_SET_MDWE
#define PR_SET_MDWE 65
#define PR_GET_MDWE 66
#define PR_MDWE_REFUSE_EXEC_GAIN 1
#endif

static int tsc_before[2], tsc_after[2];
static volatile int thread_set, go;

static int get_tsc(void)
{
    int v = -1;
    prctl(PR_GET_TSC, &v, 0, 0, 0);
    return v;
}

static void *thread_main(void *arg)
{
    (void)arg;
    if (prctl(PR_SET_TSC, PR_TSC_SIGSEGV, 0, 0, 0))
        exit(10);
    tsc_before[1] = get_tsc();
    thread_set = 1;
    while (!go)
        usleep(1000);
    tsc_after[1] = get_tsc();
    return NULL;
}

int main(int argc, char **argv)
{
    pthread_t t;
    sc_init(argc, argv);
    if (pthread_create(&t, NULL, thread_main, NULL))
        return 3;
    while (!thread_set)
        usleep(1000);
    if (prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0))
        return 11;
    int mdwe_before = prctl(PR_GET_MDWE, 0, 0, 0, 0);
    tsc_before[0] = get_tsc();
    sc_ready();
    sc_wait_go();
    tsc_after[0] = get_tsc();
    go = 1;
    pthread_join(t, NULL);
    int mdwe_after = prctl(PR_GET_MDWE, 0, 0, 0, 0);
    sc_check(mdwe_before == PR_MDWE_REFUSE_EXEC_GAIN && mdwe_after == mdwe_before, "PR_GET_MDWE", "was %d, now %d",
             mdwe_before, mdwe_after);
    void *wx = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    sc_check(wx == MAP_FAILED && errno == EACCES, "write-execute refused", "mmap(PROT_WRITE|PROT_EXEC) gave %p", wx);
    sc_check(tsc_before[0] == PR_TSC_ENABLE && tsc_after[0] == PR_TSC_ENABLE, "main thread PR_GET_TSC",
             "was %d, now %d", tsc_before[0], tsc_after[0]);
    sc_check(tsc_before[1] == PR_TSC_SIGSEGV && tsc_after[1] == PR_TSC_SIGSEGV, "second thread PR_GET_TSC",
             "was %d, now %d", tsc_before[1], tsc_after[1]);
    return sc_done();
}
