/* Directories a process holds after they were removed (empty, as rmdir leaves them): one as its
 * working directory, one open (and the same one open in a child); and a named FIFO removed while
 * open at both ends, bytes in it.  After restore: both still directories with no name left
 * (nlink 0), the names /proc shows, mode, the open one's flags; creating a file in either fails
 * with ENOENT, as in a removed directory; the FIFO has no name, its bytes, and carries more. */
#include "cf.h"
#include <dirent.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    if (mkdir(cf_path("cwd"), 0750) || mkdir(cf_path("open"), 0705) || mkfifo(cf_path("fifo"), 0640)) return 3;
    int fr = open(cf_path("fifo"), O_RDONLY | O_NONBLOCK), fw = open(cf_path("fifo"), O_WRONLY);
    if (fr < 0 || fw < 0 || write(fw, "queued", 6) != 6 || unlink(cf_path("fifo"))) return 3;
    char fifolink[64], fifo_name[4096];
    snprintf(fifolink, sizeof fifolink, "/proc/self/fd/%d", fr);
    snprintf(fifo_name, sizeof fifo_name, "%s", cf_link(fifolink));
    int fifo_flags = fcntl(fr, F_GETFL);
    int d = open(cf_path("open"), O_RDONLY | O_DIRECTORY);
    if (d < 0 || chdir(cf_path("cwd")) || rmdir(cf_path("cwd")) || rmdir(cf_path("open"))) return 3;
    char fdlink[64];
    snprintf(fdlink, sizeof fdlink, "/proc/self/fd/%d", d);
    char cwd_name[4096], open_name[4096];
    snprintf(cwd_name, sizeof cwd_name, "%s", cf_link("/proc/self/cwd"));
    snprintf(open_name, sizeof open_name, "%s", cf_link(fdlink));
    int flags = fcntl(d, F_GETFL);
    int gate[2];
    cf_gate_open(gate);
    pid_t child = fork();
    if (child == 0) {
        cf_sub("child");
        cf_gate_pass(gate);
        sc_wait_go();
        struct stat st;
        int got = fstat(d, &st);
        sc_check(got == 0 && S_ISDIR(st.st_mode) && st.st_nlink == 0, "child: the removed directory", "%s", "");
        cf_same(cwd_name, cf_link("/proc/self/cwd"), "child: working directory");
        exit(sc_done());
    }
    cf_gate_wait(gate, 1);
    sc_ready();
    sc_wait_go();
    struct stat st;
    int got = stat(".", &st);
    sc_check(got == 0 && S_ISDIR(st.st_mode) && st.st_nlink == 0 && (st.st_mode & 07777) == 0750,
             "the working directory: removed, mode", "nlink %ld mode %o", (long)st.st_nlink, st.st_mode & 07777);
    cf_same(cwd_name, cf_link("/proc/self/cwd"), "the working directory's name");
    got = fstat(d, &st);
    sc_check(got == 0 && S_ISDIR(st.st_mode) && st.st_nlink == 0 && (st.st_mode & 07777) == 0705,
             "the open directory: removed, mode", "nlink %ld mode %o", (long)st.st_nlink, st.st_mode & 07777);
    cf_same(open_name, cf_link(fdlink), "the open directory's name");
    sc_check(fcntl(d, F_GETFL) == flags, "its flags", "%#o, was %#o", fcntl(d, F_GETFL), flags);
    errno = 0;
    sc_check(open("new", O_CREAT | O_WRONLY, 0600) < 0 && errno == ENOENT, "no file can be made in it", "errno %d",
             errno);
    errno = 0;
    sc_check(openat(d, "new", O_CREAT | O_WRONLY, 0600) < 0 && errno == ENOENT, "nor in the open one", "errno %d",
             errno);
    char buf[16] = {0};
    sc_check(read(fr, buf, sizeof buf) == 6 && memcmp(buf, "queued", 6) == 0, "the removed FIFO's bytes", "%s", buf);
    sc_check(write(fw, "more", 4) == 4 && read(fr, buf, sizeof buf) == 4 && memcmp(buf, "more", 4) == 0,
             "the FIFO carries on", "%.4s", buf);
    got = fstat(fr, &st);
    sc_check(got == 0 && S_ISFIFO(st.st_mode) && st.st_nlink == 0 && (st.st_mode & 07777) == 0640,
             "the FIFO: removed, mode", "nlink %ld mode %o", (long)st.st_nlink, st.st_mode & 07777);
    cf_same(fifo_name, cf_link(fifolink), "the FIFO's name");
    sc_check(fcntl(fr, F_GETFL) == fifo_flags, "the FIFO's flags", "%#o", fcntl(fr, F_GETFL));
    cf_collect("child", child);
    return sc_done();
}
