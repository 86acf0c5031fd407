/* shm: a multi-process job: a parent and 2 children sharing a
 * MAP_SHARED|MAP_ANONYMOUS region, each with private memory too.
 *   shm RUN_DIR SIZE_MIB SEED [PERMILLE_PER_S=10]
 * Half of SIZE_MIB is the shared region, one half of it rewritten by each
 * child; each of the three processes has a sixth of SIZE_MIB of its own.
 * Every process reads random pages of the shared region and of its own (an
 * iteration is a page read; progress is the sum over the processes) and
 * rewrites PERMILLE_PER_S / 1000 of what it writes per second.
 *
 * Self-check (asked through the first shared page): each child checks its
 * private memory and its half of the shared region against its own (private)
 * table of generations, posts a digest of that table and stops writing; the
 * parent then checks its private memory and reads every shared page, which
 * must be whole and must carry the generations the child's digest says: a
 * child that cannot be reached through the region, or a shared page the
 * parent sees otherwise than its writer, is a bad verdict. */
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "wl.h"

#define CHILDREN 2

struct slot {
    _Alignas(64) _Atomic uint64_t iterations;
    _Atomic uint64_t ack;               /* the last check request this child answered */
    _Atomic int setup_done;
    uint64_t digest;                    /* of the child's generations, for the parent to compare */
    char result[256];                   /* "" or what the child found wrong */
};

struct ctl {
    struct slot slot[CHILDREN + 1];     /* the parent's is the last */
    _Alignas(64) _Atomic uint64_t request;
    _Atomic uint64_t release;
};

static struct ctl *ctl;
static struct wl_region half[CHILDREN], own;
static pid_t child_pid[CHILDREN];
static char child_gone[CHILDREN][128];

static uint64_t total_iterations(void)
{
    uint64_t n = 0;
    for (int i = 0; i <= CHILDREN; i++) n += atomic_load_explicit(&ctl->slot[i].iterations, memory_order_relaxed);
    return n;
}

static uint64_t digest_of(const struct wl_region *r, size_t i, uint64_t gen) { return wl_mix(r->tag ^ ((uint64_t)i << 32) ^ gen); }

/* One batch of iterations: random reads of the shared region and of our own memory. */
static uint64_t read_batch(uint64_t *rng)
{
    uint64_t d = 0;
    for (int b = 0; b < 32; b++) {
        const struct wl_region *h = &half[wl_next(rng) & 1];
        d += wl_read_page(h, wl_next(rng) % h->pages);
        d += wl_read_page(&own, wl_next(rng) % own.pages);
    }
    return d;
}

static void child_answer(int c, uint64_t request)
{
    struct slot *s = &ctl->slot[c];
    char why[256];
    s->result[0] = 0;
    if (wl_verify_region(&own, why, sizeof why) || wl_verify_region(&half[c], why, sizeof why))
        snprintf(s->result, sizeof s->result, "child %d: %.200s", c, why);
    uint64_t d = 0;
    for (size_t i = 0; i < half[c].pages; i++) d += digest_of(&half[c], i, half[c].gen[i]);
    s->digest = d;
    atomic_store(&s->ack, request);
    while (atomic_load(&ctl->release) != request) usleep(100);
}

static void child_main(int c, pid_t parent, double permille)
{
    close(wl.progress_fd);
    close(wl.stalls_fd);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    half[c].gen = calloc(half[c].pages, sizeof *half[c].gen);      /* private: what this child wrote there */
    own = wl_region_new(wl.size_mib * 256 / 6, 20 + (uint64_t)c, WL_MIXED, "private", 0);
    wl_fill_region(&own);
    atomic_store(&ctl->slot[c].setup_done, 1);
    struct wl_pacer mine, shared;
    wl_pacer_init(&mine, &own, permille);
    wl_pacer_init(&shared, &half[c], permille);
    uint64_t rng = wl_mix(wl.seed ^ (uint64_t)c) | 1, iterations = 0, last = 0;
    for (;;) {
        wl_sink = read_batch(&rng);
        iterations += 64;
        atomic_store_explicit(&ctl->slot[c].iterations, iterations, memory_order_relaxed);
        wl_pacer_run(&mine);
        wl_pacer_run(&shared);
        uint64_t request = atomic_load_explicit(&ctl->request, memory_order_acquire);
        if (request != last) child_answer(c, last = request);
    }
}

static void reap_children(void)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        for (int c = 0; c < CHILDREN; c++)
            if (pid == child_pid[c])
                snprintf(child_gone[c], sizeof child_gone[c], "child %d (PID %d) ended (wait status %#x)", c, pid, status);
}

/* The parent's side of a check; NULL when everything is right. */
static const char *parent_check(char *why, size_t len)
{
    uint64_t request = atomic_load(&ctl->request) + 1;
    atomic_store(&ctl->request, request);
    double deadline = wl_now() + 20;
    for (int c = 0; c < CHILDREN; c++)
        while (atomic_load(&ctl->slot[c].ack) != request) {
            reap_children();
            if (child_gone[c][0]) return child_gone[c];
            if (wl_now() > deadline) {
                snprintf(why, len, "child %d (PID %d) does not answer through the shared region", c, child_pid[c]);
                return why;
            }
            usleep(100);
        }
    const char *bad = NULL;
    static uint64_t expect[WL_WORDS];
    for (int c = 0; c < CHILDREN && !bad; c++) {
        if (ctl->slot[c].result[0]) {
            snprintf(why, len, "%s", ctl->slot[c].result);
            bad = why;
            break;
        }
        uint64_t d = 0;
        for (size_t i = 0; i < half[c].pages && !bad; i++) {
            uint64_t gen = half[c].mem[i * WL_WORDS + 1];
            wl_page_content(&half[c], i, (uint32_t)gen, expect);
            if (wl_page_bad(&half[c], i, expect, why, len)) bad = why;
            d += digest_of(&half[c], i, gen);
        }
        if (!bad && d != ctl->slot[c].digest) {
            snprintf(why, len, "the parent sees other generations in shared half %d than child %d wrote there", c, c);
            bad = why;
        }
    }
    if (!bad && wl_verify_region(&own, why, len)) bad = why;
    atomic_store(&ctl->release, request);
    return bad;
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    double permille = wl.extra ? atof(wl.extra) : 10.0;
    size_t shared_pages = wl.size_mib * 256 / 2, table = (shared_pages * sizeof(uint32_t) + WL_PAGE - 1) / WL_PAGE;
    char *base = wl_map((1 + table + shared_pages) * WL_PAGE, 1);
    ctl = (struct ctl *)base;
    uint32_t *setup_gen = calloc(shared_pages, sizeof *setup_gen);
    if (!setup_gen) wl_die("out of memory");
    for (int c = 0; c < CHILDREN; c++) {
        size_t lo = shared_pages * (size_t)c / CHILDREN, hi = shared_pages * (size_t)(c + 1) / CHILDREN;
        half[c] = (struct wl_region){.mem = (uint64_t *)(base + (1 + table + lo) * WL_PAGE), .pages = hi - lo,
                                     .gen = setup_gen + lo, .tag = 10 + (uint64_t)c, .kind = WL_MIXED, .name = "shared"};
        wl_fill_region(&half[c]);
    }
    pid_t parent = getpid();
    for (int c = 0; c < CHILDREN; c++) {
        child_pid[c] = fork();
        if (child_pid[c] < 0) wl_die("fork: %s", strerror(errno));
        if (child_pid[c] == 0) child_main(c, parent, permille);
    }
    own = wl_region_new(wl.size_mib * 256 / 6, 20 + CHILDREN, WL_MIXED, "private", 0);
    wl_fill_region(&own);
    for (int c = 0; c < CHILDREN; c++)
        while (!atomic_load(&ctl->slot[c].setup_done)) {
            reap_children();
            if (child_gone[c][0]) wl_die("%s during setup", child_gone[c]);
            usleep(1000);
        }
    wl.count = total_iterations;
    wl_ready();
    struct wl_pacer pacer;
    wl_pacer_init(&pacer, &own, permille);
    uint64_t rng = wl_mix(wl.seed ^ CHILDREN) | 1, iterations = 0;
    char why[512];
    for (;;) {
        wl_sink = read_batch(&rng);
        iterations += 64;
        atomic_store_explicit(&ctl->slot[CHILDREN].iterations, iterations, memory_order_relaxed);
        wl_pacer_run(&pacer);
        if ((iterations & 0xffff) == 0) reap_children();
        if (wl_check_wanted()) wl_verdict(parent_check(why, sizeof why));
    }
}
