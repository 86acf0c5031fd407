/* A private writable mapping of a file with two pages copied-on-write: those keep the job's
 * bytes; the others still show the file, including a write to the file made after restore. */
#include "cf.h"
#include <sys/mman.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    int fd = open(cf_path("data"), O_RDWR | O_CREAT | O_TRUNC, 0600);
    char *page = malloc(pg);
    for (int p = 0; p < 16; p++) {
        memset(page, 'A' + p, pg);
        if (write(fd, page, pg) != (ssize_t)pg) return 3;
    }
    char *m = mmap(NULL, 16 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    close(fd);
    memset(m + 3 * pg, 'x', pg);
    memset(m + 7 * pg + 100, 'y', 10);
    sc_ready();
    sc_wait_go();
    sc_check(m[3 * pg] == 'x' && m[4 * pg - 1] == 'x', "copied page 3", "%c", m[3 * pg]);
    sc_check(m[7 * pg + 100] == 'y' && m[7 * pg] == 'A' + 7, "copied page 7", "%c %c", m[7 * pg + 100], m[7 * pg]);
    int file_ok = 1;
    for (int p = 0; p < 16; p++)
        if (p != 3 && p != 7) file_ok &= m[p * pg] == 'A' + p && m[(p + 1) * pg - 1] == 'A' + p;
    sc_check(file_ok, "other pages show the file", "%s", "");
    fd = open(cf_path("data"), O_RDWR);
    sc_check(pwrite(fd, "NEW", 3, 5 * pg) == 3 && pwrite(fd, "NEW", 3, 3 * pg) == 3, "file rewritten", "%s", "");
    sc_check(memcmp(m + 5 * pg, "NEW", 3) == 0, "an untouched page sees the file change", "%.3s", m + 5 * pg);
    sc_check(m[3 * pg] == 'x', "a copied page does not", "%c", m[3 * pg]);
    sc_check(strstr(cf_vmflags(m), "rd wr") != NULL, "VmFlags rd wr", "%s", cf_vmflags(m));
    return sc_done();
}
