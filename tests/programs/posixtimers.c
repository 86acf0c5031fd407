/* Self-checking: POSIX timers come back with their ids, clocks, signals and
 * time left.   posixtimers OUT READY GO
 * Timer ids 0 (deleted), 1 (SIGEV_SIGNAL SIGUSR2 every 20 ms, value 0xabcd),
 * 2 (SIGEV_NONE, armed for an hour).  After GO: the periodic one must still
 * fire with its value, the silent one must still have about an hour left. */
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t fired, good_value;
static void on_usr2(int s, siginfo_t *si, void *u)
{
    (void)s; (void)u;
    fired++;
    good_value = si->si_value.sival_ptr == (void *)0xabcd;
}

int main(int argc, char **argv)
{
    struct sigaction sa = { .sa_sigaction = on_usr2, .sa_flags = SA_SIGINFO | SA_RESTART };
    sigaction(SIGUSR2, &sa, NULL);
    timer_t t0, t1, t2;
    struct sigevent sev = { .sigev_notify = SIGEV_NONE };
    timer_create(CLOCK_MONOTONIC, &sev, &t0);
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = SIGUSR2;
    sev.sigev_value.sival_ptr = (void *)0xabcd;
    timer_create(CLOCK_MONOTONIC, &sev, &t1);
    sev.sigev_notify = SIGEV_NONE;
    timer_create(CLOCK_REALTIME, &sev, &t2);
    timer_delete(t0);
    struct itimerspec every = { { 0, 20000000 }, { 0, 20000000 } }, hour = { { 0, 0 }, { 3600, 0 } };
    timer_settime(t1, 0, &every, NULL);
    timer_settime(t2, 0, &hour, NULL);
    FILE *r = fopen(argv[2], "w");
    fprintf(r, "%d\n", getpid());
    fclose(r);
    while (access(argv[3], F_OK) != 0) usleep(1000);
    int before = fired;
    for (int i = 0; i < 2000 && fired < before + 3; i++) usleep(1000);
    struct itimerspec left;
    int ok_t2 = timer_gettime(t2, &left) == 0 && left.it_value.tv_sec > 3000;
    FILE *out = fopen(argv[1], "w");
    fprintf(out, "ids %ld %ld fired %d value %d hour %d\n", (long)t1, (long)t2, fired >= before + 3,
            (int)good_value, ok_t2);
    fclose(out);
    return 0;
}
