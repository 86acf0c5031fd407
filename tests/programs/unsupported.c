/* A process holding one resource incr cannot checkpoint yet:
 *   unsupported KIND READYFILE
 * KIND: io_uring, perf_event, packet, seccomp-strict.  Writes the descriptor number (or
 * -1) to READYFILE, then waits until killed (in strict mode: in a read that never returns). */
#define _GNU_SOURCE
#include <linux/filter.h>
#include <linux/io_uring.h>
#include <linux/if_ether.h>
#include <linux/perf_event.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static int make(const char *kind)
{
    if (strcmp(kind, "io_uring") == 0) {
        struct io_uring_params p;
        memset(&p, 0, sizeof p);
        return (int)syscall(SYS_io_uring_setup, 4, &p);
    }
    if (strcmp(kind, "perf_event") == 0) {
        struct perf_event_attr a;
        memset(&a, 0, sizeof a);
        a.type = PERF_TYPE_SOFTWARE;
        a.size = sizeof a;
        a.config = PERF_COUNT_SW_TASK_CLOCK;
        return (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
    }
    if (strcmp(kind, "packet") == 0)
        return socket(AF_PACKET, SOCK_DGRAM, 0);
    return -3;
}

int main(int argc, char **argv)
{
    if (argc != 3) { fprintf(stderr, "usage: unsupported KIND READYFILE\n"); return 2; }
    if (strcmp(argv[1], "seccomp-strict") == 0) {
        int p[2];
        char c;
        FILE *f = fopen(argv[2], "w");
        if (pipe(p) || !f) return 1;
        fprintf(f, "-1\n");
        fclose(f);
        if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT)) return 1;
        for (;;) (void)!read(p[0], &c, 1);      /* no other call is allowed now */
    }
    int fd = make(argv[1]);
    if (fd < -1) { perror(argv[1]); return 1; }
    FILE *f = fopen(argv[2], "w");
    fprintf(f, "%d\n", fd);
    fclose(f);
    for (;;) pause();
}
