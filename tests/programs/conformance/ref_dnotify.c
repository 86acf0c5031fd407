/* dnotify (F_NOTIFY, DN_CREATE|DN_MULTISHOT, signalled with SIGRTMIN+2) on a directory: a file
 * created there after restore still signals us, with the descriptor in si_fd. */
#include "cf.h"

static volatile sig_atomic_t got, fd_seen;
static void on(int sig, siginfo_t *si, void *uc) { (void)sig; (void)uc; got++; fd_seen = si->si_fd; }

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    mkdir(cf_path("watched"), 0700);
    int d = open(cf_path("watched"), O_RDONLY | O_DIRECTORY);
    struct sigaction sa = {.sa_sigaction = on, .sa_flags = SA_SIGINFO};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGRTMIN + 2, &sa, NULL);
    fcntl(d, F_SETSIG, SIGRTMIN + 2);
    if (fcntl(d, F_NOTIFY, DN_CREATE | DN_MULTISHOT)) return 3;
    sc_ready();
    sc_wait_go();
    close(open(cf_path("watched/new"), O_CREAT | O_WRONLY, 0600));
    for (int i = 0; i < 5000 && !got; i++) usleep(1000);
    sc_check(got >= 1 && fd_seen == d, "notified of the creation", "got %d si_fd %d (want %d)", got, fd_seen, d);
    return sc_done();
}
