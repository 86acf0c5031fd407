/* Close-on-exec after restore, observed through an exec: descriptors 5 and 7 plain, 6 and 8
 * O_CLOEXEC; the program re-executes itself (argv[5] = "exec") and reports which survived. */
#include "cf.h"

int main(int argc, char **argv)
{
    if (argc > 5 && strcmp(argv[5], "exec") == 0) {
        cf_init(argc, argv);
        cf_sub("exec");
        int open_fds = 0;
        for (int fd = 5; fd <= 8; fd++) open_fds |= (fcntl(fd, F_GETFD) >= 0) << fd;
        sc_check(open_fds == (1 << 5 | 1 << 7), "after exec only 5 and 7 remain", "mask %#x", open_fds);
        exit(sc_done());
    }
    cf_init(argc, argv);
    for (int fd = 5; fd <= 8; fd++) {
        int t = open("/dev/null", O_RDONLY | (fd % 2 ? 0 : O_CLOEXEC));
        dup3(t, fd, fd % 2 ? 0 : O_CLOEXEC);
        close(t);
    }
    sc_ready();
    sc_wait_go();
    pid_t child = fork();
    if (child == 0) {
        char *args[] = {"/proc/self/exe", argv[1], argv[2], argv[3], argv[4], "exec", NULL};
        execv("/proc/self/exe", args);
        _exit(127);
    }
    cf_collect("exec", child);
    return sc_done();
}
