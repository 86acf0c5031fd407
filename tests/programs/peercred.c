/* Self-checking: SO_PEERCRED and SO_PEERGROUPS of socket pairs name, after restore, the
 * process that called socketpair() and the effective ids and groups it had then.
 *   peercred OUT READY GO
 *   made    by P (root), then held by child K alone: P closed its ends
 *   switched  by K while its effective ids were 4321/1234, groups 77 88, switched back to
 *           root right after
 *   exited  by D, a clone(CLONE_FILES) child of P with ids 5432/2345 and group 55 that put
 *           the pair into the table it shares with P (at 60 and 61) and exited (reaped)
 * Each pair must also still carry data both ways.
 *   peercred OUT READY GO zombie
 * D is not reaped: the pair's creator is a zombie when the checkpoint comes, which must
 * refuse and leave the job as it was. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "relay.h"

#define EXITED_A 60
#define EXITED_B 61

typedef int (*check_fn)(int, const char *, const char *, ...);

static int must(int v, const char *what)
{
    if (v < 0) {
        perror(what);
        exit(3);
    }
    return v;
}

/* "pid uid gid groups..." as an end of a pair reports its peer. */
static void peer_of(int fd, char *out, size_t size)
{
    struct ucred u;
    socklen_t len = sizeof u;
    gid_t groups[64];
    socklen_t glen = sizeof groups;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &u, &len) != 0 ||
        getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &glen) != 0) {
        snprintf(out, size, "error %s", strerror(errno));
        return;
    }
    int n = snprintf(out, size, "%d %u %u", u.pid, u.uid, u.gid);
    for (unsigned i = 0; i < glen / sizeof(gid_t) && n < (int)size; i++)
        n += snprintf(out + n, size - n, " %u", groups[i]);
}

static void expect_peer(check_fn check, const char *what, int pair[2], const char *want)
{
    char a[512], b[512];
    peer_of(pair[0], a, sizeof a);
    peer_of(pair[1], b, sizeof b);
    char ping = 'p', got = 0;
    int works = write(pair[0], &ping, 1) == 1 && read(pair[1], &got, 1) == 1 && got == 'p'
                && write(pair[1], &ping, 1) == 1 && read(pair[0], &got, 1) == 1;
    check(strcmp(a, want) == 0 && strcmp(b, want) == 0 && works, what, "ends say [%s] and [%s], want [%s]%s", a, b,
          want, works ? "" : "; and it no longer carries data");
}

static void expected(char *out, size_t size, int pid, unsigned uid, unsigned gid, int n, const gid_t *groups)
{
    int k = snprintf(out, size, "%d %u %u", pid, uid, gid);
    for (int i = 0; i < n; i++)
        k += snprintf(out + k, size - k, " %u", groups[i]);
}

static int made_by_d(void *arg)
{
    (void)arg;
    gid_t g = 55;
    int sv[2];
    if (setgroups(1, &g) || setgid(2345) || setuid(5432) || socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
        return 1;
    if (dup2(sv[0], EXITED_A) < 0 || dup2(sv[1], EXITED_B) < 0)
        return 1;
    close(sv[0]);
    close(sv[1]);
    return 0;
}

int main(int argc, char **argv)
{
    sc_init(argc, argv);
    int zombie = argc > 4 && strcmp(argv[4], "zombie") == 0;
    static char stack[1 << 16];
    pid_t d = must(clone(made_by_d, stack + sizeof stack, CLONE_FILES | SIGCHLD, NULL), "clone");
    int st;
    if (!zombie) {
        waitpid(d, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            return 3;
    } else {
        for (int i = 0; i < 5000 && fcntl(EXITED_B, F_GETFD) < 0; i++)
            usleep(1000);
    }
    gid_t mine[64];
    int n_mine = must(getgroups(64, mine), "getgroups");
    int made[2];
    must(socketpair(AF_UNIX, SOCK_DGRAM, 0, made), "socketpair");
    char want_made[512];
    expected(want_made, sizeof want_made, getpid(), geteuid(), getegid(), n_mine, mine);
    relay_init();
    int ready[2];
    must(pipe(ready), "pipe");
    pid_t k = must(fork(), "fork");
    if (k == 0) {
        gid_t g[2] = { 77, 88 };
        int switched[2];
        must(setgroups(2, g), "setgroups");
        must(setresgid(-1, 1234, -1), "setresgid");
        must(setresuid(-1, 4321, -1), "setresuid");
        must(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, switched), "socketpair");
        must(setresuid(-1, 0, -1), "setresuid back");
        must(setresgid(-1, 0, -1), "setresgid back");
        must(setgroups(n_mine, mine), "setgroups back");
        char want[512];
        expected(want, sizeof want, getpid(), 4321, 1234, 2, g);
        must(write(ready[1], "k", 1), "write");
        sc_wait_go();
        expect_peer(relay_check, "K: the pair P made, held by K alone", made, want_made);
        expect_peer(relay_check, "K: the pair K made as 4321/1234", switched, want);
        _exit(0);
    }
    close(made[0]);
    close(made[1]);
    char c;
    must(read(ready[0], &c, 1), "read");
    sc_ready();
    sc_wait_go();
    if (zombie) {
        waitpid(d, &st, 0);
        sc_check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the zombie is reaped after the refused checkpoint",
                 "status %#x", st);
    }
    int exited[2] = { EXITED_A, EXITED_B };
    gid_t g55 = 55;
    char want[512];
    expected(want, sizeof want, d, 5432, 2345, 1, &g55);
    expect_peer(sc_check, "P: the pair D made as 5432/2345 and exited", exited, want);
    relay_collect(20000);
    waitpid(k, &st, 0);
    sc_check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "K exited", "status %#x", st);
    return sc_done();
}
