/* A job that depends on files outside it: DATA open read-only (offset inside it), MAP mapped
 * MAP_PRIVATE read-only, and its own executable (run from a copy the test may change).  After
 * restore it checks that each still holds what it held at the start: the restore must have been
 * refused had any changed.
 *   changedworld OUT READY GO DATA MAP [OUTPUT MORE WROTE]
 * With OUTPUT: writes "before\n" to it (O_WRONLY, created), forks a reader child holding OUTPUT
 * read-only, says ready, then waits for MORE, writes "after\n" and makes WROTE; after restore both
 * check (the child once WROTE is there again) that OUTPUT holds "before\nafter\n" (the restore
 * truncated it back, the job wrote the rest again). */
#include "selfcheck.h"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define DATA_AT 1000                 /* the data file's offset at the checkpoint */
#define OUTPUT_WANT "before\nafter\n"

static char *slurp(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (n == cap) buf = realloc(buf, cap *= 2);
        ssize_t r = read(fd, buf + n, cap - n);
        if (r <= 0) break;
        n += (size_t)r;
    }
    close(fd);
    *len = n;
    return buf;
}

static void wait_for(const char *path)
{
    while (access(path, F_OK) != 0)
        usleep(1000);
}

static int output_holds_want(int fd)
{
    char buf[64] = {0};
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    return n == (ssize_t)strlen(OUTPUT_WANT) && !memcmp(buf, OUTPUT_WANT, (size_t)n);
}

/* The child: holds OUTPUT read-only, reads it after GO and WROTE (the test removes WROTE before
 * it restores), and says by its status whether it held what the job wrote. */
static int reader(int rd, const char *wrote)
{
    sc_wait_go();
    wait_for(wrote);
    return output_holds_want(rd) ? 0 : 1;
}

int main(int argc, char **argv)
{
    sc_init(argc, argv);
    if (argc != 6 && argc != 9) {
        fprintf(stderr, "usage: changedworld OUT READY GO DATA MAP [OUTPUT MORE WROTE]\n");
        return 2;
    }
    const char *data_path = argv[4], *map_path = argv[5];
    const char *output = argc == 9 ? argv[6] : NULL;

    size_t data_len, map_len, exe_len;
    char *data_then = slurp(data_path, &data_len);
    char *map_then = slurp(map_path, &map_len);
    char *exe_then = slurp("/proc/self/exe", &exe_len);
    if (!data_then || !map_then || !exe_then || data_len <= DATA_AT || !map_len) return 3;
    char exe_name[4096] = {0};
    if (readlink("/proc/self/exe", exe_name, sizeof exe_name - 1) < 0) return 3;

    int data = open(data_path, O_RDONLY);
    if (data < 0 || lseek(data, DATA_AT, SEEK_SET) != DATA_AT) return 3;
    int mfd = open(map_path, O_RDONLY | O_CLOEXEC);
    if (mfd < 0) return 3;
    char *map = mmap(NULL, map_len, PROT_READ, MAP_PRIVATE, mfd, 0);
    close(mfd);
    if (map == MAP_FAILED) return 3;

    int out = -1;
    pid_t child = 0;
    if (output) {
        out = open(output, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (out < 0 || write(out, "before\n", 7) != 7) return 3;
        int rd = open(output, O_RDONLY);
        if (rd < 0) return 3;
        child = fork();
        if (child < 0) return 3;
        if (child == 0) {
            close(out);              /* it only reads the output */
            _exit(reader(rd, argv[8]));
        }
        close(rd);
    }

    sc_ready();
    if (output) {
        wait_for(argv[7]);
        if (write(out, "after\n", 6) != 6) return 3;
        close(open(argv[8], O_WRONLY | O_CREAT, 0644));
    }
    sc_wait_go();

    size_t len;
    char *now = slurp(data_path, &len);
    sc_check(now && len == data_len && !memcmp(now, data_then, len), "data file unchanged", "%zu bytes, were %zu",
             len, data_len);
    char buf[4096];
    ssize_t n = pread(data, buf, sizeof buf, 0);
    sc_check(n > 0 && !memcmp(buf, data_then, (size_t)n), "data descriptor reads the data", "pread gave %zd", n);
    sc_check(lseek(data, 0, SEEK_CUR) == DATA_AT, "data descriptor offset", "%ld", (long)lseek(data, 0, SEEK_CUR));
    sc_check((fcntl(data, F_GETFL) & O_ACCMODE) == O_RDONLY, "data descriptor read-only", "flags %#x",
             fcntl(data, F_GETFL));
    free(now);

    sc_check(!memcmp(map, map_then, map_len), "mapping holds the mapped file's bytes", "differs");
    now = slurp(map_path, &len);
    sc_check(now && len == map_len && !memcmp(now, map_then, len), "mapped file unchanged", "%zu bytes, were %zu",
             len, map_len);
    free(now);

    char exe_now[4096] = {0};
    sc_check(readlink("/proc/self/exe", exe_now, sizeof exe_now - 1) > 0 && !strcmp(exe_now, exe_name),
             "executable path", "%s, was %s", exe_now, exe_name);
    now = slurp("/proc/self/exe", &len);
    sc_check(now && len == exe_len && !memcmp(now, exe_then, len), "executable unchanged", "%zu bytes, were %zu",
             len, exe_len);
    free(now);

    if (output) {
        int fresh = open(output, O_RDONLY);
        sc_check(fresh >= 0 && output_holds_want(fresh), "output holds what the job wrote, once", "differs");
        int status = 0;
        pid_t got = waitpid(child, &status, 0);
        sc_check(got == child && WIFEXITED(status) && WEXITSTATUS(status) == 0,
                 "reader child read the same output", "waitpid %d status %#x (errno %d)", (int)got, status, errno);
    }
    return sc_done();
}
