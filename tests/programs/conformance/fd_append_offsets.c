/* Regular files: an O_APPEND log, a file read up to an offset, one written sparse beyond its end,
 * one opened O_RDWR at offset 0: offsets, flags and contents; the log keeps appending. */
#include "cf.h"

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int log = open(cf_path("log"), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (write(log, "line1\n", 6) != 6) return 3;
    lseek(log, 2, SEEK_SET);
    int src = open(cf_path("src"), O_RDWR | O_CREAT, 0600);
    if (write(src, "0123456789abcdef", 16) != 16) return 3;
    int rd = open(cf_path("src"), O_RDONLY);
    char tmp[7];
    if (read(rd, tmp, 7) != 7) return 3;
    int sparse = open(cf_path("sparse"), O_RDWR | O_CREAT, 0600);
    lseek(sparse, 1 << 20, SEEK_SET);
    if (write(sparse, "end", 3) != 3) return 3;
    lseek(sparse, 3 << 20, SEEK_SET);                    /* beyond the end */
    lseek(src, 0, SEEK_SET);
    int fl[4] = {fcntl(log, F_GETFL), fcntl(src, F_GETFL), fcntl(rd, F_GETFL), fcntl(sparse, F_GETFL)};
    sc_ready();
    sc_wait_go();
    sc_check(fcntl(log, F_GETFL) == fl[0] && (fl[0] & O_APPEND), "log keeps O_APPEND", "%#x", fcntl(log, F_GETFL));
    sc_check(fcntl(src, F_GETFL) == fl[1] && fcntl(rd, F_GETFL) == fl[2] && fcntl(sparse, F_GETFL) == fl[3],
             "flags of the others", "%s", "");
    sc_check(lseek(log, 0, SEEK_CUR) == 2, "log offset", "%lld", (long long)lseek(log, 0, SEEK_CUR));
    sc_check(lseek(rd, 0, SEEK_CUR) == 7, "reader offset", "%lld", (long long)lseek(rd, 0, SEEK_CUR));
    sc_check(lseek(src, 0, SEEK_CUR) == 0, "writer offset", "%lld", (long long)lseek(src, 0, SEEK_CUR));
    sc_check(lseek(sparse, 0, SEEK_CUR) == 3 << 20, "offset beyond the end", "%lld",
             (long long)lseek(sparse, 0, SEEK_CUR));
    char buf[16] = {0};
    sc_check(read(rd, buf, 9) == 9 && memcmp(buf, "789abcdef", 9) == 0, "reader continues", "%.9s", buf);
    if (write(log, "line2\n", 6) != 6) return 3;
    int chk = open(cf_path("log"), O_RDONLY);
    char all[32] = {0};
    sc_check(read(chk, all, sizeof all) == 12 && strcmp(all, "line1\nline2\n") == 0, "append lands at the end",
             "%s", all);
    struct stat st;
    fstat(sparse, &st);
    sc_check(st.st_size == (1 << 20) + 3, "sparse file's size", "%lld", (long long)st.st_size);
    return sc_done();
}
