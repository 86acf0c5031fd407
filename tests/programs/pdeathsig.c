/* Parent-death signals (PR_SET_PDEATHSIG), which the kernel keeps per thread.
 *
 *   me (SIGUSR1) --fork--> P --fork--> C (SIGUSR2; its second thread: SIGRTMIN+2)
 *
 * After restore: me still has SIGUSR1 and was not signalled when the restoring
 * `incr restore --detach` exited; each thread of C reports its own setting; then
 * me kills P and C reports the signals that P's death sent it.
 *
 *   pdeathsig OUT READY GO                 the above
 *   pdeathsig OUT READY GO thread-parent   a second thread of me forks C (which sets
 *                                          SIGUSR2): incr must refuse that job */
#include "selfcheck.h"
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#define THREAD_SIG (SIGRTMIN + 2)

static volatile sig_atomic_t got_usr1, got_usr2, got_thread_sig;
static int down[2], down_t[2], up[2];   /* me -> C's main thread, me -> its second thread, C -> me */

static void on_signal(int sig)
{
    if (sig == SIGUSR1) got_usr1++;
    else if (sig == SIGUSR2) got_usr2 = 1;
    else if (sig == THREAD_SIG) got_thread_sig = 1;
}

static void catch(int sig)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;        /* the signals come while the reports are read */
    if (sigaction(sig, &sa, NULL)) _exit(10);
}

static int own_pdeathsig(void)
{
    int sig = -1;
    if (prctl(PR_GET_PDEATHSIG, &sig)) return -errno;
    return sig;
}

struct report { int32_t tag, value; };   /* tag 1: C's main thread, 2: its second thread, 3: signals got */

static void send_report(int tag, int value)
{
    struct report r = { tag, value };
    if (write(up[1], &r, sizeof r) != sizeof r) _exit(11);
}

static void wait_byte(int fd)
{
    char b;
    if (read(fd, &b, 1) != 1) _exit(12);
}

static void *second_thread(void *ready)
{
    if (prctl(PR_SET_PDEATHSIG, THREAD_SIG)) _exit(13);
    if (write(*(int *)ready, "t", 1) != 1) _exit(14);
    wait_byte(down_t[0]);
    send_report(2, own_pdeathsig());
    for (;;)
        pause();                     /* alive when P dies: its setting counts only while it lives */
    return NULL;
}

static void child_c(void)
{
    catch(SIGUSR2);
    catch(THREAD_SIG);
    if (prctl(PR_SET_PDEATHSIG, SIGUSR2)) _exit(15);
    int ready[2];
    if (pipe(ready)) _exit(16);
    pthread_t t;
    if (pthread_create(&t, NULL, second_thread, &ready[1])) _exit(17);
    char b;
    if (read(ready[0], &b, 1) != 1) _exit(18);
    send_report(0, getpid());        /* set up: me may say ready */
    wait_byte(down[0]);
    send_report(1, own_pdeathsig());
    wait_byte(down[0]);              /* P is dead by now: its signals are pending or handled */
    for (int i = 0; i < 5000 && !(got_usr2 && got_thread_sig); i++)
        usleep(1000);
    send_report(3, (got_usr2 ? 1 : 0) | (got_thread_sig ? 2 : 0));
    _exit(0);
}

static struct report read_report(void)
{
    struct report r = { -1, 0 };
    if (read(up[0], &r, sizeof r) != sizeof r) r.tag = -1;
    return r;
}

static void *forking_thread(void *arg)
{
    (void)arg;
    pid_t c = fork();
    if (c == 0)
        child_c();
    for (;;)
        pause();                     /* its child's parent-death signal comes when it ends */
    return NULL;
}

static int thread_parent(void)
{
    if (pipe(down) || pipe(down_t) || pipe(up)) return 20;
    pthread_t t;
    if (pthread_create(&t, NULL, forking_thread, NULL)) return 21;
    if (read_report().tag != 0) return 22;
    sc_ready();
    for (;;)
        pause();
}

int main(int argc, char **argv)
{
    sc_init(argc, argv);
    if (argc > 4 && strcmp(argv[4], "thread-parent") == 0)
        return thread_parent();
    catch(SIGUSR1);
    if (prctl(PR_SET_PDEATHSIG, SIGUSR1)) return 20;
    if (pipe(down) || pipe(down_t) || pipe(up)) return 21;
    pid_t p = fork();
    if (p == 0) {
        pid_t c = fork();
        if (c == 0)
            child_c();
        close(down[1]), close(down_t[1]), close(up[0]), close(up[1]);
        for (;;)
            pause();
    }
    close(down[0]), close(down_t[0]), close(up[1]);     /* a dead C reads as end of file */
    struct report hello = read_report();
    if (hello.tag != 0) return 22;
    sc_ready();
    sc_wait_go();

    sc_check(own_pdeathsig() == SIGUSR1, "own parent-death signal", "PR_GET_PDEATHSIG gives %d, not SIGUSR1 (%d)",
             own_pdeathsig(), SIGUSR1);
    sc_check(got_usr1 == 0, "not signalled by the restorer's exit", "SIGUSR1 arrived %d times", (int)got_usr1);

    if (write(down[1], "a", 1) != 1 || write(down_t[1], "b", 1) != 1) return 23;   /* C's threads report */
    int main_sig = -1, thread_sig = -1;
    for (int i = 0; i < 2; i++) {
        struct report r = read_report();
        if (r.tag == 1) main_sig = r.value;
        else if (r.tag == 2) thread_sig = r.value;
    }
    sc_check(main_sig == SIGUSR2, "child's main thread", "PR_GET_PDEATHSIG gives %d, not SIGUSR2 (%d)", main_sig,
             SIGUSR2);
    sc_check(thread_sig == THREAD_SIG, "child's second thread", "PR_GET_PDEATHSIG gives %d, not SIGRTMIN+2 (%d)",
             thread_sig, THREAD_SIG);

    kill(p, SIGKILL);
    int st;
    sc_check(waitpid(p, &st, 0) == p, "parent of the child reaped", "waitpid: %s", strerror(errno));
    if (write(down[1], "c", 1) != 1) return 24;
    struct report got = read_report();
    sc_check(got.tag == 3 && (got.value & 1), "SIGUSR2 on its parent's death", "report %d/%d", got.tag, got.value);
    sc_check(got.tag == 3 && (got.value & 2), "SIGRTMIN+2 on its parent's death", "report %d/%d", got.tag,
             got.value);
    return sc_done();
}
