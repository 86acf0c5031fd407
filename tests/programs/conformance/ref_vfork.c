/* Must be refused: a parent suspended in vfork() while its child runs in its memory. */
#include "cf.h"

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    sc_open_out();
    pid_t child = vfork();
    if (child == 0) {
        cf_culprit(getpid());
        char tmp[4200];                /* ready with the PID of the parent, which is the job */
        snprintf(tmp, sizeof tmp, "%s.tmp", sc_ready_path);
        FILE *f = fopen(tmp, "w");
        if (!f) _exit(4);
        fprintf(f, "%d\n", getppid());
        fclose(f);
        rename(tmp, sc_ready_path);
        while (access(sc_go_path, F_OK) != 0) usleep(1000);
        _exit(0);
    }
    int st;
    waitpid(child, &st, 0);
    sc_check(WIFEXITED(st), "vfork child exited, parent resumed", "%#x", st);
    return sc_done();
}
