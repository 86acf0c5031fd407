/* pidfds: of a live child (poll sees its exit only once it exits; waitid(P_PIDFD) reaps it), of
 * the process itself (PIDFD_NONBLOCK; pidfd_send_signal reaches it), of a zombie child (its exit
 * already seen), of a process exited and reaped (fdinfo "Pid: -1"; pidfd_send_signal: ESRCH).
 * After restore: each refers to the same process, with its flags. */
#include "cf.h"
#include <poll.h>

#ifndef PIDFD_NONBLOCK
#define PIDFD_NONBLOCK O_NONBLOCK
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static int pidfd_open(pid_t pid, unsigned flags) { return (int)syscall(SYS_pidfd_open, pid, flags); }
static int send_signal(int fd, int sig) { return (int)syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0); }

static int readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static const char *pid_line(int fd)
{
    static char bufs[4][64];
    static int next;
    char path[64], *b = bufs[next++ % 4];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
    snprintf(b, 64, "%s", cf_field(path, "Pid:"));
    return b;
}

static volatile sig_atomic_t got_usr1;
static void on_usr1(int sig) { (void)sig; got_usr1 = 1; }

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    signal(SIGUSR1, on_usr1);
    int gate[2], stop[2];
    cf_gate_open(gate);
    if (pipe(stop)) return 3;
    pid_t live = fork();
    if (live == 0) {
        cf_gate_pass(gate);
        char c;
        (void)!read(stop[0], &c, 1);            /* until the parent says so, after restore */
        _exit(7);
    }
    close(stop[0]);
    pid_t zombie = fork();
    if (zombie == 0) _exit(5);
    pid_t gone = fork();
    if (gone == 0) _exit(0);
    int fd_gone = pidfd_open(gone, 0);
    int st;
    waitpid(gone, &st, 0);                      /* reaped: fd_gone now says Pid: -1 */
    int fd_live = pidfd_open(live, 0), fd_self = pidfd_open(getpid(), PIDFD_NONBLOCK);
    int fd_zombie = pidfd_open(zombie, 0);
    siginfo_t si;
    while (waitid(P_PID, zombie, &si, WEXITED | WNOWAIT) != 0) {}     /* a zombie now, not reaped */
    cf_gate_wait(gate, 1);
    int fds[] = {fd_live, fd_self, fd_zombie, fd_gone}, flags[4];
    char pids[4][64];
    for (int i = 0; i < 4; i++) {
        if (fds[i] < 0) return 3;
        flags[i] = fcntl(fds[i], F_GETFL);
        snprintf(pids[i], sizeof pids[i], "%s", pid_line(fds[i]));
    }
    sc_ready();
    sc_wait_go();

    for (int i = 0; i < 4; i++) {
        sc_check(fcntl(fds[i], F_GETFL) == flags[i], "flags", "fd %d: %#o, was %#o", fds[i], fcntl(fds[i], F_GETFL),
                 flags[i]);
        cf_same(pids[i], pid_line(fds[i]), "the process fdinfo names");
    }
    sc_check(!readable(fd_live), "the live child: no exit yet", "%s", "");
    sc_check(readable(fd_zombie), "the zombie: its exit seen", "%s", "");
    sc_check(readable(fd_gone), "the reaped one: its exit seen", "%s", "");
    errno = 0;
    sc_check(send_signal(fd_gone, 0) < 0 && errno == ESRCH, "the reaped one: no process to signal", "errno %d", errno);
    sc_check(send_signal(fd_self, SIGUSR1) == 0, "a signal through our own pidfd", "errno %d", errno);
    for (int i = 0; i < 1000 && !got_usr1; i++) usleep(1000);
    sc_check(got_usr1, "it arrives", "%s", "");
    if (write(stop[1], "x", 1) != 1) return 3;
    struct pollfd p = {.fd = fd_live, .events = POLLIN};
    sc_check(poll(&p, 1, 10000) == 1, "the live child's exit is seen", "%s", "");
    memset(&si, 0, sizeof si);
    sc_check(waitid(P_PIDFD, fd_live, &si, WEXITED) == 0 && si.si_pid == live && si.si_status == 7,
             "waitid(P_PIDFD) reaps it", "pid %d status %d", si.si_pid, si.si_status);
    sc_check(waitpid(zombie, &st, 0) == zombie && WEXITSTATUS(st) == 5, "the zombie's status", "%#x", st);
    return sc_done();
}
