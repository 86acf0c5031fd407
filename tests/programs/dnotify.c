/* Self-checking: a directory watched with dnotify (fcntl F_NOTIFY, DN_CREATE | DN_MULTISHOT,
 * F_SETSIG SIGRTMIN+4), which incr cannot read back: the checkpoint must refuse it and leave
 * the job as it was, its notifications still coming.   dnotify OUT READY GO DIR */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>

#include "selfcheck.h"

static volatile sig_atomic_t count, last_fd = -1;

static void on_signal(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    last_fd = si->si_fd;
    count++;
}

static int created(const char *dir, const char *name, int before)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT, 0644);
    if (fd < 0)
        return 0;
    close(fd);
    for (int i = 0; i < 5000 && count == before; i++)
        usleep(1000);
    return count > before;
}

int main(int argc, char **argv)
{
    sc_init(argc, argv);
    if (argc < 5)
        return 2;
    struct sigaction sa = { .sa_sigaction = on_signal, .sa_flags = SA_SIGINFO | SA_RESTART };
    sigaction(SIGRTMIN + 4, &sa, NULL);
    int dir = open(argv[4], O_RDONLY | O_DIRECTORY);
    if (dir < 0 || fcntl(dir, F_SETSIG, SIGRTMIN + 4) != 0 || fcntl(dir, F_NOTIFY, DN_CREATE | DN_MULTISHOT) != 0)
        return 3;
    sc_ready();
    sc_wait_go();
    sc_check(count == 0, "no notification meanwhile", "%d", (int)count);
    sc_check(created(argv[4], "one", 0) && last_fd == dir, "a creation is notified", "count %d si_fd %d (want %d)",
             (int)count, (int)last_fd, dir);
    sc_check(created(argv[4], "two", 1), "and the next one (DN_MULTISHOT)", "count %d", (int)count);
    return sc_done();
}
