/* Incompressible memory that churns deterministically, for the disk-full tests (tests/test_disk_full.py).
 *   randjob REPORT READY PAGES            run: iterate for ever
 *   randjob --reference ITERATIONS PAGES  print "ITERATIONS DIGEST" after ITERATIONS, exit
 * The array of PAGES pages starts filled with pseudo-random words (zstd cannot
 * shrink them: a checkpoint stores about PAGES * 4 KiB), then iteration i XORs
 * K words at places that depend on i only, so the array after i iterations is
 * a function of i.  On SIGUSR1 the running job writes "ITERATION DIGEST" to
 * REPORT (REPORT.tmp, then rename) at the next iteration boundary.  It keeps no
 * descriptor open between reports. */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define K 8
#define WORDS_PER_PAGE 512

static volatile sig_atomic_t report_wanted;
static void on_usr1(int sig) { (void)sig; report_wanted = 1; }

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33; x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static uint64_t *array(uint64_t pages)
{
    uint64_t *a = mmap(NULL, pages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (a == MAP_FAILED) { perror("mmap"); exit(1); }
    for (uint64_t w = 0; w < pages * WORDS_PER_PAGE; w++)
        a[w] = mix(w + 0x9e3779b97f4a7c15ULL);
    return a;
}

static void step(uint64_t *a, uint64_t words, uint64_t i)
{
    for (uint64_t j = 0; j < K; j++) {
        uint64_t h = mix(i * K + j + 1);
        a[h % words] ^= mix(h);
    }
}

static uint64_t digest(const uint64_t *a, uint64_t words)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (uint64_t w = 0; w < words; w++)
        h = (h ^ a[w]) * 0x100000001b3ULL;
    return h;
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "--reference")) {
        uint64_t n = strtoull(argv[2], NULL, 10), pages = strtoull(argv[3], NULL, 10);
        uint64_t *a = array(pages);
        for (uint64_t i = 0; i < n; i++)
            step(a, pages * WORDS_PER_PAGE, i);
        printf("%llu %016llx\n", (unsigned long long)n, (unsigned long long)digest(a, pages * WORDS_PER_PAGE));
        return 0;
    }
    if (argc != 4) { fprintf(stderr, "usage: randjob REPORT READY PAGES | --reference N PAGES\n"); return 2; }
    const char *report = argv[1];
    uint64_t pages = strtoull(argv[3], NULL, 10), words = pages * WORDS_PER_PAGE;
    uint64_t *a = array(pages);
    struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = SA_RESTART };
    sigaction(SIGUSR1, &sa, NULL);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.ready.tmp", argv[2]);
    FILE *r = fopen(tmp, "w");
    fprintf(r, "%d\n", getpid());
    fclose(r);
    rename(tmp, argv[2]);
    snprintf(tmp, sizeof tmp, "%s.tmp", report);
    for (uint64_t i = 0;; i++) {
        if (report_wanted) {
            report_wanted = 0;
            FILE *f = fopen(tmp, "w");
            fprintf(f, "%llu %016llx\n", (unsigned long long)i, (unsigned long long)digest(a, words));
            fclose(f);
            rename(tmp, report);
        }
        step(a, words, i);
        usleep(10000);          /* ~800 pages touched a second: a checkpoint a few seconds later is incremental */
    }
}
