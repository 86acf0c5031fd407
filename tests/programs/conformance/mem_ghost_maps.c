/* Mappings of files whose names were removed (ghost files): one mapped private, a page of it
 * written (copied on write) and its descriptor closed; one mapped shared and writable, written
 * through the mapping, its descriptor kept.  After restore: the private mapping shows the file's
 * pages and the written one; the shared one still maps the file (a write through it is read
 * through the descriptor, and the other way round); maps lines and VmFlags as they were. */
#include "cf.h"
#include <sys/mman.h>

#define PG 4096

static void pattern(char *b, size_t n, int seed)
{
    for (size_t i = 0; i < n; i++) b[i] = (char)(seed + i * 13 + i / PG);
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    static char file[3 * PG], buf[PG];
    pattern(file, sizeof file, 5);

    int p = open(cf_path("private"), O_RDWR | O_CREAT, 0600);
    if (p < 0 || write(p, file, sizeof file) != sizeof file) return 3;
    char *priv = mmap(NULL, 3 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, p, 0);
    if (priv == MAP_FAILED) return 3;
    memcpy(priv + PG, "copied on write", 15);
    close(p);
    unlink(cf_path("private"));

    int s = open(cf_path("shared"), O_RDWR | O_CREAT, 0600);
    if (s < 0 || ftruncate(s, 2 * PG)) return 3;
    char *shar = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, s, 0);
    if (shar == MAP_FAILED) return 3;
    memcpy(shar + PG, "shared!", 7);
    unlink(cf_path("shared"));

    char priv_line[512], shar_line[512], priv_flags[512], shar_flags[512];
    snprintf(priv_line, sizeof priv_line, "%s", cf_maps_line(cf_path("private")));
    snprintf(shar_line, sizeof shar_line, "%s", cf_maps_line(cf_path("shared")));
    snprintf(priv_flags, sizeof priv_flags, "%s", cf_vmflags(priv));
    snprintf(shar_flags, sizeof shar_flags, "%s", cf_vmflags(shar));
    sc_ready();
    sc_wait_go();

    char want[3 * PG];
    memcpy(want, file, sizeof want);
    memcpy(want + PG, "copied on write", 15);
    sc_check(memcmp(priv, want, sizeof want) == 0, "private mapping: the file's pages and the written one", "%s", "");
    cf_same(priv_line, cf_maps_line(cf_path("private")), "private mapping's maps line (deleted)");
    cf_same(priv_flags, cf_vmflags(priv), "private mapping's VmFlags");
    sc_check(memcmp(shar + PG, "shared!", 7) == 0, "shared mapping's data", "%.7s", shar + PG);
    sc_check(pread(s, buf, 7, PG) == 7 && memcmp(buf, "shared!", 7) == 0, "the descriptor reads the mapped file",
             "%.7s", buf);
    shar[10] = 'Q';
    sc_check(pread(s, buf, 1, 10) == 1 && buf[0] == 'Q', "a write through the mapping reaches the file", "%c", buf[0]);
    sc_check(pwrite(s, "R", 1, 20) == 1 && shar[20] == 'R', "a write to the file shows in the mapping", "%c", shar[20]);
    cf_same(shar_line, cf_maps_line(cf_path("shared")), "shared mapping's maps line (deleted)");
    cf_same(shar_flags, cf_vmflags(shar), "shared mapping's VmFlags");
    struct stat st;
    sc_check(fstat(s, &st) == 0 && st.st_nlink == 0 && st.st_size == 2 * PG, "the shared file has no name",
             "nlink %ld size %lld", (long)st.st_nlink, (long long)st.st_size);
    return sc_done();
}
