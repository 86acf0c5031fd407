/* Self-checking: file locks come back where they were, held by whom they were,
 * conflicting with what they did, and processes asleep waiting for one still wait.
 *   locks OUT READY GO DIR
 * The parent P, in DIR:
 *   flock   flock(LOCK_EX) on a description P shares with child A
 *   shared  flock(LOCK_SH)
 *   handed  flock(LOCK_EX) by P, which then closed its descriptor: A alone holds it
 *   posix   POSIX locks: P write [10,30) and read [100,EOF); A write [50,60) and read
 *           [200,250) through the same description; child W asleep in F_SETLKW for
 *           a write lock on [10,30)
 *   ofd     OFD locks: write [0,10) on description o1, read [20,30) on o2, both shared with A
 *   append  opened O_RDWR|O_APPEND (a1) and O_RDWR (a2): flock and OFD write [0,100) on a1
 *           only, a POSIX write lock [200,300) taken through a2
 *   waitf   flock(LOCK_EX) by P; child V asleep in flock(LOCK_EX) on a description of its own
 *   ghost   flock(LOCK_EX) by M, a clone(CLONE_FILES) child of P that has exited since, on a
 *           description of the table it shared with P: /proc/locks names M
 * After restore each process reads its /proc/self/fdinfo, a fresh process probes every
 * file with F_GETLK, F_OFD_GETLK and flock(LOCK_NB) (A stays meanwhile), then P lets go
 * of what W and V wait for and both must get it then, not before.
 *   locks OUT READY GO DIR exited
 * M takes a POSIX lock instead: F_GETLK names M, which has exited, so the checkpoint must
 * refuse, and leave the job as it was. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "relay.h"

static char dir[3072];
static int parent, a_pid, w_pid, v_pid;
static int fd_flock, fd_shared, fd_posix, fd_o1, fd_o2, fd_a1, fd_a2, fd_waitf, fd_handed, fd_ghost;
static int m_pid, m_posix;
static int released[2], finish[2];

static const char *at(const char *name)
{
    static char paths[8][4096];
    static int next;
    char *p = paths[next++ % 8];
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

static struct flock range(short type, off_t start, off_t len)
{
    struct flock l = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };
    return l;
}

static void lock(int fd, int cmd, short type, off_t start, off_t len)
{
    struct flock l = range(type, start, len);
    must(fcntl(fd, cmd, &l), "fcntl lock");
}

/* What F_GETLK or F_OFD_GETLK says of `type` on [start, start+len): "UNLCK" or "TYPE PID START LEN". */
static void getlk(int fd, int cmd, short type, off_t start, off_t len, char *out, size_t size)
{
    struct flock l = range(type, start, len);
    if (fcntl(fd, cmd, &l) != 0) {
        snprintf(out, size, "error %s", strerror(errno));
        return;
    }
    if (l.l_type == F_UNLCK)
        snprintf(out, size, "UNLCK");
    else
        snprintf(out, size, "%s %d %lld %lld", l.l_type == F_WRLCK ? "WRLCK" : "RDLCK", l.l_pid,
                 (long long)l.l_start, (long long)l.l_len);
}

typedef int (*check_fn)(int, const char *, const char *, ...);

static void expect_getlk(check_fn check, const char *what, int fd, int cmd, short type, off_t start, off_t len,
                         const char *want)
{
    char got[128];
    getlk(fd, cmd, type, start, len, got, sizeof got);
    check(strcmp(got, want) == 0, what, "got %s, want %s", got, want);
}

static void expect_locks(check_fn check, const char *what, int fd, const char *want)
{
    char got[1024];
    fd_locks(getpid(), fd, got, sizeof got);
    check(strcmp(got, want) == 0, what, "fdinfo shows [%s], want [%s]", got, want);
}

static void expect_flock_refused(check_fn check, const char *what, int fd, int op)
{
    int r = flock(fd, op | LOCK_NB);
    check(r != 0 && errno == EWOULDBLOCK, what, "flock(%s|LOCK_NB) %s", op == LOCK_EX ? "LOCK_EX" : "LOCK_SH",
          r == 0 ? "succeeded" : strerror(errno));
}

static int blocked_in_proc_locks(int pid, const char *kind)
{
    char line[256], want[64];
    int found = 0;
    snprintf(want, sizeof want, "-> %s", kind);
    FILE *f = fopen("/proc/locks", "r");
    if (!f)
        return 0;
    while (!found && fgets(line, sizeof line, f)) {
        char *arrow = strstr(line, want);
        int who = 0;
        if (arrow && sscanf(arrow + strlen(want), " %*s %*s %d", &who) == 1 && who == pid)
            found = 1;
    }
    fclose(f);
    return found;
}

static void wait_blocked(int pid, const char *kind)
{
    for (int i = 0; i < 10000 && !blocked_in_proc_locks(pid, kind); i++)
        usleep(1000);
    if (!blocked_in_proc_locks(pid, kind)) {
        fprintf(stderr, "PID %d never waited for its %s lock\n", pid, kind);
        exit(3);
    }
}

static void child_a(void)
{
    char want[256];
    lock(fd_posix, F_SETLK, F_WRLCK, 50, 10);
    lock(fd_posix, F_SETLK, F_RDLCK, 200, 50);
    sc_wait_go();
    snprintf(want, sizeof want, "FLOCK WRITE %d 0 EOF", parent);
    expect_locks(relay_check, "A: flock shared with P, taken by P", fd_flock, want);
    expect_locks(relay_check, "A: flock P took and left to A", fd_handed, want);
    snprintf(want, sizeof want, "POSIX READ %d 200 249; POSIX WRITE %d 50 59", getpid(), getpid());
    expect_locks(relay_check, "A: its own POSIX locks only", fd_posix, want);
    expect_locks(relay_check, "A: OFD write lock of o1", fd_o1, "OFDLCK WRITE -1 0 9");
    expect_locks(relay_check, "A: OFD read lock of o2", fd_o2, "OFDLCK READ -1 20 29");
    expect_getlk(relay_check, "A: its OFD lock does not conflict with itself", fd_o1, F_OFD_GETLK, F_WRLCK, 5, 1,
                 "UNLCK");
    snprintf(want, sizeof want, "FLOCK WRITE %d 0 EOF; OFDLCK WRITE -1 0 99", parent);
    expect_locks(relay_check, "A: a1 holds flock and OFD lock", fd_a1, want);
    expect_locks(relay_check, "A: a2 holds nothing (P's POSIX lock is P's)", fd_a2, "");
    char c;
    if (read(finish[0], &c, 1) != 1)           /* its locks stay until the probe is done */
        _exit(4);
    _exit(0);
}

/* Asleep in F_SETLKW (posix) or flock (waitf) until P lets go, which it says through `released`. */
static void waiter(int posix)
{
    const char *what = posix ? "W: F_SETLKW waits across the restore" : "V: flock waits across the restore";
    int r;
    if (posix) {
        struct flock l = range(F_WRLCK, 10, 20);
        r = fcntl(fd_posix, F_SETLKW, &l);
    } else {
        int fd = must(open(at("waitf"), O_RDONLY), "open waitf");
        r = flock(fd, LOCK_EX);
    }
    char c;
    int after = read(released[0], &c, 1) == 1;       /* nonblocking: P's byte is there just before it lets go */
    relay_check(r == 0 && after, what, "%s", r != 0 ? strerror(errno) : "got the lock before P let go of it");
    _exit(0);
}

static void probe(void)
{
    char want[128];
    int f = must(open(at("flock"), O_RDONLY), "open flock");
    expect_flock_refused(relay_check, "probe: flock held exclusive", f, LOCK_SH);
    f = must(open(at("shared"), O_RDONLY), "open shared");
    expect_flock_refused(relay_check, "probe: shared flock refuses LOCK_EX", f, LOCK_EX);
    relay_check(flock(f, LOCK_SH | LOCK_NB) == 0, "probe: shared flock admits LOCK_SH", "%s", strerror(errno));
    f = must(open(at("handed"), O_RDONLY), "open handed");
    expect_flock_refused(relay_check, "probe: handed-over flock held exclusive", f, LOCK_SH);
    f = must(open(at("waitf"), O_RDONLY), "open waitf");
    expect_flock_refused(relay_check, "probe: waited-for flock still held", f, LOCK_SH);
    f = must(open(at("ghost"), O_RDONLY), "open ghost");
    expect_flock_refused(relay_check, "probe: flock of M, which has exited, still held", f, LOCK_SH);

    f = must(open(at("posix"), O_RDWR), "open posix");
    snprintf(want, sizeof want, "WRLCK %d 10 20", parent);
    expect_getlk(relay_check, "probe: P's POSIX write lock", f, F_GETLK, F_RDLCK, 15, 1, want);
    snprintf(want, sizeof want, "RDLCK %d 100 0", parent);
    expect_getlk(relay_check, "probe: P's POSIX read lock to EOF", f, F_GETLK, F_WRLCK, 100, 1, want);
    snprintf(want, sizeof want, "WRLCK %d 50 10", a_pid);
    expect_getlk(relay_check, "probe: A's POSIX write lock", f, F_GETLK, F_RDLCK, 55, 1, want);
    expect_getlk(relay_check, "probe: no lock between them", f, F_GETLK, F_WRLCK, 30, 20, "UNLCK");
    expect_getlk(relay_check, "probe: read locks admit readers", f, F_GETLK, F_RDLCK, 230, 1, "UNLCK");
    expect_getlk(relay_check, "probe: nothing before byte 10", f, F_GETLK, F_WRLCK, 0, 10, "UNLCK");

    f = must(open(at("ofd"), O_RDWR), "open ofd");
    expect_getlk(relay_check, "probe: OFD write lock of o1", f, F_OFD_GETLK, F_RDLCK, 5, 1, "WRLCK -1 0 10");
    expect_getlk(relay_check, "probe: OFD read lock of o2", f, F_OFD_GETLK, F_WRLCK, 25, 1, "RDLCK -1 20 10");
    expect_getlk(relay_check, "probe: OFD read lock admits readers", f, F_OFD_GETLK, F_RDLCK, 25, 1, "UNLCK");
    expect_getlk(relay_check, "probe: no OFD lock at 10-19", f, F_OFD_GETLK, F_WRLCK, 10, 10, "UNLCK");

    f = must(open(at("append"), O_RDWR), "open append");
    expect_flock_refused(relay_check, "probe: a1's flock", f, LOCK_SH);
    expect_getlk(relay_check, "probe: a1's OFD lock", f, F_OFD_GETLK, F_RDLCK, 50, 1, "WRLCK -1 0 100");
    snprintf(want, sizeof want, "WRLCK %d 200 100", parent);
    expect_getlk(relay_check, "probe: P's POSIX lock through a2", f, F_GETLK, F_RDLCK, 250, 1, want);
    _exit(0);
}

static int locked_by_m(void *arg)
{
    (void)arg;
    if (m_posix) {
        struct flock l = range(F_WRLCK, 0, 10);
        return fcntl(fd_ghost, F_SETLK, &l) != 0;
    }
    return flock(fd_ghost, LOCK_EX) != 0;
}

/* M takes its lock and exits; P reaps it. */
static void lock_by_m(void)
{
    static char stack[1 << 16];
    int st;
    m_pid = must(clone(locked_by_m, stack + sizeof stack, CLONE_FILES | SIGCHLD, NULL), "clone");
    if (waitpid(m_pid, &st, 0) != m_pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        exit(3);
}

static void check_parent(void)
{
    char want[256];
    int me = getpid();
    snprintf(want, sizeof want, "FLOCK WRITE %d 0 EOF", me);
    expect_locks(sc_check, "P: flock", fd_flock, want);
    expect_locks(sc_check, "P: flock on waitf", fd_waitf, want);
    snprintf(want, sizeof want, "FLOCK WRITE %d 0 EOF", m_pid);
    expect_locks(sc_check, "P: flock taken by M, which has exited", fd_ghost, want);
    snprintf(want, sizeof want, "FLOCK READ %d 0 EOF", me);
    expect_locks(sc_check, "P: shared flock", fd_shared, want);
    snprintf(want, sizeof want, "POSIX READ %d 100 EOF; POSIX WRITE %d 10 29", me, me);
    expect_locks(sc_check, "P: its own POSIX locks only", fd_posix, want);
    expect_locks(sc_check, "P: OFD lock of o1", fd_o1, "OFDLCK WRITE -1 0 9");
    expect_locks(sc_check, "P: OFD lock of o2", fd_o2, "OFDLCK READ -1 20 29");
    expect_getlk(sc_check, "P: o2's read lock conflicts with o1", fd_o1, F_OFD_GETLK, F_WRLCK, 25, 1,
                 "RDLCK -1 20 10");
    expect_getlk(sc_check, "P: o2 does not conflict with itself", fd_o2, F_OFD_GETLK, F_WRLCK, 25, 1, "UNLCK");
    snprintf(want, sizeof want, "FLOCK WRITE %d 0 EOF; OFDLCK WRITE -1 0 99", me);
    expect_locks(sc_check, "P: a1 holds flock and OFD lock", fd_a1, want);
    snprintf(want, sizeof want, "POSIX WRITE %d 200 299", me);
    expect_locks(sc_check, "P: a2 holds the POSIX lock taken through it", fd_a2, want);
    expect_flock_refused(sc_check, "P: a2 cannot flock what a1 holds", fd_a2, LOCK_SH);
    expect_getlk(sc_check, "P: a1's OFD lock conflicts with a2", fd_a2, F_OFD_GETLK, F_RDLCK, 0, 1,
                 "WRLCK -1 0 100");
    int fl = fcntl(fd_a1, F_GETFL);
    sc_check(fl >= 0 && (fl & O_APPEND) && (fl & O_ACCMODE) == O_RDWR, "P: a1 still O_RDWR|O_APPEND", "flags %#o", fl);
    struct stat st;
    fstat(fd_a1, &st);
    char c = 0;
    sc_check(write(fd_a1, "z", 1) == 1 && pread(fd_a2, &c, 1, st.st_size) == 1 && c == 'z',
             "P: a1 appends at the end", "read back %d", c);
}

int main(int argc, char **argv)
{
    sc_init(argc, argv);
    if (argc < 5)
        return 2;
    snprintf(dir, sizeof dir, "%s", argv[4]);
    parent = getpid();
    const char *names[] = { "flock", "shared", "handed", "posix", "ofd", "append", "waitf", "ghost" };
    for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++) {
        int fd = must(open(at(names[i]), O_RDWR | O_CREAT | O_TRUNC, 0644), "create");
        must(ftruncate(fd, 1000), "ftruncate");
        close(fd);
    }
    fd_flock = must(open(at("flock"), O_RDWR), "flock");
    fd_shared = must(open(at("shared"), O_RDONLY), "shared");
    fd_handed = must(open(at("handed"), O_RDWR), "handed");
    fd_posix = must(open(at("posix"), O_RDWR), "posix");
    fd_o1 = must(open(at("ofd"), O_RDWR), "ofd 1");
    fd_o2 = must(open(at("ofd"), O_RDONLY), "ofd 2");
    fd_a1 = must(open(at("append"), O_RDWR | O_APPEND), "append 1");
    fd_a2 = must(open(at("append"), O_RDWR), "append 2");
    fd_waitf = must(open(at("waitf"), O_RDONLY), "waitf");
    fd_ghost = must(open(at("ghost"), O_RDWR), "ghost");
    if (argc > 5 && strcmp(argv[5], "exited") == 0) {
        m_posix = 1;
        lock_by_m();
        sc_ready();
        sc_wait_go();
        char want[64];
        snprintf(want, sizeof want, "WRLCK %d 0 10", m_pid);
        int probe_pid = must(fork(), "fork");
        if (probe_pid == 0) {
            int f = must(open(at("ghost"), O_RDWR), "open ghost");
            char got[128];
            getlk(f, F_GETLK, F_RDLCK, 0, 1, got, sizeof got);
            _exit(strcmp(got, want) != 0);
        }
        int st;
        waitpid(probe_pid, &st, 0);
        sc_check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "M's POSIX lock is still there", "probe status %#x", st);
        return sc_done();
    }
    lock_by_m();
    must(flock(fd_flock, LOCK_EX), "flock");
    must(flock(fd_shared, LOCK_SH), "flock shared");
    must(flock(fd_handed, LOCK_EX), "flock handed");
    must(flock(fd_waitf, LOCK_EX), "flock waitf");
    must(flock(fd_a1, LOCK_EX), "flock a1");
    lock(fd_posix, F_SETLK, F_WRLCK, 10, 20);
    lock(fd_posix, F_SETLK, F_RDLCK, 100, 0);
    lock(fd_o1, F_OFD_SETLK, F_WRLCK, 0, 10);
    lock(fd_o2, F_OFD_SETLK, F_RDLCK, 20, 10);
    lock(fd_a1, F_OFD_SETLK, F_WRLCK, 0, 100);
    lock(fd_a2, F_SETLK, F_WRLCK, 200, 100);
    relay_init();
    must(pipe2(released, O_NONBLOCK), "pipe");
    must(pipe(finish), "pipe");
    a_pid = must(fork(), "fork");
    if (a_pid == 0)
        child_a();
    close(fd_handed);       /* A alone holds that flock now; P took it */
    w_pid = must(fork(), "fork");
    if (w_pid == 0)
        waiter(1);
    v_pid = must(fork(), "fork");
    if (v_pid == 0)
        waiter(0);
    wait_blocked(w_pid, "POSIX");
    wait_blocked(v_pid, "FLOCK");
    /* A's POSIX locks are in place once F_GETLK sees them. */
    for (int i = 0; i < 10000; i++) {
        struct flock l = range(F_RDLCK, 55, 1);
        fcntl(fd_posix, F_GETLK, &l);
        if (l.l_type == F_WRLCK)
            break;
        usleep(1000);
    }
    sc_ready();
    sc_wait_go();

    int probe_pid = must(fork(), "fork");
    if (probe_pid == 0)
        probe();
    int st;
    waitpid(probe_pid, &st, 0);
    sc_check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "probe exited", "status %#x", st);
    check_parent();
    must(write(finish[1], "f", 1), "write");        /* A may go */
    must(write(released[1], "rr", 2), "write");     /* say so, then let go of what W and V wait for */
    lock(fd_posix, F_SETLK, F_UNLCK, 10, 20);
    must(flock(fd_waitf, LOCK_UN), "unlock waitf");
    relay_collect(20000);
    int kids[] = { a_pid, w_pid, v_pid };
    for (int i = 0; i < 3; i++) {
        waitpid(kids[i], &st, 0);
        sc_check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child exited", "PID %d status %#x", kids[i], st);
    }
    return sc_done();
}
