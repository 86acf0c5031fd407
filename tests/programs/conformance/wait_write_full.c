/* A child blocked writing to a full pipe: after restore the parent reads everything in order. */
#include "cf.h"
#include <sys/ioctl.h>
int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int p[2];
    if (pipe(p)) return 3;
    int sz = fcntl(p[1], F_GETPIPE_SZ);
    pid_t c = fork();
    if (c == 0) {
        close(p[0]);
        static char b[200000];
        for (size_t i = 0; i < sizeof b; i++) b[i] = (char)(i * 7 + i / 251);
        size_t off = 0;
        while (off < sizeof b) { ssize_t n = write(p[1], b + off, sizeof b - off); if (n < 0 && errno == EINTR) continue; if (n <= 0) _exit(5); off += (size_t)n; }
        _exit(0);
    }
    close(p[1]);
    /* wait until the pipe is full: the child blocks in write */
    for (;;) { int q = 0; ioctl(p[0], FIONREAD, &q); if (q >= sz) break; usleep(1000); }
    sc_ready();
    sc_wait_go();
    static char r[200000];
    size_t off = 0;
    for (;;) { ssize_t n = read(p[0], r + off, sizeof r - off); if (n < 0 && errno == EINTR) continue; if (n <= 0) break; off += (size_t)n; }
    int ok = off == sizeof r;
    for (size_t i = 0; ok && i < sizeof r; i++) ok = r[i] == (char)(i * 7 + i / 251);
    sc_check(ok, "all bytes in order", "%zu", off);
    int st; waitpid(c, &st, 0);
    sc_check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "writer finished", "0x%x", st);
    return sc_done();
}
