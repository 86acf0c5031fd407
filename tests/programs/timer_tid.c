/* Self-checking: POSIX timers that signal one thread (SIGEV_THREAD_ID) come
 * back with their ids, intervals, signals and values, and still signal that
 * very thread.   timer_tid OUT READY GO
 *   a  SIGEV_THREAD_ID -> thread T1, SIGRTMIN+2 every 10 ms, value 0x1111
 *   b  SIGEV_THREAD_ID -> thread T2, SIGRTMIN+3 every 15 ms, value 0x2222
 *   c  SIGEV_SIGNAL (the process), SIGRTMIN+4 every 20 ms, value 0x3333
 * The handler records the thread it ran in (gettid), si_timerid and si_value. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>

#include "selfcheck.h"

struct seen { volatile sig_atomic_t count; volatile int tid, timerid; volatile long value; volatile int wrong_tid; };
static struct seen got[65];
static volatile int tids[2];

static void on_timer(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    int tid = (int)syscall(SYS_gettid);
    if (got[sig].count && got[sig].tid != tid)
        got[sig].wrong_tid = tid;
    got[sig].tid = tid;
    got[sig].timerid = si->si_timerid;
    got[sig].value = (long)si->si_value.sival_ptr;
    got[sig].count++;
}

static void *idle(void *arg)
{
    tids[(long)arg] = (int)syscall(SYS_gettid);
    for (;;)
        pause();
    return NULL;
}

static timer_t make(int notify, int tid, int sig, long value, long every_ns)
{
    struct sigevent sev = { .sigev_notify = notify, .sigev_signo = sig };
    sev.sigev_value.sival_ptr = (void *)value;
    sev._sigev_un._tid = tid;
    timer_t t;
    if (timer_create(CLOCK_MONOTONIC, &sev, &t) != 0) {
        perror("timer_create");
        exit(3);
    }
    struct itimerspec its = { { 0, every_ns }, { 0, every_ns } };
    timer_settime(t, 0, &its, NULL);
    return t;
}

static void check_timer(const char *what, timer_t t, int sig, int tid, long value, long every_ns)
{
    int before = got[sig].count;
    for (int i = 0; i < 5000 && got[sig].count < before + 3; i++)
        usleep(1000);
    struct itimerspec its;
    int ok_spec = timer_gettime(t, &its) == 0 && its.it_interval.tv_sec == 0 && its.it_interval.tv_nsec == every_ns;
    sc_check(got[sig].count >= before + 3 && (!tid || (got[sig].tid == tid && !got[sig].wrong_tid)) &&
             got[sig].timerid == (int)(long)t && got[sig].value == value && ok_spec, what,
             "fired %d times, in thread %d (want %d; also in %d), si_timerid %d (want %d), value %#lx, interval ok %d",
             got[sig].count - before, got[sig].tid, tid, got[sig].wrong_tid, got[sig].timerid, (int)(long)t,
             got[sig].value, ok_spec);
}

int main(int argc, char **argv)
{
    sc_init(argc, argv);
    struct sigaction sa = { .sa_sigaction = on_timer, .sa_flags = SA_SIGINFO | SA_RESTART };
    for (int s = SIGRTMIN + 2; s <= SIGRTMIN + 4; s++)
        sigaction(s, &sa, NULL);
    pthread_t t1, t2;
    pthread_create(&t1, NULL, idle, (void *)0L);
    pthread_create(&t2, NULL, idle, (void *)1L);
    while (!tids[0] || !tids[1])
        usleep(1000);
    timer_t a = make(SIGEV_THREAD_ID, tids[0], SIGRTMIN + 2, 0x1111, 10000000);
    timer_t b = make(SIGEV_THREAD_ID, tids[1], SIGRTMIN + 3, 0x2222, 15000000);
    timer_t c = make(SIGEV_SIGNAL, 0, SIGRTMIN + 4, 0x3333, 20000000);
    sc_ready();
    sc_wait_go();
    for (int s = SIGRTMIN + 2; s <= SIGRTMIN + 3; s++)
        got[s].wrong_tid = 0;              /* only what fires from now on counts */
    check_timer("SIGEV_THREAD_ID timer at thread 1", a, SIGRTMIN + 2, tids[0], 0x1111, 10000000);
    check_timer("SIGEV_THREAD_ID timer at thread 2", b, SIGRTMIN + 3, tids[1], 0x2222, 15000000);
    check_timer("SIGEV_SIGNAL timer", c, SIGRTMIN + 4, 0, 0x3333, 20000000);
    return sc_done();
}
