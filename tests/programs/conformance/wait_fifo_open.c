/* Blocked in read(2) on a named FIFO (both ends ours, the writer a child that writes after GO). */
#include "cf.h"

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    const char *path = cf_path("fifo");
    if (mkfifo(path, 0600)) return 3;
    int r = open(path, O_RDONLY | O_NONBLOCK);
    int w = open(path, O_WRONLY);
    fcntl(r, F_SETFL, 0);
    pid_t child = fork();
    if (child == 0) {
        close(r);
        sc_wait_go();
        _exit(write(w, "fifo!", 5) == 5 ? 0 : 1);
    }
    close(w);
    int flags_before = fcntl(r, F_GETFL);
    sc_ready();
    char buf[8] = {0};
    ssize_t n = read(r, buf, sizeof buf);
    sc_check(n == 5 && memcmp(buf, "fifo!", 5) == 0, "read from the FIFO", "n=%zd errno=%d", n, errno);
    sc_check(fcntl(r, F_GETFL) == flags_before, "reader's status flags", "%#x, before %#x", fcntl(r, F_GETFL),
             flags_before);
    int st;
    waitpid(child, &st, 0);
    sc_check(WIFEXITED(st) && !WEXITSTATUS(st), "writer exits 0", "%#x", st);
    sc_check(read(r, buf, 1) == 0, "EOF after the writer exits", "%s", "");
    return sc_done();
}
