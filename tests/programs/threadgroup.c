/* Threads, and child processes with threads, that check themselves after a restore.
 *   threadgroup OUT READY GO NTHREADS NCHILDREN
 * The process (and each of its NCHILDREN children) runs NTHREADS workers: the even
 * ones spin in user code on a flag, the odd ones sleep on a condition variable.
 * After GO every worker checks that its TID, its name and its thread-local value
 * are its own, then main joins them all (which needs clear_child_tid), and the
 * parent reaps its children: each child's exit status is its number of failed
 * checks.  A SIGCONT handler counts the SIGCONTs seen: the test says how many to
 * expect (env SC_SIGCONTS, default 0), and nothing may be pending afterwards. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "selfcheck.h"

#define MAXT 64

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int started, go;
static volatile int spin_go;
static __thread uint64_t mine;
static pid_t tids[MAXT];
static int failed[MAXT];
static volatile sig_atomic_t conts;

static void on_cont(int sig) { (void)sig; conts++; }

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    char name[16], now[16] = "";
    tids[id] = (pid_t)syscall(SYS_gettid);
    mine = 0x1000u * (uint64_t)id + 7;
    snprintf(name, sizeof name, "worker-%d", id);
    prctl(PR_SET_NAME, name, 0, 0, 0);
    pthread_mutex_lock(&lock);
    started++;
    pthread_cond_broadcast(&cond);
    if (id % 2) {
        while (!go)
            pthread_cond_wait(&cond, &lock);
        pthread_mutex_unlock(&lock);
    } else {
        pthread_mutex_unlock(&lock);
        while (!spin_go)
            ;
    }
    prctl(PR_GET_NAME, now, 0, 0, 0);
    failed[id] = ((pid_t)syscall(SYS_gettid) != tids[id]) + (mine != 0x1000u * (uint64_t)id + 7)
                 + (strcmp(now, name) != 0);
    return NULL;
}

/* Runs the workers through GO; the number of failed checks (written to OUT when `report`). */
static int run_workers(int n, int report, int ready_fd)
{
    pthread_t th[MAXT];
    int bad = 0;
    for (int i = 0; i < n; i++)
        if (pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i))
            return 100;
    pthread_mutex_lock(&lock);
    while (started < n)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    if (ready_fd >= 0) {
        char one = 1;
        if (write(ready_fd, &one, 1) != 1)
            return 101;
        close(ready_fd);
    } else {
        sc_ready();
    }
    sc_wait_go();
    pthread_mutex_lock(&lock);
    go = 1;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    spin_go = 1;
    for (int i = 0; i < n; i++) {
        int joined = pthread_join(th[i], NULL) == 0;
        bad += !joined + (failed[i] != 0);
        if (report)
            sc_check(joined && !failed[i], "worker joined with its own TID, name and thread-local value",
                     "worker %d: joined %d, failed checks %d", i, joined, failed[i]);
    }
    return bad;
}

int main(int argc, char **argv)
{
    sc_init(argc, argv);
    int n = argc > 4 ? atoi(argv[4]) : 4, nchildren = argc > 5 ? atoi(argv[5]) : 0;
    const char *want_conts = getenv("SC_SIGCONTS");
    pid_t kids[16];
    if (n > MAXT || nchildren > 16)
        return 2;
    signal(SIGCONT, on_cont);
    for (int c = 0; c < nchildren; c++) {
        int p[2];
        char one;
        if (pipe(p))
            return 3;
        kids[c] = fork();
        if (kids[c] == 0) {
            close(p[0]);
            _exit(run_workers(n, 0, p[1]));
        }
        close(p[1]);
        if (read(p[0], &one, 1) != 1)
            return 4;
        close(p[0]);
    }
    run_workers(n, 1, -1);
    for (int c = 0; c < nchildren; c++) {
        int st = 0;
        pid_t got = waitpid(kids[c], &st, 0);
        sc_check(got == kids[c] && WIFEXITED(st) && WEXITSTATUS(st) == 0, "child's workers all passed",
                 "child %d: waitpid %d, status %#x", (int)kids[c], (int)got, st);
    }
    sigset_t pending;
    sigpending(&pending);
    int any = 0;
    for (int s = 1; s < 65; s++)
        any |= sigismember(&pending, s) == 1;
    sc_check(!any, "no signal left pending", "sigpending() is not empty");
    int expect = want_conts ? atoi(want_conts) : 0;
    sc_check(conts == expect, "SIGCONTs seen as expected", "%d SIGCONT, expected %d", (int)conts, expect);
    return sc_done();
}
