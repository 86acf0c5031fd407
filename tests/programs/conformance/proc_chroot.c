/* A chroot'ed process (root directory not /): it chroots into the directory holding READY and GO,
 * so that it still finds them, with its working directory a subdirectory, a file open by a path
 * inside, and a child forked after the chroot (its root is the same).  After restore: the root is
 * the same directory (same device and inode as before, and ".." of "/" is "/"), the working
 * directory too, a path inside resolves, the open file reads on, and the child's root matches. */
#include "cf.h"
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

static int same(const struct stat *a, const struct stat *b) { return a->st_dev == b->st_dev && a->st_ino == b->st_ino; }

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    sc_open_out();
    static char dir[4096], ready[512], go[512];
    snprintf(dir, sizeof dir, "%s", sc_ready_path);
    snprintf(ready, sizeof ready, "/%s", basename((char *)sc_ready_path));
    snprintf(go, sizeof go, "/%s", basename((char *)sc_go_path));
    if (chroot(dirname(dir)) || chdir("/")) return 3;
    mkdir("/sub", 0755);
    int fd = open("/sub/data", O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, "abcdef", 6) != 6 || lseek(fd, 2, SEEK_SET) != 2 || chdir("/sub")) return 3;
    struct stat root0, cwd0, up0;
    if (stat("/", &root0) || stat(".", &cwd0) || stat("/..", &up0)) return 3;
    int pipefd[2];
    if (pipe(pipefd)) return 3;
    pid_t child = fork();
    if (child == 0) {
        close(pipefd[1]);
        char c;
        if (read(pipefd[0], &c, 1) != 1) _exit(2);     /* after the restore */
        struct stat r;
        _exit(stat("/", &r) == 0 && same(&r, &root0) && access("/sub/data", F_OK) == 0 ? 0 : 1);
    }
    close(pipefd[0]);
    sc_ready_path = ready;
    sc_go_path = go;
    sc_ready();
    sc_wait_go();
    struct stat root1, cwd1, up1;
    sc_check(stat("/", &root1) == 0 && same(&root1, &root0), "the same root directory", "%s", "");
    sc_check(stat("/..", &up1) == 0 && same(&up1, &up0) && same(&up1, &root1), "no way up from it", "%s", "");
    sc_check(stat(".", &cwd1) == 0 && same(&cwd1, &cwd0), "the same working directory", "%s", "");
    sc_check(access(ready, F_OK) == 0 && access("data", F_OK) == 0, "paths resolve inside it", "%s", "");
    char buf[8] = {0};
    sc_check(read(fd, buf, 4) == 4 && memcmp(buf, "cdef", 4) == 0, "the file open inside reads on", "%.4s", buf);
    int status = -1;
    sc_check(write(pipefd[1], "x", 1) == 1 && waitpid(child, &status, 0) == child && WIFEXITED(status) &&
             WEXITSTATUS(status) == 0, "the child's root is the same", "status %#x", status);
    return sc_done();
}
