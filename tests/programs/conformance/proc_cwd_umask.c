/* Working directory (a subdirectory of WORK, reached through a symlink) and umask 027: getcwd,
 * a relative open, and the mode a new file gets. */
#include "cf.h"

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    mkdir(cf_path("sub dir"), 0755);
    if (symlink("sub dir", cf_path("link"))) return 3;
    if (chdir(cf_path("link"))) return 3;
    umask(027);
    char before[4096];
    if (!getcwd(before, sizeof before)) return 3;
    int fd = open("here", O_CREAT | O_WRONLY, 0666);
    close(fd);
    sc_ready();
    sc_wait_go();
    char after[4096];
    sc_check(getcwd(after, sizeof after) && strcmp(before, after) == 0, "getcwd", "%s, before %s", after, before);
    sc_check(access("here", F_OK) == 0, "relative path resolves", "%s", "");
    mode_t old = umask(0);
    umask(old);
    sc_check(old == 027, "umask", "%o", old);
    fd = open("new", O_CREAT | O_WRONLY, 0666);
    struct stat st;
    fstat(fd, &st);
    sc_check((st.st_mode & 0777) == 0640, "new file's mode", "%o", st.st_mode & 0777);
    return sc_done();
}
