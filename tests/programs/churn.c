/* A job whose processes and threads come and go all the time:
 *   churn OUT STOP MAX
 * Each iteration forks a child that exits with a status computed from the
 * iteration, and starts a thread that computes another value; the parent
 * joins and reaps both and writes one line.  It stops after MAX iterations,
 * or at the first iteration that finds the file STOP, and says where:
 * `churn OUT2 /nonexistent I` then writes the same bytes. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void *work(void *arg)
{
    uint64_t i = (uint64_t)(uintptr_t)arg, h = i * 0x9E3779B97F4A7C15ull;
    for (int k = 0; k < 200; k++) h = (h ^ (h >> 29)) * 0xBF58476D1CE4E5B9ull;
    return (void *)(uintptr_t)(h & 0xFFFF);
}

int main(int argc, char **argv)
{
    if (argc != 4) { fprintf(stderr, "usage: churn OUT STOP MAX\n"); return 2; }
    FILE *out = fopen(argv[1], "w");
    long max = atol(argv[3]), i;
    uint64_t acc = 0;
    for (i = 0; i < max && access(argv[2], F_OK) != 0; i++) {
        pid_t child = fork();
        if (child < 0) return 3;
        if (child == 0) {
            volatile uint64_t spin = 0;
            for (int k = 0; k < 20000; k++) spin += k;
            _exit((int)((i * 37 + 11) & 0x7F));
        }
        pthread_t t;
        void *r;
        if (pthread_create(&t, NULL, work, (void *)(uintptr_t)i) || pthread_join(t, &r)) return 4;
        int st;
        if (waitpid(child, &st, 0) != child || !WIFEXITED(st)) return 5;
        acc = acc * 1000003 + (uint64_t)WEXITSTATUS(st) + (uint64_t)(uintptr_t)r;
        fprintf(out, "%ld %016llx\n", i, (unsigned long long)acc);
        fflush(out);
    }
    fprintf(out, "done at %ld\n", i);
    fclose(out);
    return 0;
}
