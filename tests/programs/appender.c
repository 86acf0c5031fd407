/* Numbered lines to a file that others may write too:
 *   appender OUT READY GO PATH|- APPEND N
 * opens PATH (O_WRONLY|O_CREAT, with O_APPEND if APPEND is 1; "-": stdout as it is), writes
 * "job 1".."job N/2", is ready, waits for GO, then writes the rest.  Each line is one write(2).
 * Checks, after the restore: every write whole, and each one ending at the file's end -- the
 * job never writes inside bytes that are already there (someone else's). */
#include "selfcheck.h"
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

static int line(int fd, int i)
{
    char buf[64];
    int n = snprintf(buf, sizeof buf, "job %d\n", i);
    return write(fd, buf, n) == n;
}

static int at_end(int fd)
{
    struct stat st;
    off_t here = lseek(fd, 0, SEEK_CUR);
    return fstat(fd, &st) == 0 && here == st.st_size;
}

int main(int argc, char **argv)
{
    sc_init(argc, argv);
    if (argc < 7) {
        fprintf(stderr, "usage: %s OUT READY GO PATH|- APPEND N\n", argv[0]);
        return 2;
    }
    const char *path = argv[4];
    int n = atoi(argv[6]);
    int fd = strcmp(path, "-") ? open(path, O_WRONLY | O_CREAT | (atoi(argv[5]) ? O_APPEND : 0), 0644) : 1;
    if (fd < 0)
        return 6;
    for (int i = 1; i <= n / 2; i++)
        if (!line(fd, i))
            return 7;
    sc_ready();
    sc_wait_go();
    int whole = 1, end = 1;
    for (int i = n / 2 + 1; i <= n; i++) {
        whole &= line(fd, i);
        end &= at_end(fd);
    }
    sc_check(whole, "whole writes", "a write after the restore failed or was short");
    sc_check(end, "writes at the end", "a write after the restore ended inside the file");
    return sc_done();
}
