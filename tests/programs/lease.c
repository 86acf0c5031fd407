/* Self-checking: leases come back on the descriptions that held them, of the same type,
 * with the same owner, and a conflicting open still breaks them with the same signal.
 *   lease OUT READY GO DIR
 *   rd      read lease (F_RDLCK) on an O_RDONLY description P shares with child C;
 *           another O_RDONLY description of the same file has none; breaks with SIGIO
 *   wr      write lease (F_WRLCK) on an O_WRONLY description, F_SETSIG SIGRTMIN+3
 *   handed  read lease taken by P, which then closed it: C alone holds the description
 * After restore: F_GETLEASE of each descriptor in P and C, F_GETOWN (F_SETLEASE made P the
 * owner), then a fresh process opens rd for writing and wr for reading, O_NONBLOCK: each
 * open must fail with EWOULDBLOCK and P must get the break signal with si_fd set for wr;
 * P gives up both leases and the opens then succeed.
 *   lease OUT READY GO DIR breaking
 * Opens wr for reading itself (O_NONBLOCK) before it is ready: the write lease is being
 * broken when the checkpoint comes, which must refuse it and leave the job as it was. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include "relay.h"

static char dir[3072];
static volatile sig_atomic_t sigio_count, rt_count, rt_fd = -1;

static const char *at(const char *name)
{
    static char paths[4][4096];
    static int next;
    char *p = paths[next++ % 4];
    snprintf(p, 4096, "%s/%s", dir, name);
    return p;
}

static int must(int v, const char *what)
{
    if (v < 0) {
        perror(what);
        exit(3);
    }
    return v;
}

static void on_signal(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    if (sig == SIGIO) {
        sigio_count++;
    } else {
        rt_fd = si->si_fd;
        rt_count++;
    }
}

static const char *lease_name(int t)
{
    return t == F_RDLCK ? "F_RDLCK" : t == F_WRLCK ? "F_WRLCK" : t == F_UNLCK ? "F_UNLCK" : "error";
}

typedef int (*check_fn)(int, const char *, const char *, ...);

static void expect_lease(check_fn check, const char *what, int fd, int want)
{
    int got = fcntl(fd, F_GETLEASE);
    check(got == want, what, "F_GETLEASE %s, want %s", lease_name(got), lease_name(want));
}

/* In a fresh process: open `name` with `flags` | O_NONBLOCK; 0 when the lease refuses it (EWOULDBLOCK). */
static int breaks(const char *name, int flags)
{
    int fd = open(at(name), flags | O_NONBLOCK);
    if (fd >= 0) {
        close(fd);
        return 1;
    }
    return errno == EWOULDBLOCK ? 0 : -errno;
}

static int wait_count(volatile sig_atomic_t *count)
{
    for (int i = 0; i < 5000 && *count == 0; i++)
        usleep(1000);
    return *count;
}

int main(int argc, char **argv)
{
    sc_init(argc, argv);
    if (argc < 5)
        return 2;
    snprintf(dir, sizeof dir, "%s", argv[4]);
    struct sigaction sa = { .sa_sigaction = on_signal, .sa_flags = SA_SIGINFO | SA_RESTART };
    sigaction(SIGIO, &sa, NULL);
    sigaction(SIGRTMIN + 3, &sa, NULL);
    const char *names[] = { "rd", "wr", "handed" };
    for (int i = 0; i < 3; i++)
        close(must(open(at(names[i]), O_WRONLY | O_CREAT | O_TRUNC, 0644), "create"));
    int rd = must(open(at("rd"), O_RDONLY), "rd");
    int rd_free = must(open(at("rd"), O_RDONLY), "rd 2");
    int wr = must(open(at("wr"), O_WRONLY), "wr");
    int handed = must(open(at("handed"), O_RDONLY), "handed");
    must(fcntl(rd, F_SETLEASE, F_RDLCK), "lease rd");
    must(fcntl(wr, F_SETLEASE, F_WRLCK), "lease wr");
    must(fcntl(wr, F_SETSIG, SIGRTMIN + 3), "F_SETSIG");
    must(fcntl(handed, F_SETLEASE, F_RDLCK), "lease handed");
    if (argc > 5 && strcmp(argv[5], "breaking") == 0) {
        int r = breaks("wr", O_RDONLY);
        if (r != 0)
            return 3;
        sc_ready();
        sc_wait_go();
        sc_check(wait_count(&rt_count) == 1, "the break signal came once", "%d times", (int)rt_count);
        return sc_done();
    }
    relay_init();
    int finish[2], checked[2];
    must(pipe(finish), "pipe");
    must(pipe(checked), "pipe");
    pid_t c = must(fork(), "fork");
    if (c == 0) {
        sc_wait_go();
        expect_lease(relay_check, "C: read lease shared with P", rd, F_RDLCK);
        expect_lease(relay_check, "C: the other description has none", rd_free, F_UNLCK);
        expect_lease(relay_check, "C: read lease P took and left to C", handed, F_RDLCK);
        must(write(checked[1], "c", 1), "write");   /* before P breaks and gives up its leases */
        char ch;
        if (read(finish[0], &ch, 1) != 1)       /* its leases stay until P is done */
            _exit(4);
        _exit(0);
    }
    close(handed);
    sc_ready();
    sc_wait_go();

    sc_check(sigio_count == 0 && rt_count == 0, "P: no lease broke meanwhile", "%d SIGIO, %d SIGRTMIN+3",
             (int)sigio_count, (int)rt_count);
    expect_lease(sc_check, "P: read lease", rd, F_RDLCK);
    expect_lease(sc_check, "P: no lease on the other description", rd_free, F_UNLCK);
    expect_lease(sc_check, "P: write lease", wr, F_WRLCK);
    int owner = fcntl(wr, F_GETOWN), owner_rd = fcntl(rd, F_GETOWN), owner_free = fcntl(rd_free, F_GETOWN);
    sc_check(owner == getpid() && owner_rd == getpid(), "P: owns its leased descriptions", "F_GETOWN %d and %d",
             owner, owner_rd);
    sc_check(owner_free == 0, "P: no owner on the description without lease", "F_GETOWN %d", owner_free);
    sc_check(fcntl(wr, F_GETSIG) == SIGRTMIN + 3, "P: F_SETSIG of the write lease", "F_GETSIG %d",
             fcntl(wr, F_GETSIG));

    char ch;
    sc_check(read(checked[0], &ch, 1) == 1, "C checked", "it did not say so");
    pid_t probe = must(fork(), "fork");
    if (probe == 0) {
        int r = breaks("rd", O_WRONLY);
        relay_check(r == 0, "probe: opening rd for writing breaks the read lease", "open gave %d", r);
        r = breaks("wr", O_RDONLY);
        relay_check(r == 0, "probe: opening wr for reading breaks the write lease", "open gave %d", r);
        _exit(0);
    }
    int st;
    waitpid(probe, &st, 0);
    sc_check(wait_count(&sigio_count) > 0, "P: SIGIO for the read lease's break", "none came");
    sc_check(wait_count(&rt_count) > 0 && rt_fd == wr, "P: SIGRTMIN+3 with si_fd for the write lease's break",
             "count %d, si_fd %d (want %d)", (int)rt_count, (int)rt_fd, wr);
    must(fcntl(rd, F_SETLEASE, F_UNLCK), "unlease rd");
    must(fcntl(wr, F_SETLEASE, F_UNLCK), "unlease wr");
    probe = must(fork(), "fork");
    if (probe == 0) {
        int r = breaks("wr", O_RDONLY);
        relay_check(r == 1, "probe: opens once the leases are given up", "open gave %d", r);
        _exit(0);
    }
    waitpid(probe, &st, 0);
    must(write(finish[1], "f", 1), "write");
    relay_collect(20000);
    waitpid(c, &st, 0);
    sc_check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child exited", "status %#x", st);
    return sc_done();
}
