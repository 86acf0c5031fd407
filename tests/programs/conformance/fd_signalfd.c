/* A signalfd for SIGUSR2 and SIGRTMIN+6 (both blocked), with SIGUSR2 and two SIGRTMIN+6 pending:
 * mask (fdinfo), flags, and the queued signals read through it after restore. */
#include "cf.h"
#include <sys/signalfd.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR2);
    sigaddset(&m, SIGRTMIN + 6);
    sigprocmask(SIG_BLOCK, &m, NULL);
    int fd = signalfd(-1, &m, SFD_NONBLOCK | SFD_CLOEXEC);
    raise(SIGUSR2);
    union sigval v1 = {.sival_int = 61}, v2 = {.sival_int = 62};
    sigqueue(getpid(), SIGRTMIN + 6, v1);
    sigqueue(getpid(), SIGRTMIN + 6, v2);
    char path[64], mask_before[64];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
    snprintf(mask_before, sizeof mask_before, "%s", cf_field(path, "sigmask:"));
    int fl = fcntl(fd, F_GETFL), fdf = fcntl(fd, F_GETFD);
    sc_ready();
    sc_wait_go();
    cf_same(mask_before, cf_field(path, "sigmask:"), "fdinfo sigmask");
    sc_check(fcntl(fd, F_GETFL) == fl && fcntl(fd, F_GETFD) == fdf, "flags", "%#x", fcntl(fd, F_GETFL));
    struct signalfd_siginfo si[4];
    ssize_t n = read(fd, si, sizeof si);
    sc_check(n == 3 * (ssize_t)sizeof si[0], "three queued signals", "read %zd", n);
    if (n == 3 * (ssize_t)sizeof si[0])
        sc_check((int)si[0].ssi_signo == SIGUSR2 && (int)si[1].ssi_signo == SIGRTMIN + 6 && si[1].ssi_int == 61 &&
                 si[2].ssi_int == 62, "in order with payloads", "%u %u %d %d", si[0].ssi_signo, si[1].ssi_signo,
                 si[1].ssi_int, si[2].ssi_int);
    sc_check(read(fd, si, sizeof si) < 0 && errno == EAGAIN, "then empty", "%s", "");
    return sc_done();
}
