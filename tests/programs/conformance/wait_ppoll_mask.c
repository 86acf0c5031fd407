/* In ppoll(2) with a temporary signal mask (SIGUSR1 unblocked only while waiting): the signal
 * interrupts it, and afterwards the original mask (SIGUSR1 blocked) is back. */
#include "cf.h"
#include <poll.h>

static volatile sig_atomic_t got;
static void on_sig(int sig) { (void)sig; got++; }

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    signal(SIGUSR1, on_sig);
    sigset_t block, wait_mask, now;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigprocmask(SIG_BLOCK, &block, NULL);
    sigemptyset(&wait_mask);
    int p[2];
    if (pipe(p)) return 3;
    pid_t parent = getpid();
    pid_t child = fork();
    if (child == 0) {
        sc_wait_go();
        _exit(kill(parent, SIGUSR1) == 0 ? 0 : 1);
    }
    sc_ready();
    struct pollfd fd = {.fd = p[0], .events = POLLIN};
    int r = ppoll(&fd, 1, NULL, &wait_mask);
    sc_check(r == -1 && errno == EINTR && got == 1, "ppoll interrupted by the handler", "r=%d errno=%d got=%d",
             r, errno, got);
    sigprocmask(SIG_BLOCK, NULL, &now);
    sc_check(sigismember(&now, SIGUSR1) == 1, "SIGUSR1 blocked again after ppoll", "mask lost it");
    int st;
    waitpid(child, &st, 0);
    sc_check(WIFEXITED(st) && !WEXITSTATUS(st), "sender exits 0", "%#x", st);
    return sc_done();
}
