/* A scratch file of SIZE MiB, unlinked at once, sparse: one page of data at every MiB, holes between.
 *   ghostjob OUT READY GO DIR SIZE_MIB
 * After GO: every data page is intact, the holes are still holes, the file has no name; the name
 * /proc shows goes to OUT.name. */
#include "selfcheck.h"
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#define MIB (1L << 20)
#define PG 4096

static void page(char *b, long k)
{
    for (int i = 0; i < PG; i++) b[i] = (char)(k * 31 + i * 7 + 1);
}

int main(int argc, char **argv)
{
    sc_init(argc, argv);
    if (argc < 6) return 2;
    long mib = atol(argv[5]);
    char path[4096], buf[PG], want[PG], proc[64], name[4200];
    snprintf(path, sizeof path, "%s/scratch", argv[4]);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0) return 3;
    for (long k = 0; k < mib; k++) {
        page(want, k);
        if (pwrite(fd, want, PG, k * MIB) != PG) return 3;
    }
    if (ftruncate(fd, mib * MIB) || unlink(path)) return 3;
    sc_ready();
    sc_wait_go();
    int intact = 1;
    for (long k = 0; k < mib; k++) {
        page(want, k);
        intact &= pread(fd, buf, PG, k * MIB) == PG && memcmp(buf, want, PG) == 0;
    }
    sc_check(intact, "every data page", "%s", "");
    struct stat st;
    fstat(fd, &st);
    sc_check(st.st_nlink == 0 && st.st_size == mib * MIB, "no name, same size", "nlink %ld size %lld",
             (long)st.st_nlink, (long long)st.st_size);
    sc_check(st.st_blocks * 512 <= mib * 2 * PG + MIB, "holes kept", "%lld blocks", (long long)st.st_blocks);
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(proc, name, sizeof name - 1);
    name[n < 0 ? 0 : n] = 0;
    char named[4200];
    snprintf(named, sizeof named, "%s.name", argv[1]);
    FILE *f = fopen(named, "w");
    if (!f) return 4;
    fprintf(f, "%s\n", name);
    fclose(f);
    return sc_done();
}
