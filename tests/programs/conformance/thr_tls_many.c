/* Sixteen threads, each with its own __thread data, TID and stack data, waiting for GO by
 * polling: all of it comes back, and each thread is joined with its return value. */
#include "cf.h"
#include <pthread.h>

#define N 16
static __thread uint64_t tls_value;
static __thread char tls_text[32];
static _Atomic int ready, leave;
static pid_t tids[N];

static void *worker(void *arg)
{
    long i = (long)arg;
    tls_value = 0xabc000 + (uint64_t)i;
    snprintf(tls_text, sizeof tls_text, "thread %ld", i);
    volatile char stack_data[2000];
    memset((char *)stack_data, (int)i, sizeof stack_data);
    tids[i] = cf_gettid();
    ready++;
    while (!leave) usleep(1000);          /* after the main thread looked at us */
    int ok = tls_value == 0xabc000 + (uint64_t)i && tids[i] == cf_gettid();
    char want[32];
    snprintf(want, sizeof want, "thread %ld", i);
    ok &= strcmp(tls_text, want) == 0;
    for (size_t k = 0; k < sizeof stack_data; k++) ok &= stack_data[k] == (char)i;
    return (void *)(long)(ok ? 100 + i : -1);
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    pthread_t t[N];
    for (long i = 0; i < N; i++) pthread_create(&t[i], NULL, worker, (void *)i);
    while (ready < N) usleep(100);
    sc_ready();
    sc_wait_go();
    sc_check(atoi(cf_field("/proc/self/status", "Threads:")) == N + 1, "thread count", "%s",
             cf_field("/proc/self/status", "Threads:"));
    int bad = 0;
    for (long i = 0; i < N; i++) {
        char path[64];
        snprintf(path, sizeof path, "/proc/self/task/%d", tids[i]);
        bad += access(path, F_OK) != 0;
    }
    sc_check(bad == 0, "same TIDs in /proc/self/task", "%d missing", bad);
    leave = 1;
    for (long i = 0; i < N; i++) {
        void *ret;
        pthread_join(t[i], &ret);
        char what[32];
        snprintf(what, sizeof what, "thread %ld TLS, TID, stack", i);
        sc_check(ret == (void *)(100 + i), what, "returned %ld", (long)ret);
    }
    return sc_done();
}
