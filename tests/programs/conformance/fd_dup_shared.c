/* One open file description behind three descriptors (dup, dup3 with O_CLOEXEC, and inherited by a
 * child), and a second, independent open of the same file: shared offset and status flags across
 * the shared ones, independent for the other; close-on-exec per descriptor. */
#include "cf.h"

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int a = open(cf_path("f"), O_RDWR | O_CREAT, 0600);
    if (write(a, "abcdefghijklmnopqrstuvwxyz", 26) != 26) return 3;
    lseek(a, 5, SEEK_SET);
    int b = dup(a);
    int c = dup3(a, 40, O_CLOEXEC);
    int other = open(cf_path("f"), O_RDONLY);
    lseek(other, 20, SEEK_SET);
    int gate[2];
    cf_gate_open(gate);
    pid_t child = fork();
    if (child == 0) {
        cf_sub("child");
        cf_gate_pass(gate);
        sc_wait_go();
        char ch;
        while (lseek(a, 0, SEEK_CUR) != 9) usleep(1000);    /* the parent read 4 bytes through b */
        sc_check(read(a, &ch, 1) == 1 && ch == 'j', "child shares the offset", "%c", ch);
        exit(sc_done());
    }
    cf_gate_wait(gate, 1);
    sc_ready();
    sc_wait_go();
    char buf[8] = {0};
    sc_check(read(b, buf, 4) == 4 && memcmp(buf, "fghi", 4) == 0, "dup continues at 5", "%.4s", buf);
    cf_collect("child", child);
    sc_check(lseek(c, 0, SEEK_CUR) == 10, "the third descriptor moved along", "%lld", (long long)lseek(c, 0, SEEK_CUR));
    sc_check(lseek(other, 0, SEEK_CUR) == 20, "the other open kept its own offset", "%lld",
             (long long)lseek(other, 0, SEEK_CUR));
    fcntl(a, F_SETFL, O_APPEND);
    sc_check((fcntl(b, F_GETFL) & O_APPEND) && (fcntl(c, F_GETFL) & O_APPEND) && !(fcntl(other, F_GETFL) & O_APPEND),
             "status flags shared by the shared ones only", "%s", "");
    sc_check(fcntl(a, F_GETFD) == 0 && fcntl(b, F_GETFD) == 0 && fcntl(c, F_GETFD) == FD_CLOEXEC, "close-on-exec",
             "%d %d %d", fcntl(a, F_GETFD), fcntl(b, F_GETFD), fcntl(c, F_GETFD));
    return sc_done();
}
