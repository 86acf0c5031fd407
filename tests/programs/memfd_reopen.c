/* Self-checking: descriptions of one file opened more than once stay separate
 * descriptions (own offset, own flags) of the SAME file.
 *   memfd_reopen OUT READY GO DIR
 * A memfd (offset 3) reopened through /proc/self/fd read-only (offset 2) and
 * O_APPEND; a child that reopened it through /proc/PARENT/fd (offset 5) and
 * holds nothing else of it; a /dev/shm file opened twice; a regular file
 * opened twice.  After GO: offsets, access modes and flags as before, and a
 * write through any description is seen through the others. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "selfcheck.h"

static long pos(int fd) { return (long)lseek(fd, 0, SEEK_CUR); }

static int same_inode(int a, int b)
{
    struct stat sa, sb;
    return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static int reopen(const char *proc, int fd, int flags)
{
    char link[64];
    snprintf(link, sizeof link, "/proc/%s/fd/%d", proc, fd);
    int r = open(link, flags);
    if (r < 0) {
        perror(link);
        exit(3);
    }
    return r;
}

static void check_pair(const char *what, int a, long pa, int b, long pb, int b_mode)
{
    char name[128];
    snprintf(name, sizeof name, "%s: one file", what);
    sc_check(same_inode(a, b), name, "fd %d and fd %d are different files", a, b);
    snprintf(name, sizeof name, "%s: own offsets", what);
    sc_check(pos(a) == pa && pos(b) == pb, name, "offsets %ld %ld, want %ld %ld", pos(a), pos(b), pa, pb);
    snprintf(name, sizeof name, "%s: separate descriptions", what);
    lseek(b, 1, SEEK_CUR);
    sc_check(pos(a) == pa, name, "seeking fd %d moved fd %d", b, a);
    lseek(b, -1, SEEK_CUR);
    snprintf(name, sizeof name, "%s: access mode", what);
    sc_check((fcntl(b, F_GETFL) & O_ACCMODE) == b_mode, name, "F_GETFL %#o", fcntl(b, F_GETFL));
}

int main(int argc, char **argv)
{
    sc_init(argc, argv);
    if (argc < 5) return 2;
    char shm[64], file[4096], parent[16];
    snprintf(shm, sizeof shm, "/dev/shm/incr-reopen-%d", getpid());
    snprintf(file, sizeof file, "%s/data", argv[4]);
    snprintf(parent, sizeof parent, "%d", getpid());

    int m = memfd_create("reopen", 0);
    if (m < 0 || write(m, "hello world", 11) != 11) return 3;
    lseek(m, 3, SEEK_SET);
    int r = reopen("self", m, O_RDONLY);
    char two[2];
    if (read(r, two, 2) != 2) return 3;
    int a = reopen("self", m, O_RDWR | O_APPEND);

    int s1 = open(shm, O_RDWR | O_CREAT, 0600);
    if (s1 < 0 || write(s1, "shared file", 11) != 11) return 3;
    int s2 = open(shm, O_RDONLY);
    lseek(s2, 7, SEEK_SET);

    int f1 = open(file, O_RDWR | O_CREAT, 0600);
    if (f1 < 0 || write(f1, "regular file", 12) != 12) return 3;
    int f2 = open(file, O_RDONLY);
    lseek(f2, 4, SEEK_SET);

    int ready[2];
    if (pipe(ready)) return 3;
    pid_t kid = fork();
    if (kid == 0) {
        int c = reopen(parent, m, O_RDWR);
        close(m); close(r); close(a);
        lseek(c, 5, SEEK_SET);
        if (write(ready[1], "x", 1) != 1) _exit(3);
        sc_wait_go();
        long at = pos(c);
        int wrote = write(c, "_", 1) == 1;
        _exit(at == 5 && wrote ? 0 : 1);       /* the parent sees the byte, or not */
    }
    if (read(ready[0], two, 1) != 1) return 3;

    sc_ready();
    sc_wait_go();
    int status = -1;
    pid_t got = waitpid(kid, &status, 0);
    sc_check(got == kid && WIFEXITED(status) && WEXITSTATUS(status) == 0, "child's reopened memfd at offset 5",
             "waitpid %d, status %#x", (int)got, status);
    char buf[32] = { 0 };
    sc_check(pread(m, buf, 11, 0) == 11 && memcmp(buf, "hello_world", 11) == 0, "child writes into the same memfd",
             "reads '%s'", buf);
    check_pair("memfd read-only reopen", m, 3, r, 2, O_RDONLY);
    check_pair("memfd O_APPEND reopen", m, 3, a, 0, O_RDWR);
    sc_check(fcntl(a, F_GETFL) & O_APPEND, "memfd reopen keeps O_APPEND", "F_GETFL %#o", fcntl(a, F_GETFL));
    struct stat st;
    sc_check(fstat(m, &st) == 0 && st.st_size == 11, "memfd size", "%ld bytes, not 11", (long)st.st_size);
    errno = 0;
    sc_check(write(r, "x", 1) < 0 && errno == EBADF, "memfd read-only reopen cannot write", "errno %d", errno);
    sc_check(write(a, "!", 1) == 1 && pread(m, buf, 12, 0) == 12 && memcmp(buf, "hello_world!", 12) == 0,
             "memfd O_APPEND write lands at the end, seen by the others", "reads '%.12s'", buf);
    check_pair("/dev/shm opened twice", s1, 11, s2, 7, O_RDONLY);
    sc_check(pwrite(s1, "S", 1, 0) == 1 && pread(s2, buf, 1, 0) == 1 && buf[0] == 'S', "/dev/shm write seen",
             "reads '%c'", buf[0]);
    check_pair("regular file opened twice", f1, 12, f2, 4, O_RDONLY);
    unlink(shm);
    return sc_done();
}
