/* Pipes with one end closed everywhere: a read end holding bytes from a writer that is gone (the
 * bytes, then EOF; non-blocking, 128 KiB), and a write end whose reader is gone (EPIPE, SIGPIPE
 * ignored; 16 KiB), each with its flags and size. */
#include "cf.h"

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    int a[2], b[2];
    if (pipe(a) || pipe(b)) return 3;
    pid_t child = fork();
    if (child == 0) _exit(write(a[1], "last words", 10) == 10 ? 0 : 1);
    close(a[1]);
    int st;
    waitpid(child, &st, 0);
    close(b[0]);
    if (fcntl(a[0], F_SETFL, O_NONBLOCK) || fcntl(a[0], F_SETPIPE_SZ, 128 << 10) < 0 ||
        fcntl(b[1], F_SETPIPE_SZ, 16 << 10) < 0)
        return 3;
    sc_ready();
    sc_wait_go();
    sc_check(fcntl(a[0], F_GETFL) == (O_RDONLY | O_NONBLOCK) && fcntl(b[1], F_GETFL) == O_WRONLY, "flags",
             "%#x %#x", fcntl(a[0], F_GETFL), fcntl(b[1], F_GETFL));
    sc_check(fcntl(a[0], F_GETPIPE_SZ) == 128 << 10 && fcntl(b[1], F_GETPIPE_SZ) == 16 << 10, "sizes", "%d %d",
             fcntl(a[0], F_GETPIPE_SZ), fcntl(b[1], F_GETPIPE_SZ));
    char buf[16] = {0};
    sc_check(read(a[0], buf, sizeof buf) == 10 && strcmp(buf, "last words") == 0, "bytes of the exited writer",
             "%.10s", buf);
    sc_check(read(a[0], buf, sizeof buf) == 0, "then EOF", "%s", "");
    sc_check(write(b[1], "x", 1) < 0 && errno == EPIPE, "writing with no reader: EPIPE", "errno %d", errno);
    return sc_done();
}
