/* Files open after every name of them was removed (ghost files).  A scratch file unlinked after
 * open, with data, a hole of 4 MiB, data again and a size that is no multiple of a page, held
 * through three descriptions (one dup'd, one reopened through /proc read-only, one O_APPEND)
 * and by a child; an O_TMPFILE file that never had a name.  After restore: the same bytes, the
 * hole still a hole, each description's offset and status flags, the name /proc shows, no link,
 * mode; every description and the child on one inode (a write through one is read through
 * another). */
#include "cf.h"

#define MIB (1L << 20)
#define TAIL 5000

static void pattern(char *b, size_t n, int seed)
{
    for (size_t i = 0; i < n; i++) b[i] = (char)(seed + i * 7 + i / 4096);
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    static char head[8192], tail[TAIL], buf[8192];
    pattern(head, sizeof head, 1);
    pattern(tail, sizeof tail, 2);

    int s = open(cf_path("scratch"), O_RDWR | O_CREAT, 0600);
    if (s < 0 || pwrite(s, head, sizeof head, 0) != sizeof head || pwrite(s, tail, TAIL, 4 * MIB) != TAIL) return 3;
    if (fchmod(s, 0640)) return 3;
    int ap = open(cf_path("scratch"), O_WRONLY | O_APPEND);
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", s);
    int ro = open(proc, O_RDONLY);
    int d = dup(s);
    if (ap < 0 || ro < 0 || d < 0 || unlink(cf_path("scratch"))) return 3;
    lseek(s, 1234, SEEK_SET);
    lseek(ro, 77, SEEK_SET);

    int t = open(cf_work, O_TMPFILE | O_RDWR, 0600);
    if (t < 0 || write(t, "anon-data", 9) != 9) return 3;

    int fds[] = {s, ap, ro, d, t};
    int n = sizeof fds / sizeof fds[0];
    int fl[8];
    const char *names[8];
    for (int i = 0; i < n; i++) {
        fl[i] = fcntl(fds[i], F_GETFL);
        names[i] = strdup(cf_fd_link(fds[i]));
    }
    struct stat before;
    fstat(s, &before);

    int gate[2], turn[2];
    cf_gate_open(gate);
    if (pipe(turn)) return 3;
    pid_t child = fork();
    if (child == 0) {
        cf_sub("child");
        cf_gate_pass(gate);
        sc_wait_go();
        char go;
        if (read(turn[0], &go, 1) != 1) exit(5);        /* once the parent has checked the bytes */
        struct stat st = {0};
        int got = fstat(d, &st);
        sc_check(got == 0 && st.st_nlink == 0 && st.st_size == 4 * MIB + TAIL + 3, "child: still the ghost",
                 "nlink %ld size %lld", (long)st.st_nlink, (long long)st.st_size);
        sc_check(pwrite(d, "C", 1, 100) == 1, "child: writes through its descriptor", "%s", "");
        exit(sc_done());
    }
    cf_gate_wait(gate, 1);
    sc_ready();
    sc_wait_go();

    for (int i = 0; i < n; i++) {
        sc_check(fcntl(fds[i], F_GETFL) == fl[i], "status flags", "fd %d: %#x, was %#x", fds[i],
                 fcntl(fds[i], F_GETFL), fl[i]);
        if (fds[i] != t)
            cf_same(names[i], cf_fd_link(fds[i]), "the name /proc shows");
    }
    /* An O_TMPFILE file is named after its inode number, which a new file cannot choose. */
    const char *now_name = cf_fd_link(t), *base = strrchr(now_name, '/');
    sc_check(base && base[1] == '#' && strstr(now_name, " (deleted)") && strncmp(now_name, names[4], base - now_name) == 0,
             "the O_TMPFILE file's name", "%s", now_name);
    struct stat now;
    fstat(s, &now);
    sc_check(now.st_nlink == 0, "no name left", "nlink %ld", (long)now.st_nlink);
    sc_check(now.st_size == before.st_size, "size", "%lld, was %lld", (long long)now.st_size,
             (long long)before.st_size);
    sc_check((now.st_mode & 07777) == 0640 && now.st_uid == before.st_uid && now.st_gid == before.st_gid,
             "mode and owner", "%o %d:%d", now.st_mode & 07777, now.st_uid, now.st_gid);
    sc_check(now.st_blocks * 512 < 2 * MIB, "the hole takes no space", "%lld blocks", (long long)now.st_blocks);
    sc_check(lseek(s, 0, SEEK_CUR) == 1234 && lseek(ro, 0, SEEK_CUR) == 77, "offsets", "%lld %lld",
             (long long)lseek(s, 0, SEEK_CUR), (long long)lseek(ro, 0, SEEK_CUR));
    sc_check(lseek(d, 0, SEEK_CUR) == 1234, "the dup shares the offset", "%lld", (long long)lseek(d, 0, SEEK_CUR));
    off_t hole = lseek(ro, 0, SEEK_HOLE), data = lseek(ro, hole, SEEK_DATA);
    sc_check(hole == (off_t)sizeof head && data == 4 * MIB, "the hole is still a hole", "hole at %lld, data at %lld",
             (long long)hole, (long long)data);
    lseek(ro, 77, SEEK_SET);
    sc_check(pread(ro, buf, sizeof head, 0) == sizeof head && memcmp(buf, head, sizeof head) == 0, "data before the hole",
             "%s", "");
    sc_check(pread(ro, buf, TAIL, 4 * MIB) == TAIL && memcmp(buf, tail, TAIL) == 0, "data after the hole", "%s", "");
    sc_check(pread(ro, buf, 4096, 2 * MIB) == 4096 && buf[0] == 0 && memcmp(buf, buf + 1, 4095) == 0,
             "the hole reads as zeros", "%s", "");
    sc_check(write(ap, "XYZ", 3) == 3 && pread(ro, buf, 3, 4 * MIB + TAIL) == 3 && memcmp(buf, "XYZ", 3) == 0,
             "the O_APPEND description appends to the same file", "%.3s", buf);
    if (write(turn[1], "g", 1) != 1) return 3;
    cf_collect("child", child);
    sc_check(pread(ro, buf, 1, 100) == 1 && buf[0] == 'C', "the child's write is in the same file", "%c", buf[0]);

    fstat(t, &now);
    sc_check(now.st_nlink == 0 && now.st_size == 9, "the O_TMPFILE file", "nlink %ld size %lld", (long)now.st_nlink,
             (long long)now.st_size);
    sc_check(lseek(t, 0, SEEK_CUR) == 9 && pread(t, buf, 9, 0) == 9 && memcmp(buf, "anon-data", 9) == 0,
             "the O_TMPFILE file's data and offset", "%.9s", buf);
    return sc_done();
}
