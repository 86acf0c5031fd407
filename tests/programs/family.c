/* A parent and two children talking over pipes, the pipes never empty:
 *   family OUT GATE1 GATE2 N
 * The parent sends numbered records to child A through pipe P1 (keeping
 * several queued); A transforms each and passes it to child B through P2;
 * B sums them and sends the running sum back to the parent through P3; the
 * parent writes one line per round-trip to OUT.  Gates (as in job.c) stop
 * the parent while records sit in every pipe.  One child of the parent has
 * exited and is left a zombie until the end.  Deterministic output. */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gated.h"

#define AHEAD 8

int main(int argc, char **argv)
{
    int n = atoi(argv[4]);
    int p1[2], p2[2], p3[2];
    if (pipe(p1) || pipe(p2) || pipe(p3)) return 1;
    pid_t zombie = fork();
    if (zombie == 0) _exit(7);                  /* never reaped until the end */
    pid_t a = fork();
    if (a == 0) {                               /* A: P1 -> transform -> P2 */
        close(p1[1]); close(p2[0]); close(p3[0]); close(p3[1]);
        uint64_t v;
        while (xread(p1[0], &v, sizeof v)) { v = v * 2654435761u + 17; xwrite(p2[1], &v, sizeof v); }
        _exit(0);
    }
    pid_t b = fork();
    if (b == 0) {                               /* B: P2 -> running sum -> P3 */
        close(p1[0]); close(p1[1]); close(p2[1]); close(p3[0]);
        uint64_t v, sum = 0;
        while (xread(p2[0], &v, sizeof v)) { sum = sum * 31 + v; xwrite(p3[1], &sum, sizeof sum); }
        _exit(0);
    }
    close(p1[0]); close(p2[0]); close(p2[1]); close(p3[1]);
    FILE *out = fopen(argv[1], "w");
    uint64_t sent = 0, got, v;
    for (; sent < AHEAD; sent++) xwrite(p1[1], &sent, sizeof sent);
    for (int i = 0; i < n; i++) {
        if (i == n / 2) gate(argv[2]);          /* AHEAD records in flight across the pipes */
        if (i == n / 2 + 5) gate(argv[3]);
        if (!xread(p3[0], &got, sizeof got)) return 2;
        fprintf(out, "%d %016llx\n", i, (unsigned long long)got);
        fflush(out);
        v = sent++;
        xwrite(p1[1], &v, sizeof v);
    }
    close(p1[1]);
    while (xread(p3[0], &got, sizeof got)) {}
    int st;
    waitpid(a, &st, 0); waitpid(b, &st, 0);
    waitpid(zombie, &st, 0);
    fprintf(out, "done zombie exit %d\n", WEXITSTATUS(st));
    fclose(out);
    return 0;
}
