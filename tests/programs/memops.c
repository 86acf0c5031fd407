/* A target driven line by line on stdin, for dirty-tracking ground truth.
 * Each command line is "OP ARGS..." (numbers in hex with 0x, or decimal);
 * each reply is one line on stdout: a number (negative = -errno).
 *   mmap LEN PROT FLAGS            -> address (anonymous)
 *   mmapat ADDR LEN PROT           -> ADDR (anonymous, MAP_FIXED_NOREPLACE)
 *   mmapfile PATH LEN PROT FLAGS   -> address
 *   write ADDR NPAGES BYTE         -> 0   (fills whole pages with BYTE)
 *   read ADDR NPAGES               -> sum of first bytes (read faults)
 *   madvise ADDR LEN ADVICE        -> 0
 *   munmap ADDR LEN / mprotect ADDR LEN PROT
 *   mremap ADDR LEN NEWLEN NEWADDR -> new address (NEWADDR 0: may move)
 *   readfile PATH ADDR LEN         -> bytes read(2) into ADDR (a kernel-side write)
 *   fork ADDR NPAGES BYTE          -> child PID, once the child has written the pages (it then
 *                                     sleeps until killed)
 *   forkcmd IN OUT                 -> child PID; the child serves commands from the FIFOs IN/OUT
 *   exit                            */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

static uint64_t num(const char *s) { return strtoull(s, NULL, 0); }

int main(void)
{
    char line[1024], op[32], a[256], b[256], c[64], d[64], e[64];
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    setvbuf(stdout, NULL, _IOLBF, 0);
    while (fgets(line, sizeof line, stdin)) {
        a[0] = b[0] = c[0] = d[0] = e[0] = 0;
        if (sscanf(line, "%31s %255s %255s %63s %63s %63s", op, a, b, c, d, e) < 1)
            continue;
        long long r = 0;
        errno = 0;
        if (!strcmp(op, "mmap")) {
            void *p = mmap(NULL, num(a), (int)num(b), (int)num(c), -1, 0);
            r = p == MAP_FAILED ? -errno : (long long)(uintptr_t)p;
        } else if (!strcmp(op, "mmapat")) {
            void *p = mmap((void *)(uintptr_t)num(a), num(b), (int)num(c),
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
            r = p == MAP_FAILED ? -errno : (long long)(uintptr_t)p;
        } else if (!strcmp(op, "mmapfile")) {
            int fd = open(a, O_RDONLY);
            void *p = mmap(NULL, num(b), (int)num(c), (int)num(d), fd, 0);
            r = p == MAP_FAILED ? -errno : (long long)(uintptr_t)p;
            close(fd);
        } else if (!strcmp(op, "write")) {
            memset((void *)(uintptr_t)num(a), (int)num(c), num(b) * 4096);
        } else if (!strcmp(op, "read")) {
            for (uint64_t i = 0; i < num(b); i++) r += *(volatile unsigned char *)(uintptr_t)(num(a) + i * 4096);
        } else if (!strcmp(op, "madvise")) {
            r = madvise((void *)(uintptr_t)num(a), num(b), (int)num(c)) ? -errno : 0;
        } else if (!strcmp(op, "munmap")) {
            r = munmap((void *)(uintptr_t)num(a), num(b)) ? -errno : 0;
        } else if (!strcmp(op, "mprotect")) {
            r = mprotect((void *)(uintptr_t)num(a), num(b), (int)num(c)) ? -errno : 0;
        } else if (!strcmp(op, "mremap")) {
            void *p = num(d) ? mremap((void *)(uintptr_t)num(a), num(b), num(c), MREMAP_MAYMOVE | MREMAP_FIXED,
                                      (void *)(uintptr_t)num(d))
                             : mremap((void *)(uintptr_t)num(a), num(b), num(c), MREMAP_MAYMOVE);
            r = p == MAP_FAILED ? -errno : (long long)(uintptr_t)p;
        } else if (!strcmp(op, "readfile")) {
            int fd = open(a, O_RDONLY);
            r = read(fd, (void *)(uintptr_t)num(b), num(c));
            if (r < 0) r = -errno;
            close(fd);
        } else if (!strcmp(op, "fork")) {
            int p[2];
            if (pipe(p)) { r = -errno; goto reply; }
            pid_t child = fork();
            if (child == 0) {
                memset((void *)(uintptr_t)num(a), (int)num(c), num(b) * 4096);
                if (write(p[1], "x", 1) != 1) _exit(1);
                for (;;) pause();
            }
            char x;
            if (read(p[0], &x, 1) != 1) r = -EIO; else r = child;
            close(p[0]);
            close(p[1]);
        } else if (!strcmp(op, "forkcmd")) {
            fflush(stdout);
            pid_t child = fork();
            if (child == 0) {
                if (!freopen(a, "r", stdin) || !freopen(b, "w", stdout)) _exit(1);
                setvbuf(stdout, NULL, _IOLBF, 0);
                continue;
            }
            r = child < 0 ? -errno : child;
        } else if (!strcmp(op, "exit")) {
            return 0;
        } else {
            r = -EINVAL;
        }
    reply:
        printf("%lld\n", r);
    }
    return 0;
}
