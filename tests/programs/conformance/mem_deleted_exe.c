/* A job whose executable was deleted while it ran (rebuilt, say): the program runs a copy of
 * itself and the copy removes its own file.  After restore: /proc/self/exe names the same deleted
 * file, which has no name; its code and data mappings are the copy's (maps lines), and it runs. */
#include "cf.h"

static int square(int x) { return x * x; }
static int (*volatile fn)(int) = square;

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    if (argc < 6) {                       /* the first run: make the copy and become it */
        char self[4096];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n < 0) return 3;
        self[n] = 0;
        char buf[65536], *copy = (char *)cf_path("prog");
        int in = open(self, O_RDONLY), out = open(copy, O_WRONLY | O_CREAT | O_TRUNC, 0755);
        ssize_t got;
        while ((got = read(in, buf, sizeof buf)) > 0)
            if (write(out, buf, (size_t)got) != got) return 3;
        close(in);
        close(out);
        char *args[] = {copy, argv[1], argv[2], argv[3], argv[4], "copy", NULL};
        execv(copy, args);
        return 3;
    }
    if (unlink(cf_path("prog"))) return 3;
    char exe[4096] = {0}, maps_before[512];
    if (readlink("/proc/self/exe", exe, sizeof exe - 1) < 0) return 3;
    snprintf(maps_before, sizeof maps_before, "%s", cf_maps_line(cf_path("prog")));
    sc_ready();
    sc_wait_go();
    char now[4096] = {0};
    sc_check(readlink("/proc/self/exe", now, sizeof now - 1) > 0 && strcmp(now, exe) == 0, "/proc/self/exe",
             "%s, was %s", now, exe);
    struct stat st;
    sc_check(stat("/proc/self/exe", &st) == 0 && st.st_nlink == 0 && (st.st_mode & 0777) == 0755,
             "the executable has no name, its mode", "nlink %ld mode %o", (long)st.st_nlink, st.st_mode & 0777);
    cf_same(maps_before, cf_maps_line(cf_path("prog")), "its mappings");
    sc_check(fn(12) == 144, "its code runs", "%d", fn(12));
    return sc_done();
}
