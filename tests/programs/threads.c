/* A multi-threaded job: 4 workers with thread-local state, a barrier, a mutex
 * and a condition variable; each worker has its own name and signal mask.
 *   threads OUT GATE1 GATE2 ITERATIONS
 * Gates as in job.c (at ITERATIONS/2 and +5); the workers wait in the barrier
 * meanwhile (FUTEX_WAIT).  Ends by joining every worker (needs clear_child_tid
 * right after a restore).  Every thread checks that its TID is the one it
 * started with (a line in OUT says otherwise).  Deterministic output. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "gated.h"

#define NW 4
#define SLICE (1u << 20)

static pthread_barrier_t start_bar, done_bar;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int ready_count;
static uint64_t total;
static unsigned char *data;
static int iterations;
static __thread uint64_t mine;           /* thread-local */
static double fp[NW];
static pid_t first_tid[NW + 1];
static int tid_changed;

static void remember_tid(int slot)
{
    first_tid[slot] = (pid_t)syscall(SYS_gettid);
}

static void check_tid(int slot)
{
    if ((pid_t)syscall(SYS_gettid) != first_tid[slot])
        __atomic_store_n(&tid_changed, 1, __ATOMIC_SEQ_CST);
}

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    remember_tid(id);
    char name[16];
    snprintf(name, sizeof name, "worker-%d", id);
    pthread_setname_np(pthread_self(), name);
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1 + (id % 2));
    pthread_sigmask(SIG_BLOCK, &m, NULL);
    pthread_mutex_lock(&lock);
    ready_count++;
    pthread_cond_signal(&cond);
    pthread_mutex_unlock(&lock);
    double x = 1.0 + id;
    for (int it = 0; it < iterations; it++) {
        pthread_barrier_wait(&start_bar);
        unsigned char *s = data + (size_t)id * SLICE;
        for (size_t i = (size_t)(it * 61) % 4096; i < SLICE; i += 4096) s[i] = (unsigned char)(s[i] * 31 + it + id);
        uint64_t h = 1469598103934665603ull;
        for (size_t i = 0; i < SLICE; i += 64) h = (h ^ s[i]) * 1099511628211ull;
        mine += h % 1000003;
        x = x * 1.0000001 + 1e-3 / (it + 1);      /* FP state in registers across the barrier */
        pthread_mutex_lock(&lock);
        total += mine ^ (uint64_t)id;
        fp[id] = x;
        pthread_mutex_unlock(&lock);
        pthread_barrier_wait(&done_bar);
    }
    check_tid(id);
    return (void *)(intptr_t)(mine % 1000);
}

int main(int argc, char **argv)
{
    if (argc != 5) { fprintf(stderr, "usage: threads OUT GATE1 GATE2 ITERATIONS\n"); return 2; }
    iterations = atoi(argv[4]);
    remember_tid(NW);
    FILE *out = fopen(argv[1], "w");
    data = calloc(NW, SLICE);
    pthread_barrier_init(&start_bar, NULL, NW + 1);
    pthread_barrier_init(&done_bar, NULL, NW + 1);
    pthread_t t[NW];
    for (int i = 0; i < NW; i++) pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i);
    pthread_mutex_lock(&lock);
    while (ready_count < NW) pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    for (int it = 0; it < iterations; it++) {
        if (it == iterations / 2) gate(argv[2]);
        if (it == iterations / 2 + 5) gate(argv[3]);
        pthread_barrier_wait(&start_bar);
        pthread_barrier_wait(&done_bar);
        pthread_mutex_lock(&lock);
        fprintf(out, "it %d total %016llx fp %.9f %.9f %.9f %.9f\n", it, (unsigned long long)total, fp[0], fp[1],
                fp[2], fp[3]);
        pthread_mutex_unlock(&lock);
        fflush(out);
    }
    long sum = 0;
    for (int i = 0; i < NW; i++) {
        void *r;
        pthread_join(t[i], &r);
        sum += (long)(intptr_t)r;
    }
    check_tid(NW);
    if (tid_changed)
        fprintf(out, "a thread's TID changed\n");
    fprintf(out, "done joined %d threads, %ld\n", NW, sum);
    fclose(out);
    return 0;
}
