/* Blocked in read(2) on an empty pipe while checkpointed; a child writes after GO.
 * The read must complete with the child's bytes, never fail with EINTR. */
#include "cf.h"

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int p[2];
    if (pipe(p)) return 3;
    pid_t child = fork();
    if (child == 0) {
        close(p[0]);
        sc_wait_go();
        _exit(write(p[1], "hello", 5) == 5 ? 0 : 1);
    }
    close(p[1]);
    sc_ready();
    char buf[16] = {0};
    errno = 0;
    ssize_t n = read(p[0], buf, sizeof buf);
    int err = errno;
    sc_check(n == 5 && memcmp(buf, "hello", 5) == 0, "read returns the child's bytes", "n=%zd errno=%d buf=%.16s",
             n, err, buf);
    int st;
    sc_check(waitpid(child, &st, 0) == child && WIFEXITED(st) && WEXITSTATUS(st) == 0, "writer exits 0",
             "status %#x", st);
    sc_check(read(p[0], buf, 1) == 0, "pipe at EOF after the writer exits", "%s", "");
    return sc_done();
}
