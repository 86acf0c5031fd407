/* A directory descriptor part-way through a listing (getdents64 read a first batch), and one used
 * with openat: the rest of the listing after restore completes the set without repeats. */
#include "cf.h"
#include <dirent.h>

struct linux_dirent64 { uint64_t ino; int64_t off; unsigned short reclen; unsigned char type; char name[]; };

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    mkdir(cf_path("d"), 0700);
    for (int i = 0; i < 300; i++) {
        char name[64];
        snprintf(name, sizeof name, "d/entry-%03d", i);
        close(open(cf_path(name), O_CREAT | O_WRONLY, 0600));
    }
    int dfd = open(cf_path("d"), O_RDONLY | O_DIRECTORY);
    static char seen[300];
    char buf[1024] __attribute__((aligned(8)));
    int first = 0, repeats = 0;
    long n = syscall(SYS_getdents64, dfd, buf, sizeof buf);
    for (long off = 0; off < n; ) {
        struct linux_dirent64 *d = (struct linux_dirent64 *)(buf + off);
        int i;
        if (sscanf(d->name, "entry-%d", &i) == 1) { repeats += seen[i]++; first++; }
        off += d->reclen;
    }
    off_t pos = lseek(dfd, 0, SEEK_CUR);
    int dir2 = open(cf_path("d"), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    sc_ready();
    sc_wait_go();
    sc_check(lseek(dfd, 0, SEEK_CUR) == pos, "directory offset", "%lld, before %lld",
             (long long)lseek(dfd, 0, SEEK_CUR), (long long)pos);
    while ((n = syscall(SYS_getdents64, dfd, buf, sizeof buf)) > 0)
        for (long off = 0; off < n; ) {
            struct linux_dirent64 *d = (struct linux_dirent64 *)(buf + off);
            int i;
            if (sscanf(d->name, "entry-%d", &i) == 1) repeats += seen[i]++;
            off += d->reclen;
        }
    int missing = 0;
    for (int i = 0; i < 300; i++) missing += !seen[i];
    sc_check(first > 0 && first < 300 && missing == 0 && repeats == 0, "listing completes", "first %d missing %d "
             "repeats %d", first, missing, repeats);
    int f = openat(dir2, "entry-007", O_RDONLY);
    sc_check(f >= 0, "openat relative to the directory", "errno %d", errno);
    sc_check(fcntl(dir2, F_GETFD) == FD_CLOEXEC, "close-on-exec", "%s", "");
    return sc_done();
}
