/* The acceptance job: a deterministic computation over several kinds of
 * memory, an output file written every iteration, a signal handler and a
 * blocked (pending) signal.  It stops at two gates, files it polls for while
 * spinning, so a test can checkpoint or kill it at a known point:
 *   job OUT DATA GATE1 GATE2 N
 * lines 0..N/2-1, wait for GATE1, lines up to N/2+4, wait for GATE2, the rest.
 * Nothing in its output depends on time, PID or addresses. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define BIG (32u << 20)
#define NSMALL 256

static volatile sig_atomic_t usr1_count, usr2_count;
static void on_usr1(int s) { (void)s; usr1_count++; }
static void on_usr2(int s) { (void)s; usr2_count++; }

static uint64_t fnv(const unsigned char *p, size_t n, uint64_t h)
{
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static void gate(const char *path)
{
    volatile uint64_t spin = 0;
    while (access(path, F_OK) != 0)
        for (int i = 0; i < 200000; i++) spin += i;   /* busy: checkpoints land in user code too */
}

int main(int argc, char **argv)
{
    if (argc != 6) { fprintf(stderr, "usage: job OUT DATA GATE1 GATE2 N\n"); return 2; }
    int n = atoi(argv[5]);
    FILE *out = fopen(argv[1], "w");
    int dfd = open(argv[2], O_RDONLY);
    struct stat st;
    if (!out || dfd < 0 || fstat(dfd, &st)) { perror("open"); return 1; }
    unsigned char *data = mmap(NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, dfd, 0);
    unsigned char *big = mmap(NULL, BIG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    unsigned char *small[NSMALL];
    for (int i = 0; i < NSMALL; i++) { small[i] = malloc(1000 + i); memset(small[i], i, 1000 + i); }
    for (size_t i = 0; i < BIG; i += 8) *(uint64_t *)(big + i) = i * 0x9E3779B97F4A7C15ull;
    struct sigaction sa = { .sa_handler = on_usr2, .sa_flags = SA_RESTART };
    sigaction(SIGUSR2, &sa, NULL);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, NULL);
    raise(SIGUSR1);                       /* stays pending until the very end */
    double x = 1.0;
    for (int it = 0; it < n; it++) {
        if (it == n / 2) gate(argv[3]);
        if (it == n / 2 + 5) gate(argv[4]);
        for (size_t i = (size_t)it * 4096 % BIG; i < BIG; i += 65536) big[i] += (unsigned char)it;
        data[(size_t)it * 97 % st.st_size] ^= (unsigned char)(it + 1);
        small[it % NSMALL] = realloc(small[it % NSMALL], 1000 + it);
        memset(small[it % NSMALL], it, 1000 + it);
        raise(SIGUSR2);
        x = x * 1.000001 + 1.0 / (it + 1);
        sigset_t cur;
        sigprocmask(SIG_BLOCK, NULL, &cur);
        uint64_t h = fnv(big, BIG, 1469598103934665603ull);
        h = fnv(data, st.st_size, h);
        for (int i = 0; i < NSMALL; i++) h = fnv(small[i], 8, h);
        fprintf(out, "it %d x %.12f hash %016llx usr2 %d usr1_blocked %d\n", it, x, (unsigned long long)h,
                (int)usr2_count, sigismember(&cur, SIGUSR1));
        fflush(out);
    }
    sigprocmask(SIG_UNBLOCK, &usr1, NULL);
    fprintf(out, "done usr1 %d usr2 %d\n", (int)usr1_count, (int)usr2_count);
    fclose(out);
    return 0;
}
