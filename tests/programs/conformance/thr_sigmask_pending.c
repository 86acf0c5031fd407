/* Per-thread signal state: each thread blocks its own set; thread 1 has SIGUSR1 and thread 2
 * SIGUSR2 pending to it alone (tgkill / rt_tgsigqueueinfo with a payload), and the process has
 * SIGRTMIN+3 queued three times with payloads.  After restore each thread's mask and pending set,
 * and the payloads in order. */
#include "cf.h"
#include <pthread.h>

static _Atomic int ready, checks_done;
static pid_t tids[3];
static sigset_t masks[3];
static int results[3];

static int equal(const sigset_t *a, const sigset_t *b)
{
    for (int s = 1; s < NSIG; s++) if (sigismember(a, s) != sigismember(b, s)) return 0;
    return 1;
}

static void *worker(void *arg)
{
    long i = (long)arg;
    pthread_sigmask(SIG_SETMASK, &masks[i], NULL);
    tids[i] = cf_gettid();
    ready++;
    sc_wait_go();
    sigset_t now, pend;
    pthread_sigmask(SIG_BLOCK, NULL, &now);
    int ok = equal(&now, &masks[i]);
    sigpending(&pend);
    int own = i == 1 ? SIGUSR1 : i == 2 ? SIGUSR2 : 0;
    if (own) {
        ok &= sigismember(&pend, own);
        sigset_t one;
        sigemptyset(&one);
        sigaddset(&one, own);
        siginfo_t si;
        struct timespec zero = {0, 0};
        ok &= sigtimedwait(&one, &si, &zero) == own && si.si_code == SI_QUEUE && si.si_value.sival_int == 40 + i;
        ok &= sigtimedwait(&one, &si, &zero) < 0;
    }
    ok &= sigismember(&pend, SIGRTMIN + 3);
    results[i] = ok ? 1 : -1;
    checks_done++;
    return NULL;
}

static void queue_to(pid_t tid, int sig, int value)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = sig;
    si.si_code = SI_QUEUE;
    si.si_pid = getpid();
    si.si_uid = getuid();
    si.si_value.sival_int = value;
    syscall(SYS_rt_tgsigqueueinfo, getpid(), tid, sig, &si);
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    sigset_t all;
    sigemptyset(&all);
    sigaddset(&all, SIGRTMIN + 3);
    sigprocmask(SIG_BLOCK, &all, NULL);
    for (int i = 0; i < 3; i++) {
        sigemptyset(&masks[i]);
        sigaddset(&masks[i], SIGRTMIN + 3);
        sigaddset(&masks[i], SIGUSR1);
        sigaddset(&masks[i], SIGUSR2);
        sigaddset(&masks[i], SIGINT + i);
    }
    pthread_t t[3];
    for (long i = 1; i < 3; i++) pthread_create(&t[i], NULL, worker, (void *)i);
    while (ready < 2) usleep(100);
    queue_to(tids[1], SIGUSR1, 41);
    queue_to(tids[2], SIGUSR2, 42);
    for (int v = 1; v <= 3; v++) {
        union sigval sv = {.sival_int = 300 + v};
        sigqueue(getpid(), SIGRTMIN + 3, sv);
    }
    sigset_t main_mask;
    pthread_sigmask(SIG_BLOCK, NULL, &main_mask);
    sc_ready();
    sc_wait_go();
    while (checks_done < 2) usleep(100);
    for (int i = 1; i < 3; i++) {
        char what[64];
        snprintf(what, sizeof what, "thread %d mask and own pending signal", i);
        sc_check(results[i] == 1, what, "%d", results[i]);
        pthread_join(t[i], NULL);
    }
    sigset_t now;
    pthread_sigmask(SIG_BLOCK, NULL, &now);
    sc_check(equal(&now, &main_mask), "main thread's mask", "%s", "");
    siginfo_t si;
    struct timespec zero = {0, 0};
    for (int v = 1; v <= 3; v++) {
        char what[48];
        snprintf(what, sizeof what, "SIGRTMIN+3 #%d payload", v);
        int r = sigtimedwait(&all, &si, &zero);
        sc_check(r == SIGRTMIN + 3 && si.si_value.sival_int == 300 + v && si.si_pid == getpid(), what,
                 "r=%d value %d pid %d", r, si.si_value.sival_int, si.si_pid);
    }
    sc_check(sigtimedwait(&all, &si, &zero) < 0 && errno == EAGAIN, "no fourth SIGRTMIN+3", "%s", "");
    return sc_done();
}
