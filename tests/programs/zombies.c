/* A parent with zombie children that exited in every way: exit codes 0, 3 and 255, and
 * killed by SIGTERM, SIGUSR1, SIGKILL, SIGQUIT without a core, and SIGSEGV (with a core
 * when CORE_DIR is given: that child dumps it there, small: coredump_filter 0).
 *   zombies OUT READY GO [CORE_DIR]
 * Before READY the parent peeks at each child's status with waitid(WNOWAIT), leaving it a
 * zombie, and counts the SIGCHLDs its handler saw.  After GO it reaps each child with
 * waitpid and checks that the status is the one peeked at (WIFEXITED, WEXITSTATUS,
 * WIFSIGNALED, WTERMSIG, WCOREDUMP), and that no SIGCHLD came meanwhile. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "selfcheck.h"

enum { NKIDS = 8 };

struct kid {
    const char *what;
    int code;       /* exit code, or ... */
    int sig;        /* ... the signal it dies of */
    int core;       /* dumps a core (only with CORE_DIR) */
};

static const struct kid kids[NKIDS] = {
    { "exit 0", 0, 0, 0 }, { "exit 3", 3, 0, 0 }, { "exit 255", 255, 0, 0 },
    { "SIGTERM", 0, SIGTERM, 0 }, { "SIGUSR1", 0, SIGUSR1, 0 }, { "SIGKILL", 0, SIGKILL, 0 },
    { "SIGQUIT without a core", 0, SIGQUIT, 0 }, { "SIGSEGV", 0, SIGSEGV, 1 },
};

static volatile sig_atomic_t sigchlds;
static void on_chld(int sig) { (void)sig; sigchlds++; }

static void die(const struct kid *k, const char *core_dir)
{
    if (!k->sig)
        _exit(k->code);
    /* RLIMIT_CORE 1: no core, even where core_pattern is a pipe (0 would not stop that). */
    struct rlimit lim = { 1, RLIM_INFINITY };
    if (k->core && core_dir && chdir(core_dir) == 0) {
        int fd = open("/proc/self/coredump_filter", O_WRONLY);
        if (fd >= 0 && write(fd, "0", 1) == 1)
            lim.rlim_cur = RLIM_INFINITY;
        if (fd >= 0)
            close(fd);
    }
    lim.rlim_max = RLIM_INFINITY;
    if (setrlimit(RLIMIT_CORE, &lim) != 0) {
        lim.rlim_max = lim.rlim_cur = 1;
        setrlimit(RLIMIT_CORE, &lim);
    }
    signal(k->sig, SIG_DFL);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, k->sig);
    sigprocmask(SIG_UNBLOCK, &one, NULL);
    kill(getpid(), k->sig);
    _exit(99);
}

int main(int argc, char **argv)
{
    sc_init(argc, argv);
    const char *core_dir = argc > 4 ? argv[4] : NULL;
    pid_t pids[NKIDS];
    siginfo_t before[NKIDS];
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_chld;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGCHLD, &sa, NULL);
    for (int i = 0; i < NKIDS; i++) {
        pids[i] = fork();
        if (pids[i] == 0)
            die(&kids[i], core_dir);
        memset(&before[i], 0, sizeof before[i]);
        while (waitid(P_PID, pids[i], &before[i], WEXITED | WNOWAIT) != 0)
            ;
    }
    sig_atomic_t seen = sigchlds;
    sc_ready();
    sc_wait_go();
    sc_check(sigchlds == seen, "no SIGCHLD after the restore", "%d SIGCHLD before, %d now", (int)seen, (int)sigchlds);
    for (int i = 0; i < NKIDS; i++) {
        const struct kid *k = &kids[i];
        int st = 0, expect_core = k->core && core_dir;
        pid_t got = waitpid(pids[i], &st, WNOHANG);
        int was_dumped = before[i].si_code == CLD_DUMPED;
        char what[96];
        snprintf(what, sizeof what, "zombie (%s) reaped with the status it had", k->what);
        if (k->sig)
            sc_check(got == pids[i] && WIFSIGNALED(st) && WTERMSIG(st) == k->sig && !!WCOREDUMP(st) == was_dumped
                     && was_dumped == expect_core && before[i].si_status == k->sig,
                     what, "waitpid %d: status %#x; before: si_code %d si_status %d", (int)got, st,
                     before[i].si_code, before[i].si_status);
        else
            sc_check(got == pids[i] && WIFEXITED(st) && WEXITSTATUS(st) == k->code && before[i].si_code == CLD_EXITED,
                     what, "waitpid %d: status %#x; before: si_code %d si_status %d", (int)got, st,
                     before[i].si_code, before[i].si_status);
    }
    return sc_done();
}
