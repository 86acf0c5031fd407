/* What every benchmark workload shares: its command line, the RUN_DIR protocol
 * that incr/bench/workloads.py reads, the 1 ms probe thread, and pages whose
 * whole content is a function of (seed, region, index, generation), so that a
 * self-check can recompute every byte.
 *
 *   PROG RUN_DIR SIZE_MIB SEED [EXTRA]
 *
 * RUN_DIR/ready     "PID\n" once setup is done (all memory touched)
 * RUN_DIR/progress  the iteration count, 20 digits + "\n", rewritten in place every 50 ms
 * RUN_DIR/stalls    "END_EPOCH_S GAP_MS\n" whenever the probe's 1 ms sleep took over 2 ms
 * RUN_DIR/check     created by the harness: the job verifies its whole state, unlinks
 *                   it and writes RUN_DIR/verdict: "ok ITERATIONS\n" or "bad WHAT\n"
 *
 * Only `progress` and `stalls` stay open: a restore cuts a file the job holds
 * open back to its size at the checkpoint, which is harmless for these two
 * (and CRIU, which refuses to restore a file whose size changed, leaves
 * O_WRONLY|O_APPEND files such as `stalls` unchecked; `progress` keeps its
 * 21 bytes). */
#ifndef INCR_BENCH_WL_H
#define INCR_BENCH_WL_H
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define WL_PAGE 4096
#define WL_WORDS (WL_PAGE / 8)

struct wl_job {
    const char *dir;
    size_t size_mib;
    uint64_t seed;
    const char *extra;                  /* argv[4] or NULL */
    int progress_fd, stalls_fd;
    char check_path[4096];
    _Atomic uint64_t iterations;        /* what `progress` shows, unless `count` is set */
    uint64_t (*count)(void);            /* the shm job sums its processes' counters */
    _Atomic int check_wanted;           /* set by the probe when `check` appears */
};

static struct wl_job wl;

static inline void wl_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static inline void wl_path(char *out, size_t len, const char *name)
{
    if ((size_t)snprintf(out, len, "%s/%s", wl.dir, name) >= len) wl_die("run dir path too long");
}

static inline void wl_init(int argc, char **argv)
{
    if (argc < 4) wl_die("usage: %s RUN_DIR SIZE_MIB SEED [EXTRA]", argv[0]);
    wl.dir = argv[1];
    wl.size_mib = strtoul(argv[2], NULL, 10);
    wl.seed = strtoull(argv[3], NULL, 10);
    wl.extra = argc > 4 ? argv[4] : NULL;
    if (wl.size_mib < 1) wl_die("SIZE_MIB must be at least 1");
    char p[4096];
    wl_path(p, sizeof p, "progress");
    wl.progress_fd = open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    wl_path(p, sizeof p, "stalls");
    wl.stalls_fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (wl.progress_fd < 0 || wl.stalls_fd < 0) wl_die("%s: %s", p, strerror(errno));
    wl_path(wl.check_path, sizeof wl.check_path, "check");
}

static inline uint64_t wl_iterations(void)
{
    return wl.count ? wl.count() : atomic_load_explicit(&wl.iterations, memory_order_relaxed);
}

static inline void wl_set_iterations(uint64_t n)
{
    atomic_store_explicit(&wl.iterations, n, memory_order_relaxed);
}

static inline void wl_write_progress(void)
{
    char line[32];
    snprintf(line, sizeof line, "%020llu\n", (unsigned long long)wl_iterations());
    if (pwrite(wl.progress_fd, line, 21, 0) != 21) { /* a full disk: the harness sees no progress */ }
}

static inline double wl_seconds(const struct timespec *t) { return (double)t->tv_sec + (double)t->tv_nsec * 1e-9; }

static inline double wl_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return wl_seconds(&t);
}

/* The probe: sleeps 1 ms at a time; a wake-up more than 2 ms after the previous
 * one is a stall the job saw (a freeze, a restore, a descheduling).  It also
 * publishes the progress and notices `check`, so that neither costs the
 * computing threads anything. */
static inline void *wl_probe(void *unused)
{
    (void)unused;
    const struct timespec ms = {0, 1000000};
    struct timespec prev, now;
    clock_gettime(CLOCK_MONOTONIC, &prev);
    double last_progress = 0, last_check = 0;
    for (;;) {
        clock_nanosleep(CLOCK_MONOTONIC, 0, &ms, NULL);
        clock_gettime(CLOCK_MONOTONIC, &now);
        double gap_ms = (wl_seconds(&now) - wl_seconds(&prev)) * 1e3;
        prev = now;
        if (gap_ms > 2.0) {
            struct timespec rt;
            clock_gettime(CLOCK_REALTIME, &rt);
            char line[64];
            int n = snprintf(line, sizeof line, "%.6f %.3f\n", wl_seconds(&rt), gap_ms);
            if (write(wl.stalls_fd, line, (size_t)n) != n) { /* a full disk: a stall unrecorded */ }
        }
        double t = wl_seconds(&now);
        if (t - last_progress >= 0.05) {
            wl_write_progress();
            last_progress = t;
        }
        if (t - last_check >= 0.01) {
            last_check = t;
            if (!atomic_load(&wl.check_wanted) && access(wl.check_path, F_OK) == 0)
                atomic_store(&wl.check_wanted, 1);
        }
    }
    return NULL;
}

/* Setup is complete: start the probe, then say so in `ready` (renamed into place: never half-read). */
static inline void wl_ready(void)
{
    wl_write_progress();
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 << 10);
    if (pthread_create(&t, &attr, wl_probe, NULL) != 0) wl_die("pthread_create failed");
    char tmp[4096], path[4096];
    wl_path(tmp, sizeof tmp, "ready.tmp");
    wl_path(path, sizeof path, "ready");
    FILE *f = fopen(tmp, "w");
    if (!f) wl_die("%s: %s", tmp, strerror(errno));
    fprintf(f, "%d\n", getpid());
    if (fclose(f) != 0 || rename(tmp, path) != 0) wl_die("%s: %s", path, strerror(errno));
}

static inline int wl_check_wanted(void) { return atomic_load_explicit(&wl.check_wanted, memory_order_relaxed); }

/* The answer to `check`: WHY is NULL for "ok ITERATIONS", else the reason for "bad". */
static inline void wl_verdict(const char *why)
{
    char tmp[4096], path[4096], line[600];
    unlink(wl.check_path);          /* before the flag drops, so that the probe cannot see it again */
    atomic_store(&wl.check_wanted, 0);
    int n = why ? snprintf(line, sizeof line, "bad %.580s\n", why)
                : snprintf(line, sizeof line, "ok %llu\n", (unsigned long long)wl_iterations());
    wl_path(tmp, sizeof tmp, "verdict.tmp");
    wl_path(path, sizeof path, "verdict");
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return;
    if (write(fd, line, (size_t)n) != n) { /* the harness times out and says so */ }
    close(fd);
    rename(tmp, path);
}

static inline void *wl_map(size_t bytes, int shared)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) wl_die("mmap of %zu bytes: %s", bytes, strerror(errno));
    return p;
}

/* ---- pseudo-random numbers (deterministic given the seed) ---- */

static inline uint64_t wl_mix(uint64_t x)            /* splitmix64's finaliser */
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static inline uint64_t wl_next(uint64_t *s)          /* xorshift64 */
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* ---- pages whose content is a function of (seed, region tag, index, generation) ----
 * word 0: index, word 1: generation, words 2..511: the body.  Kinds of body:
 * WL_MIXED   by place in the region, like HPC data: the first 40 % a smooth
 *            float64 field, the next 30 % noisy float64, the last 30 % int64;
 * WL_NOISY   noisy float64 throughout (zstd cannot shrink it);
 * WL_ZEROS   every 32nd page data (as WL_MIXED's int64), every other page zero. */
enum wl_kind { WL_MIXED, WL_NOISY, WL_ZEROS };

struct wl_region {
    uint64_t *mem;
    size_t pages;
    uint32_t *gen;              /* bookkeeping: the generation each page must hold */
    uint64_t tag;               /* tells regions of one job apart */
    enum wl_kind kind;
    const char *name;
};

static inline int wl_is_zero_page(const struct wl_region *r, size_t i) { return r->kind == WL_ZEROS && i % 32 != 0; }

static inline void wl_page_content(const struct wl_region *r, size_t i, uint32_t gen, uint64_t *out)
{
    if (wl_is_zero_page(r, i)) {
        memset(out, 0, WL_PAGE);
        return;
    }
    uint64_t key = wl_mix(wl.seed ^ wl_mix(r->tag ^ wl_mix(((uint64_t)i << 20) ^ gen)));
    out[0] = i;
    out[1] = gen;
    double *d = (double *)out;
    int64_t *n = (int64_t *)out;
    int which = r->kind == WL_NOISY ? 1 : r->kind == WL_ZEROS ? 2 : i * 10 < r->pages * 4 ? 0 : i * 10 < r->pages * 7 ? 1 : 2;
    if (which == 0) {                   /* smooth: a parabola through the field's value here */
        double x = (double)i * 1e-3, a = 273.15 + 300.0 * sin(x) + gen * 1e-3, b = 1e-3 * cos(x), c = 1e-7 * sin(3 * x + gen);
        for (int k = 2; k < WL_WORDS; k++) d[k] = a + b * k + c * k * k;
    } else if (which == 1) {
        uint64_t s = key | 1;
        for (int k = 2; k < WL_WORDS; k++) d[k] = (double)(wl_next(&s) >> 11) * 0x1.0p-53;
    } else {
        for (int k = 2; k < WL_WORDS; k++) n[k] = ((int64_t)i * WL_WORDS + k) * 3 + gen;
    }
}

static inline void wl_write_page(struct wl_region *r, size_t i, uint32_t gen)
{
    r->gen[i] = gen;
    wl_page_content(r, i, gen, r->mem + i * WL_WORDS);
}

static inline void wl_fill_region(struct wl_region *r)
{
    for (size_t i = 0; i < r->pages; i++) wl_write_page(r, i, 0);
}

/* Says in WHY what is wrong with page I (index and generation it holds, if any); 0 when right. */
static inline int wl_page_bad(const struct wl_region *r, size_t i, const uint64_t *expect, char *why, size_t len)
{
    const uint64_t *p = r->mem + i * WL_WORDS;
    if (memcmp(p, expect, WL_PAGE) == 0) return 0;
    int k = 0;
    while (p[k] == expect[k]) k++;
    if (wl_is_zero_page(r, i))
        snprintf(why, len, "%s page %zu of %zu: must be zero, word %d is %#llx", r->name, i, r->pages, k,
                 (unsigned long long)p[k]);
    else
        snprintf(why, len, "%s page %zu of %zu: holds index %llu generation %llu, must be generation %llu (word %d differs)",
                 r->name, i, r->pages, (unsigned long long)p[0], (unsigned long long)p[1], (unsigned long long)expect[1], k);
    return 1;
}

/* Every page against the generation the bookkeeping gives it; 0 when all are right. */
static inline int wl_verify_region(const struct wl_region *r, char *why, size_t len)
{
    static uint64_t expect[WL_WORDS];
    for (size_t i = 0; i < r->pages; i++) {
        wl_page_content(r, i, r->gen[i], expect);
        if (wl_page_bad(r, i, expect, why, len)) return 1;
    }
    return 0;
}

/* Reads one page (a solver's memory-bound inner step) and returns a digest of it. */
static inline uint64_t wl_read_page(const struct wl_region *r, size_t i)
{
    const uint64_t *p = r->mem + i * WL_WORDS;
    uint64_t s = 0;
    for (int k = 0; k < WL_WORDS; k += 4) s += p[k] ^ p[k + 1] ^ p[k + 2] ^ p[k + 3];
    return s;
}

/* ---- rewriting a fixed fraction of a region per second, at random places ---- */

struct wl_pacer {
    struct wl_region *r;
    double per_second;          /* pages to rewrite per second */
    double start;
    uint64_t done;
    uint64_t rng;
};

static inline void wl_pacer_init(struct wl_pacer *p, struct wl_region *r, double permille_per_s)
{
    p->r = r;
    p->per_second = permille_per_s / 1000.0 * (double)r->pages;
    p->start = wl_now();
    p->done = 0;
    p->rng = wl_mix(wl.seed ^ r->tag ^ 0x5ca1ab1e) | 1;
}

/* Rewrites the pages due by now.  A job that was stopped (a freeze, the time
 * between a kill and a restore) does not rewrite the whole backlog at once:
 * more than a second behind (or with a clock gone back, restored on another
 * machine), it starts counting again from now. */
static inline void wl_pacer_run(struct wl_pacer *p)
{
    if (p->per_second <= 0) return;
    double t = wl_now();
    double due = (t - p->start) * p->per_second;
    if (due < (double)p->done - 1 || due - (double)p->done > p->per_second + 64) {
        p->start = t - (double)p->done / p->per_second;
        return;
    }
    size_t data_pages = p->r->kind == WL_ZEROS ? (p->r->pages + 31) / 32 : p->r->pages;
    while ((double)p->done + 1 <= due) {
        size_t i = (size_t)(wl_next(&p->rng) % data_pages);
        if (p->r->kind == WL_ZEROS) i *= 32;
        wl_write_page(p->r, i, p->r->gen[i] + 1);
        p->done++;
    }
}

/* The loop of the paced jobs (sparse, zeros, noisy): an iteration reads one
 * page at random (memory-bound work that tracking does not slow down);
 * between batches of iterations the pages due are rewritten. */
static volatile uint64_t wl_sink;      /* keeps the reads from being optimised away */

static inline void wl_run_paced(struct wl_region *r, double permille_per_s)
{
    struct wl_pacer pacer;
    wl_pacer_init(&pacer, r, permille_per_s);
    uint64_t rng = wl_mix(wl.seed ^ r->tag) | 1, iterations = 0, digest = 0;
    char why[512];
    for (;;) {
        for (int b = 0; b < 64; b++) digest += wl_read_page(r, wl_next(&rng) % r->pages);
        iterations += 64;
        wl_sink = digest;
        wl_set_iterations(iterations);
        wl_pacer_run(&pacer);
        if (wl_check_wanted()) wl_verdict(wl_verify_region(r, why, sizeof why) ? why : NULL);
    }
}

static inline struct wl_region wl_region_new(size_t pages, uint64_t tag, enum wl_kind kind, const char *name, int shared)
{
    struct wl_region r = {.pages = pages, .tag = tag, .kind = kind, .name = name};
    r.mem = wl_map(pages * WL_PAGE, shared);
    r.gen = calloc(pages, sizeof *r.gen);
    if (!r.gen) wl_die("out of memory");
    return r;
}

#endif
