/* A parent and a child over Unix socket pairs, stream and datagram, with
 * messages queued both ways at any moment:
 *   sockpair OUT GATE1 GATE2 N        (gates as in job.c, in the parent)
 * Datagrams have varying sizes: their boundaries must survive.  Deterministic. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gated.h"

#define AHEAD 6

static void send_dgram(int fd, uint64_t i)
{
    char buf[512];
    size_t len = 8 + (i * 37) % 400;
    memset(buf, (int)(i & 0xff), len);
    memcpy(buf, &i, 8);
    if (send(fd, buf, len, 0) != (ssize_t)len) _exit(3);
}

int main(int argc, char **argv)
{
    int n = atoi(argv[4]);
    int st[2], dg[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, st) || socketpair(AF_UNIX, SOCK_DGRAM, 0, dg)) return 1;
    pid_t c = fork();
    if (c == 0) {
        close(st[0]); close(dg[0]);
        uint64_t v, h = 7;
        char buf[512];
        while (xread(st[1], &v, 8)) {
            ssize_t len = recv(dg[1], buf, sizeof buf, 0);
            uint64_t id;
            memcpy(&id, buf, 8);
            h = h * 1099511628211ull ^ v ^ ((uint64_t)len << 32) ^ id;
            if (write(st[1], &h, 8) != 8) _exit(4);
        }
        _exit(0);
    }
    close(st[1]); close(dg[1]);
    FILE *out = fopen(argv[1], "w");
    uint64_t sent = 0, h;
    for (; sent < AHEAD; sent++) { if (write(st[0], &sent, 8) != 8) return 2; send_dgram(dg[0], sent); }
    for (int i = 0; i < n; i++) {
        if (i == n / 2) gate(argv[2]);
        if (i == n / 2 + 5) gate(argv[3]);
        if (!xread(st[0], &h, 8)) return 3;
        fprintf(out, "%d %016llx\n", i, (unsigned long long)h);
        fflush(out);
        if (write(st[0], &sent, 8) != 8) return 2;
        send_dgram(dg[0], sent++);
    }
    shutdown(st[0], SHUT_WR);
    while (xread(st[0], &h, 8)) {}
    int status;
    waitpid(c, &status, 0);
    fprintf(out, "done child %d\n", WEXITSTATUS(status));
    fclose(out);
    return 0;
}
