/* Two processes talking over named FIFOs, records always in flight:
 *   fifo OUT GATE1 GATE2 N DIR
 * DIR/down carries numbered records from the parent to the child (several
 * queued), DIR/up the child's running sums back; the parent writes one line
 * per round-trip to OUT.  DIR/stash is opened O_RDWR by the parent alone
 * and holds bytes it wrote at the start and reads back at the end.  Gates
 * (as in job.c) stop the parent while bytes sit in every FIFO.
 * Deterministic output. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gated.h"

#define AHEAD 8
#define STASH 3000

static int open_fifo(const char *dir, const char *name, int flags)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (mkfifo(path, 0600) != 0 && access(path, F_OK) != 0) _exit(4);
    int fd = open(path, flags);
    if (fd < 0) _exit(5);
    return fd;
}

int main(int argc, char **argv)
{
    if (argc != 6) { fprintf(stderr, "usage: fifo OUT GATE1 GATE2 N DIR\n"); return 2; }
    int n = atoi(argv[4]);
    const char *dir = argv[5];
    char path[4096];
    snprintf(path, sizeof path, "%s/down", dir); mkfifo(path, 0600);
    snprintf(path, sizeof path, "%s/up", dir); mkfifo(path, 0600);
    pid_t child = fork();
    if (child == 0) {                           /* down -> running sum -> up */
        int down = open_fifo(dir, "down", O_RDONLY), up = open_fifo(dir, "up", O_WRONLY);
        uint64_t v, sum = 0;
        while (xread(down, &v, sizeof v)) { sum = sum * 31 + v * 2654435761u; xwrite(up, &sum, sizeof sum); }
        _exit(0);
    }
    int down = open_fifo(dir, "down", O_WRONLY), up = open_fifo(dir, "up", O_RDONLY);
    int stash = open_fifo(dir, "stash", O_RDWR);
    unsigned char kept[STASH], back[STASH];
    for (int i = 0; i < STASH; i++) kept[i] = (unsigned char)(i * 7 + 3);
    xwrite(stash, kept, sizeof kept);
    FILE *out = fopen(argv[1], "w");
    uint64_t sent = 0, got, v;
    for (; sent < AHEAD; sent++) xwrite(down, &sent, sizeof sent);
    for (int i = 0; i < n; i++) {
        if (i == n / 2) gate(argv[2]);          /* AHEAD records in flight in the FIFOs */
        if (i == n / 2 + 5) gate(argv[3]);
        if (!xread(up, &got, sizeof got)) return 6;
        fprintf(out, "%d %016llx\n", i, (unsigned long long)got);
        fflush(out);
        v = sent++;
        xwrite(down, &v, sizeof v);
    }
    close(down);
    while (xread(up, &got, sizeof got)) {}
    int st;
    waitpid(child, &st, 0);
    int same = xread(stash, back, sizeof back) && memcmp(kept, back, sizeof back) == 0;
    fprintf(out, "done child exit %d, stash %s\n", WEXITSTATUS(st), same ? "intact" : "LOST");
    fclose(out);
    return 0;
}
