/* Self-checking: descriptor tables and filesystem contexts shared by clone(2)
 * stay shared after restore.   fdshare OUT READY GO DIR
 *   A  clone(CLONE_FILES | CLONE_FS): one table and one cwd/umask with us
 *   B  clone(CLONE_FILES): one table, a cwd of its own
 *   T  a thread (shares everything)
 * After GO: we open a file and chdir to DIR with umask 027; A must see the
 * descriptor, the cwd and the umask, B the descriptor but not the cwd; A opens
 * a file we must see; T opens one we must see; B closes one we must lose. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "selfcheck.h"

static int to_a[2], to_b[2], from_a[2], from_b[2];
static const char *dir;
static char start_cwd[4096];
static volatile int t_fd = -1, t_go;

static int send_int(int fd, int v) { return write(fd, &v, sizeof v) == sizeof v; }
static int recv_int(int fd) { int v = -1; return read(fd, &v, sizeof v) == sizeof v ? v : -1; }
static int is_open(int fd) { return fcntl(fd, F_GETFD) >= 0; }

/* Each child answers whatever it finds: the parent never waits for ever. */
static int child_a_checks(void)
{
    int n = recv_int(to_a[0]);                   /* opened by the parent after GO */
    struct stat st;
    if (n < 0 || fstat(n, &st) != 0 || !S_ISCHR(st.st_mode)) return 10;
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd) || strcmp(cwd, dir) != 0) return 11;
    mode_t m = umask(0);
    umask(m);
    return m == 027 ? 0 : 12;
}

static int child_a(void *arg)
{
    (void)arg;
    sc_wait_go();
    int code = child_a_checks();
    int mine = open("/", O_RDONLY | O_DIRECTORY);
    return send_int(from_a[1], mine) ? code : 13;
}

static int child_b(void *arg)
{
    (void)arg;
    sc_wait_go();
    int n = recv_int(to_b[0]), code = 0;
    char cwd[4096];
    if (n < 0 || !is_open(n))
        code = 20;
    else if (!getcwd(cwd, sizeof cwd) || strcmp(cwd, start_cwd) != 0)
        code = 21;                               /* its own cwd, not the parent's new one */
    close(n);                                    /* the parent loses it too */
    return send_int(from_b[1], n) ? code : 22;
}

static void *thread(void *arg)
{
    (void)arg;
    while (!t_go)
        usleep(1000);
    t_fd = open("/dev/zero", O_RDONLY);
    return NULL;
}

static pid_t spawn(int (*fn)(void *), int flags)
{
    size_t size = 256 * 1024;
    char *stack = malloc(size);
    pid_t pid = clone(fn, stack + size, flags | SIGCHLD, NULL);
    if (pid < 0) {
        perror("clone");
        exit(3);
    }
    return pid;
}

static void check_child(const char *what, pid_t pid, const char *codes)
{
    int status = -1;
    pid_t w = waitpid(pid, &status, 0);
    sc_check(w == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0, what, "waitpid %d, status %#x (%s)",
             (int)w, status, codes);
}

int main(int argc, char **argv)
{
    sc_init(argc, argv);
    if (argc < 5) return 2;
    dir = realpath(argv[4], NULL);
    if (!dir || !getcwd(start_cwd, sizeof start_cwd)) return 3;
    if (pipe(to_a) || pipe(to_b) || pipe(from_a) || pipe(from_b)) return 3;
    pid_t a = spawn(child_a, CLONE_FILES | CLONE_FS);
    pid_t b = spawn(child_b, CLONE_FILES);
    pthread_t t;
    pthread_create(&t, NULL, thread, NULL);

    sc_ready();
    sc_wait_go();
    int n = open("/dev/null", O_RDONLY);
    if (chdir(dir) != 0) return 3;
    umask(027);
    send_int(to_a[1], n);
    int from = recv_int(from_a[0]);
    struct stat st, root;
    sc_check(from >= 0 && fstat(from, &st) == 0 && stat("/", &root) == 0 && S_ISDIR(st.st_mode) &&
             st.st_ino == root.st_ino && st.st_dev == root.st_dev, "a descriptor the CLONE_FILES child opened",
             "fd %d is not its / here", from);
    check_child("CLONE_FILES|CLONE_FS child sees our descriptor, cwd and umask", a,
                "10: no descriptor, 11: cwd, 12: umask");
    int other = open("/dev/null", O_RDONLY);
    send_int(to_b[1], other);
    int closed = recv_int(from_b[0]);
    check_child("CLONE_FILES child sees our descriptor, keeps its own cwd", b, "20: no descriptor, 21: cwd");
    sc_check(closed == other && !is_open(other), "a descriptor the CLONE_FILES child closed",
             "fd %d still open here", other);
    t_go = 1;
    pthread_join(t, NULL);
    sc_check(t_fd >= 0 && is_open(t_fd), "a descriptor a thread opened", "fd %d", t_fd);
    return sc_done();
}
