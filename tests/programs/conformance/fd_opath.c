/* O_PATH descriptors of a file and of a directory: still O_PATH (no reads), fstat works, and
 * openat through the directory one. */
#include "cf.h"

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    mkdir(cf_path("d"), 0700);
    int w = open(cf_path("d/file"), O_CREAT | O_WRONLY, 0600);
    if (write(w, "opath", 5) != 5) return 3;
    close(w);
    int f = open(cf_path("d/file"), O_PATH);
    int d = open(cf_path("d"), O_PATH | O_DIRECTORY);
    int ff = fcntl(f, F_GETFL), df = fcntl(d, F_GETFL);
    struct stat sb;
    fstat(f, &sb);
    sc_ready();
    sc_wait_go();
    sc_check(fcntl(f, F_GETFL) == ff && fcntl(d, F_GETFL) == df && (ff & O_PATH), "still O_PATH", "%#o %#o",
             fcntl(f, F_GETFL), fcntl(d, F_GETFL));
    char c;
    sc_check(read(f, &c, 1) < 0 && errno == EBADF, "no reads through it", "errno %d", errno);
    struct stat sa;
    sc_check(fstat(f, &sa) == 0 && sa.st_ino == sb.st_ino && sa.st_size == 5, "fstat", "%s", "");
    int g = openat(d, "file", O_RDONLY);
    char buf[8] = {0};
    sc_check(g >= 0 && read(g, buf, 5) == 5 && strcmp(buf, "opath") == 0, "openat through the directory", "%s", "");
    return sc_done();
}
