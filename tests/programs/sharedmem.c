/* Two processes sharing memory four ways: a MAP_SHARED|MAP_ANONYMOUS region,
 * a memfd (mapped by both, its descriptor kept open), a /dev/shm file, and a
 * System V segment (removed with IPC_RMID once attached, as is usual).
 *   sharedmem OUT GATE1 GATE2 N SHMNAME
 * Each round the parent writes a value in each region, the child (in lock
 * step over a pipe) reads them back and transforms them in place; the parent
 * prints what it finds.  Deterministic. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gated.h"

#define SZ (4u << 20)

int main(int argc, char **argv)
{
    int n = atoi(argv[4]);
    uint64_t *anon = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    int mfd = memfd_create("incr-test", MFD_CLOEXEC);
    if (ftruncate(mfd, SZ)) return 1;
    uint64_t *mem = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
    char path[256];
    snprintf(path, sizeof path, "/dev/shm/%s", argv[5]);
    int sfd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (ftruncate(sfd, SZ)) return 1;
    uint64_t *dev = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_SHARED, sfd, 0);
    close(sfd);
    int shmid = shmget(IPC_PRIVATE, SZ, IPC_CREAT | 0600);
    uint64_t *sv = shmat(shmid, NULL, 0);
    if (sv == (void *)-1) return 1;
    shmctl(shmid, IPC_RMID, NULL);
    int go[2], back[2];
    if (pipe(go) || pipe(back)) return 1;
    pid_t c = fork();
    if (c == 0) {
        char t;
        close(go[1]);
        close(back[0]);
        while (read(go[0], &t, 1) == 1) {
            for (size_t i = 0; i < SZ / 8; i += 4096 / 8 * 7) {
                anon[i] = anon[i] * 3 + 1;
                mem[i] = mem[i] ^ 0x5555;
                dev[i] = dev[i] + anon[i];
                sv[i] = sv[i] * 5 + dev[i];
            }
            if (write(back[1], "x", 1) != 1) _exit(2);
        }
        _exit(0);
    }
    close(go[0]);
    close(back[1]);
    FILE *out = fopen(argv[1], "w");
    for (int it = 0; it < n; it++) {
        if (it == n / 2) gate(argv[2]);
        if (it == n / 2 + 5) gate(argv[3]);
        for (size_t i = 0; i < SZ / 8; i += 4096 / 8 * 7) { anon[i] += it; mem[i] += 2 * it; dev[i] ^= it; sv[i] += 3; }
        char t = 'g';
        if (write(go[1], &t, 1) != 1 || read(back[0], &t, 1) != 1) return 3;
        uint64_t h = 0;
        for (size_t i = 0; i < SZ / 8; i += 4096 / 8 * 7) h = h * 31 + anon[i] + 7 * mem[i] + 13 * dev[i] + 17 * sv[i];
        fprintf(out, "%d %016llx\n", it, (unsigned long long)h);
        fflush(out);
    }
    close(go[1]);
    int st;
    waitpid(c, &st, 0);
    fprintf(out, "done %d\n", WEXITSTATUS(st));
    fclose(out);
    unlink(path);
    return 0;
}
