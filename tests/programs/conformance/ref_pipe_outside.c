/* Must be refused (pipes leading out of the job are not supported): the job holds a pipe's read end
 * only, its write end is held by a process outside the job (a grandchild that was orphaned, so no
 * longer a descendant).  Not to be taken for a pipe whose writer is gone (fd_pipe_half_closed).
 * After the refusal the outsider's bytes arrive, then EOF once it exits. */
#include "cf.h"

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int p[2], life[2], tell[2];
    if (pipe(p) || pipe(life) || pipe(tell)) return 3;
    pid_t child = fork();
    if (child == 0) {
        pid_t outsider = fork();
        if (outsider == 0) {
            close(p[0]);
            close(life[1]);
            close(tell[0]);
            pid_t me = getpid();
            if (write(tell[1], &me, sizeof me) != sizeof me || write(p[1], "outside", 7) != 7) _exit(1);
            close(tell[1]);
            char c;
            while (read(life[0], &c, 1) > 0) {}        /* until the job says so, or is gone */
            _exit(0);
        }
        _exit(outsider > 0 ? 0 : 1);
    }
    close(p[1]);
    close(life[0]);
    close(tell[1]);
    int st;
    pid_t outsider = -1;
    if (waitpid(child, &st, 0) != child || st != 0) return 3;
    if (read(tell[0], &outsider, sizeof outsider) != sizeof outsider) return 3;
    close(tell[0]);
    sc_ready();
    sc_wait_go();
    char buf[16] = {0};
    sc_check(read(p[0], buf, 7) == 7 && strcmp(buf, "outside") == 0, "the outsider's bytes", "%.7s", buf);
    close(life[1]);                                      /* the outsider exits */
    sc_check(read(p[0], buf, sizeof buf) == 0, "then EOF", "outsider %d", outsider);
    return sc_done();
}
