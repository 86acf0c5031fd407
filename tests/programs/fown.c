/* Self-checking: signal-driven I/O survives a restore: O_ASYNC, the owner
 * (F_SETOWN_EX: a thread, a process, a process group, a child) and the signal
 * (F_SETSIG) of each description, and the signal still reaches that owner with
 * the right siginfo when the descriptor becomes readable.   fown OUT READY GO
 *   sv  socket pair, sv[0] O_ASYNC, owner thread T (F_OWNER_TID), SIGRTMIN+1
 *   p   pipe, p[0] O_ASYNC, owner this process (F_OWNER_PID), plain SIGIO
 *   g   pipe, g[0] O_ASYNC, owner our process group (F_OWNER_PGRP), SIGRTMIN+2
 *   k   pipe, k[0] O_ASYNC held by the child only, owner the child, SIGUSR2
 *   u   socket pair, u[0] owned by this process (F_SETOWN) without O_ASYNC */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "selfcheck.h"

struct seen { volatile sig_atomic_t count; volatile int tid, fd, code; };
static struct seen got[65];
static volatile int t_tid;

static void on_signal(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    got[sig].tid = (int)syscall(SYS_gettid);
    got[sig].fd = si->si_fd;
    got[sig].code = si->si_code;
    got[sig].count++;
}

static void *idle(void *arg)
{
    (void)arg;
    t_tid = (int)syscall(SYS_gettid);
    for (;;)
        pause();
    return NULL;
}

static void must(int ok, const char *what)
{
    if (!ok) {
        perror(what);
        exit(3);
    }
}

static void async(int fd, int type, int owner, int sig)
{
    struct f_owner_ex o = { .type = type, .pid = owner };
    must(fcntl(fd, F_SETOWN_EX, &o) == 0, "F_SETOWN_EX");
    must(fcntl(fd, F_SETSIG, sig) == 0, "F_SETSIG");
    must(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_ASYNC | O_NONBLOCK) == 0, "F_SETFL");
}

static int wait_for(int sig, int before)
{
    for (int i = 0; i < 5000 && got[sig].count == before; i++)
        usleep(1000);
    return got[sig].count > before;
}

struct state { struct f_owner_ex owner; int sig, fl; };

static struct state state_of(int fd)
{
    struct state s;
    fcntl(fd, F_GETOWN_EX, &s.owner);
    s.sig = fcntl(fd, F_GETSIG);
    s.fl = fcntl(fd, F_GETFL);
    return s;
}

static void check_state(const char *what, int fd, struct state was)
{
    struct state now = state_of(fd);
    sc_check(now.owner.type == was.owner.type && now.owner.pid == was.owner.pid && now.sig == was.sig &&
             now.fl == was.fl, what, "owner %d/%d sig %d flags %#o (was %d/%d sig %d flags %#o)", now.owner.type,
             now.owner.pid, now.sig, now.fl, was.owner.type, was.owner.pid, was.sig, was.fl);
}

/* The child: its pipe end's SIGUSR2 must reach it with si_fd = its number. */
static int child(int k0)
{
    sc_wait_go();
    if (!wait_for(SIGUSR2, 0)) return 10;
    if (got[SIGUSR2].fd != k0) return 11;
    if (got[SIGUSR2].code != POLL_IN) return 12;
    return 0;
}

int main(int argc, char **argv)
{
    sc_init(argc, argv);
    struct sigaction sa = { .sa_sigaction = on_signal, .sa_flags = SA_SIGINFO | SA_RESTART };
    int sigs[] = { SIGIO, SIGUSR2, SIGRTMIN + 1, SIGRTMIN + 2 };
    for (unsigned i = 0; i < sizeof sigs / sizeof *sigs; i++)
        sigaction(sigs[i], &sa, NULL);
    pthread_t t;
    pthread_create(&t, NULL, idle, NULL);
    while (!t_tid)
        usleep(1000);
    int tid = t_tid;

    int sv[2], p[2], g[2], k[2], u[2];
    must(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0 && socketpair(AF_UNIX, SOCK_STREAM, 0, u) == 0, "socketpair");
    must(pipe(p) == 0 && pipe(g) == 0 && pipe(k) == 0, "pipe");
    async(sv[0], F_OWNER_TID, tid, SIGRTMIN + 1);
    async(p[0], F_OWNER_PID, getpid(), 0);
    async(g[0], F_OWNER_PGRP, getpgrp(), SIGRTMIN + 2);
    must(fcntl(u[0], F_SETOWN, getpid()) == 0, "F_SETOWN");

    pid_t kid = fork();
    if (kid == 0) {
        close(k[1]);
        _exit(child(k[0]));
    }
    async(k[0], F_OWNER_PID, kid, SIGUSR2);
    close(k[0]);                          /* the child holds the only descriptor of it */
    struct state s_sv = state_of(sv[0]), s_p = state_of(p[0]), s_g = state_of(g[0]), s_u = state_of(u[0]);

    sc_ready();
    sc_wait_go();
    check_state("socket owned by a thread", sv[0], s_sv);
    check_state("pipe owned by the process", p[0], s_p);
    check_state("pipe owned by the process group", g[0], s_g);
    check_state("socket with an owner, no O_ASYNC", u[0], s_u);

    int sig = SIGRTMIN + 1, before = got[sig].count;
    must(write(sv[1], "x", 1) == 1, "write");
    sc_check(wait_for(sig, before) && got[sig].tid == tid && got[sig].fd == sv[0] && got[sig].code == POLL_IN,
             "F_SETSIG signal at the owner thread", "count %d, thread %d (want %d), si_fd %d (want %d), si_code %d",
             (int)got[sig].count, got[sig].tid, tid, got[sig].fd, sv[0], got[sig].code);
    before = got[SIGIO].count;
    must(write(p[1], "x", 1) == 1, "write");
    sc_check(wait_for(SIGIO, before), "SIGIO at the owner process", "no SIGIO");
    sig = SIGRTMIN + 2;
    before = got[sig].count;
    must(write(g[1], "x", 1) == 1, "write");
    sc_check(wait_for(sig, before) && got[sig].fd == g[0] && got[sig].code == POLL_IN,
             "F_SETSIG signal at the owner process group", "count %d, si_fd %d (want %d), si_code %d",
             (int)got[sig].count, got[sig].fd, g[0], got[sig].code);
    must(write(k[1], "x", 1) == 1, "write");
    int status = -1;
    pid_t w = waitpid(kid, &status, 0);
    sc_check(w == kid && WIFEXITED(status) && WEXITSTATUS(status) == 0, "F_SETSIG signal at the owner child",
             "waitpid %d, status %#x (10: no signal, 11: si_fd, 12: si_code)", (int)w, status);
    return sc_done();
}
