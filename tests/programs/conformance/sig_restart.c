/* SA_RESTART: a read(2) blocked at the checkpoint is interrupted by a handled SIGUSR1 after GO and
 * restarted (returns the data sent later); without SA_RESTART (SIGUSR2) the next read fails EINTR. */
#include "cf.h"

static volatile sig_atomic_t usr1, usr2;
static int step[2];
static void on_usr1(int sig)
{
    (void)sig;
    usr1++;
    if (write(step[1], "h", 1) != 1) _exit(7);           /* tells the child the handler ran */
}
static void on_usr2(int sig) { (void)sig; usr2++; }

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    struct sigaction sa = {.sa_handler = on_usr1, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = on_usr2;
    sa.sa_flags = 0;
    sigaction(SIGUSR2, &sa, NULL);
    int data[2];
    if (pipe(data) || pipe(step)) return 3;
    pid_t parent = getpid();
    pid_t child = fork();
    if (child == 0) {
        char c;
        sc_wait_go();
        kill(parent, SIGUSR1);
        if (read(step[0], &c, 1) != 1) _exit(1);
        if (write(data[1], "A", 1) != 1) _exit(1);
        if (read(step[0], &c, 1) != 1) _exit(1);          /* the parent read 'A' */
        char path[64], text[256];
        snprintf(path, sizeof path, "/proc/%d/syscall", parent);
        do {                                              /* until it blocks in read(2) again */
            usleep(1000);
            cf_slurp(path, text, sizeof text);
        } while (strncmp(text, "0 ", 2) != 0);
        kill(parent, SIGUSR2);
        _exit(0);
    }
    sc_ready();
    char c = 0;
    ssize_t n = read(data[0], &c, 1);
    sc_check(n == 1 && c == 'A' && usr1 == 1, "read restarted after the SA_RESTART handler",
             "n=%zd c=%c usr1=%d errno=%d", n, c, usr1, errno);
    if (write(step[1], "r", 1) != 1) return 3;
    n = read(data[0], &c, 1);
    sc_check(n == -1 && errno == EINTR && usr2 == 1, "read fails EINTR after the plain handler", "n=%zd errno=%d",
             n, errno);
    int st;
    waitpid(child, &st, 0);
    sc_check(WIFEXITED(st) && !WEXITSTATUS(st), "child exits 0", "%#x", st);
    return sc_done();
}
