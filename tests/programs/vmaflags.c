/* Per-VMA attributes and process-wide memory settings, checked after restore.
 *   vmaflags OUT READY GO THP MCL MERGE
 * THP:   what to pass to PR_SET_THP_DISABLE: 0 (leave it), 1 (THP off), 3 (off except where advised)
 * MCL:   mlockall() flags for future mappings: 0, 2 (MCL_FUTURE), 6 (MCL_FUTURE|MCL_ONFAULT)
 * MERGE: 1: PR_SET_MEMORY_MERGE (KSM for every mapping), one mapping then MADV_UNMERGEABLE
 *
 * One mapping per attribute (madvise flags, mlock kinds, MAP_NORESERVE,
 * MAP_GROWSDOWN, MAP_DROPPABLE, guard regions, mseal, read-only and
 * no-access mappings that were never writable).  Before the checkpoint it
 * records the VmFlags line of EVERY mapping in /proc/self/smaps and its
 * Locked: size; after restore each must be the same, contents must be
 * intact (droppable memory: zero, its contents are not resurrected), guard
 * pages must fault and their neighbours must not, a forked child must not
 * see MADV_DONTFORK memory and must see MADV_WIPEONFORK memory zeroed, and
 * prctl() must report the same THP and KSM settings. */
#include "selfcheck.h"
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#ifndef MAP_DROPPABLE
#define MAP_DROPPABLE 0x08
#endif
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#define MADV_GUARD_REMOVE 103
#endif
#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT 1
#endif
#ifndef MCL_ONFAULT
#define MCL_ONFAULT 4
#endif
#ifndef PR_SET_MEMORY_MERGE
#define PR_SET_MEMORY_MERGE 67
#define PR_GET_MEMORY_MERGE 68
#endif
#define SYS_MSEAL 462

#define PG 4096UL
#define MAXMAPS 512

/* ------------------------------------------------------------ smaps */

struct vmainfo { uintptr_t start, end; long locked_kb; char flags[160]; char name[120]; };
static struct vmainfo before[MAXMAPS], after[MAXMAPS];
static int nbefore, nafter;

static int read_smaps(struct vmainfo *out)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    int n = -1;
    if (!f) return 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long s, e;
        int pos = 0;
        if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &s, &e, &pos) == 2 && pos > 0) {
            if (n + 1 >= MAXMAPS) break;
            n++;
            memset(&out[n], 0, sizeof out[n]);
            out[n].start = s;
            out[n].end = e;
            snprintf(out[n].name, sizeof out[n].name, "%.110s", line + pos);
            out[n].name[strcspn(out[n].name, "\n")] = 0;
        } else if (n >= 0 && !strncmp(line, "Locked:", 7)) {
            out[n].locked_kb = atol(line + 7);
        } else if (n >= 0 && !strncmp(line, "VmFlags:", 8)) {
            snprintf(out[n].flags, sizeof out[n].flags, "%.150s", line + 8);
            out[n].flags[strcspn(out[n].flags, "\n")] = 0;
        }
    }
    fclose(f);
    return n + 1;
}

static const struct vmainfo *find(const struct vmainfo *t, int n, const void *addr)
{
    for (int i = 0; i < n; i++)
        if (t[i].start <= (uintptr_t)addr && (uintptr_t)addr < t[i].end) return &t[i];
    return NULL;
}

static int has_flag(const char *flags, const char *mnemonic)
{
    char padded[170];
    snprintf(padded, sizeof padded, " %s ", flags);
    char want[8];
    snprintf(want, sizeof want, " %s ", mnemonic);
    return strstr(padded, want) != NULL;
}

static long status_kb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, strlen(key))) v = atol(line + strlen(key));
    if (f) fclose(f);
    return v;
}

/* ------------------------------------------------------------ regions */

enum { PLAIN, DONTFORK, WIPEONFORK, HUGE, NOHUGE, DONTDUMP, MERGEABLE, UNMERGEABLE, SEQUENTIAL, RANDOM,
       MLOCKED, MAPLOCKED, ONFAULT, NORESERVE, GROWSDOWN, DROPPABLE, GUARD, GUARD_GONE, LOCKED_GUARD,
       READONLY, NOACCESS, WAS_WRITABLE, EMPTIED, SEALED, NREGIONS };

struct region { const char *name; const char *flag; unsigned char *p; size_t pages; int prot; int filled; };
static struct region R[NREGIONS] = {
    [PLAIN] = { "plain", "ac", 0, 4, 0, 1 },
    [DONTFORK] = { "dontfork", "dc", 0, 4, 0, 1 },
    [WIPEONFORK] = { "wipeonfork", "wf", 0, 4, 0, 1 },
    [HUGE] = { "hugepage", "hg", 0, 4, 0, 1 },
    [NOHUGE] = { "nohugepage", "nh", 0, 4, 0, 1 },
    [DONTDUMP] = { "dontdump", "dd", 0, 4, 0, 1 },
    [MERGEABLE] = { "mergeable", "mg", 0, 4, 0, 1 },
    [UNMERGEABLE] = { "unmergeable", "ac", 0, 4, 0, 1 },
    [SEQUENTIAL] = { "sequential", "sr", 0, 4, 0, 1 },
    [RANDOM] = { "random", "rr", 0, 4, 0, 1 },
    [MLOCKED] = { "mlock", "lo", 0, 4, 0, 1 },
    [MAPLOCKED] = { "MAP_LOCKED", "lo", 0, 4, 0, 1 },
    [ONFAULT] = { "mlock2-onfault", "lf", 0, 4, 0, 1 },
    [NORESERVE] = { "noreserve", "nr", 0, 4, 0, 1 },
    [GROWSDOWN] = { "growsdown", "gd", 0, 4, 0, 1 },
    [DROPPABLE] = { "droppable", "dp", 0, 4, 0, 0 },
    [GUARD] = { "guard", "gu", 0, 6, 0, 1 },
    [GUARD_GONE] = { "guard-removed", "gu", 0, 4, 0, 1 },
    [LOCKED_GUARD] = { "locked-guard", "lo", 0, 4, 0, 1 },
    /* never writable, so never charged, yet holding data: written through /proc/self/mem, as a
     * debugger writes (restore writes it the same way, to keep it uncharged) */
    [READONLY] = { "readonly", NULL, 0, 4, PROT_READ, 1 },
    [NOACCESS] = { "noaccess", NULL, 0, 4, PROT_NONE, 0 },
    [WAS_WRITABLE] = { "was-writable", "ac", 0, 4, PROT_READ, 1 },
    /* written, emptied (MADV_DONTNEED), made PROT_NONE: still charged ("ac"), holding no page */
    [EMPTIED] = { "emptied", "ac", 0, 4, PROT_NONE, 1 },
    [SEALED] = { "sealed", "sl", 0, 4, PROT_READ, 1 },
};

static unsigned char seed(int r, size_t page) { return (unsigned char)(0x11 + r * 7 + page * 3); }

static int skipped(int r) { return R[r].p == NULL; }

static int is_guarded_page(int r, size_t page)
{
    return (r == GUARD && (page == 2 || page == 3)) || (r == LOCKED_GUARD && page == 1);
}

/* Written while the job waits (through every checkpoint): the dirty tracker must follow
 * these VMAs.  Each pass stamps every such region with the pass number, in region order. */
static volatile uint64_t passes;

static int stamped(int r)
{
    return !skipped(r) && r != DROPPABLE && r != READONLY && r != NOACCESS && r != WAS_WRITABLE && r != EMPTIED
           && r != SEALED;
}

static void wait_go_writing(void)
{
    while (access(sc_go_path, F_OK) != 0) {
        uint64_t pass = passes + 1;
        for (int r = 0; r < NREGIONS; r++)
            if (stamped(r)) memcpy(R[r].p, &pass, sizeof pass);
        passes = pass;
        usleep(1000);
    }
}

static int page_intact(int r, size_t page)
{
    const unsigned char *p = R[r].p + page * PG;
    unsigned char want = R[r].filled ? seed(r, page) : 0;
    if (r == ONFAULT && page != 0) want = 0;        /* only its first page was ever touched */
    for (size_t i = page == 0 && stamped(r) ? sizeof(uint64_t) : 0; i < PG; i++)
        if (p[i] != want) return 0;
    return 1;
}

/* At the freeze a pass may have been half done: stamps are passes+1 down to passes, in order. */
static void check_stamps(void)
{
    uint64_t last = passes + 1;
    for (int r = 0; r < NREGIONS; r++) {
        if (!stamped(r)) continue;
        uint64_t got;
        memcpy(&got, R[r].p, sizeof got);
        char what[80];
        snprintf(what, sizeof what, "%s: its last write before the checkpoint", R[r].name);
        sc_check((got == passes || got == passes + 1) && got <= last, what, "pass %llu, the job was at %llu",
                 (unsigned long long)got, (unsigned long long)passes);
        last = got;
    }
}

static int mapping_zero(const unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i]) return 0;
    return 1;
}

static void fill(int r)
{
    for (size_t page = 0; page < R[r].pages; page++)
        if (!(r == ONFAULT && page != 0))
            memset(R[r].p + page * PG, seed(r, page), PG);
}

/* With a hole above it: the restore may merge neighbours with equal flags that the original kept
 * apart (each had an anon_vma of its own), which would change Locked: per VMA. */
static void fill_through_proc_mem(int r)
{
    int fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
    unsigned char page[PG];
    for (size_t i = 0; i < R[r].pages; i++) {
        memset(page, seed(r, i), PG);
        if (pwrite(fd, page, PG, (off_t)(uintptr_t)(R[r].p + i * PG)) != (ssize_t)PG)
            sc_check(0, R[r].name, "write through /proc/self/mem: %s", strerror(errno));
    }
    close(fd);
}

static unsigned char *map(size_t pages, int prot, int flags)
{
    unsigned char *p = mmap(NULL, (pages + 1) * PG, prot, flags | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    munmap(p + pages * PG, PG);
    return p;
}

static void setup(int merge)
{
    int rw = PROT_READ | PROT_WRITE;
    for (int r = 0; r < NREGIONS; r++) {
        int prot = r == READONLY || r == NOACCESS ? R[r].prot : rw;
        int flags = MAP_PRIVATE;
        if (r == MAPLOCKED) flags |= MAP_LOCKED;
        if (r == NORESERVE) flags |= MAP_NORESERVE;
        if (r == GROWSDOWN) flags |= MAP_GROWSDOWN;
        if (r == DROPPABLE) flags = MAP_DROPPABLE;
        R[r].p = map(R[r].pages, prot, flags);
        if (!R[r].p) {
            sc_check(r == DROPPABLE, R[r].name, "mmap failed: %s", strerror(errno));
            continue;                            /* (MAP_DROPPABLE: Linux >= 6.11 only) */
        }
        if (r == ONFAULT && syscall(SYS_mlock2, R[r].p, R[r].pages * PG, MLOCK_ONFAULT) != 0)
            sc_check(0, R[r].name, "mlock2: %s", strerror(errno));
        if (prot & PROT_WRITE) {
            if (R[r].filled) fill(r);
            else memset(R[r].p, 0x77, R[r].pages * PG);     /* droppable: not to come back */
        } else if (R[r].filled) {
            fill_through_proc_mem(r);
        }
    }
    madvise(R[DONTFORK].p, 4 * PG, MADV_DONTFORK);
    madvise(R[WIPEONFORK].p, 4 * PG, MADV_WIPEONFORK);
    madvise(R[HUGE].p, 4 * PG, MADV_HUGEPAGE);
    madvise(R[NOHUGE].p, 4 * PG, MADV_NOHUGEPAGE);
    madvise(R[DONTDUMP].p, 4 * PG, MADV_DONTDUMP);
    madvise(R[MERGEABLE].p, 4 * PG, MADV_MERGEABLE);
    if (merge) madvise(R[UNMERGEABLE].p, 4 * PG, MADV_UNMERGEABLE);
    madvise(R[SEQUENTIAL].p, 4 * PG, MADV_SEQUENTIAL);
    madvise(R[RANDOM].p, 4 * PG, MADV_RANDOM);
    sc_check(mlock(R[MLOCKED].p, 4 * PG) == 0, "mlock set up", "%s", strerror(errno));
    if (madvise(R[GUARD].p + 2 * PG, 2 * PG, MADV_GUARD_INSTALL) != 0) {
        sc_check(errno == EINVAL, "guard install", "%s", strerror(errno));     /* Linux < 6.13 */
        R[GUARD].p = R[GUARD_GONE].p = R[LOCKED_GUARD].p = NULL;
    } else {
        madvise(R[GUARD_GONE].p + PG, PG, MADV_GUARD_INSTALL);
        madvise(R[GUARD_GONE].p + PG, PG, MADV_GUARD_REMOVE);
        memset(R[GUARD_GONE].p + PG, seed(GUARD_GONE, 1), PG);
        madvise(R[LOCKED_GUARD].p + PG, PG, MADV_GUARD_INSTALL);
        /* the kernel locks the VMA, then fails to fault in the guard page: ENOMEM */
        mlock(R[LOCKED_GUARD].p, 4 * PG);
    }
    mprotect(R[WAS_WRITABLE].p, 4 * PG, PROT_READ);
    madvise(R[EMPTIED].p, 4 * PG, MADV_DONTNEED);
    mprotect(R[EMPTIED].p, 4 * PG, PROT_NONE);
    mprotect(R[SEALED].p, 4 * PG, PROT_READ);
    if (syscall(SYS_MSEAL, R[SEALED].p, 4 * PG, 0) != 0) {
        sc_check(errno == ENOSYS, "mseal", "%s", strerror(errno));             /* Linux < 6.10 */
        R[SEALED].p = NULL;
    }
}

/* Read-only shared mappings of one file: through a read-write descriptor (VmFlags "mw": the
 * job may mprotect it writable later) and through a read-only one (it may not). */
static unsigned char *shared_rw, *shared_ro, *memfd_rw, *memfd_ro;

static void setup_files(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s.shared", sc_out_path);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    unsigned char page[PG];
    for (int i = 0; i < 4; i++) {
        memset(page, 0xc0 + i, PG);
        if (write(fd, page, PG) != (ssize_t)PG) sc_check(0, "shared file", "write: %s", strerror(errno));
    }
    void *p = mmap(NULL, 4 * PG, PROT_READ, MAP_SHARED, fd, 0);
    shared_rw = p == MAP_FAILED ? NULL : p;
    close(fd);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    p = mmap(NULL, 4 * PG, PROT_READ, MAP_SHARED, fd, 0);
    shared_ro = p == MAP_FAILED ? NULL : p;
    close(fd);
    sc_check(shared_rw && shared_ro, "shared file mappings set up", "%s", strerror(errno));
    /* the same with shared memory: a memfd, mapped through itself and through a read-only reopen */
    fd = memfd_create("vmaflags", MFD_CLOEXEC);
    for (int i = 0; i < 4; i++) {
        memset(page, 0xd0 + i, PG);
        if (write(fd, page, PG) != (ssize_t)PG) sc_check(0, "memfd", "write: %s", strerror(errno));
    }
    p = mmap(NULL, 4 * PG, PROT_READ, MAP_SHARED, fd, 0);
    memfd_rw = p == MAP_FAILED ? NULL : p;
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int ro = open(path, O_RDONLY | O_CLOEXEC);
    p = mmap(NULL, 4 * PG, PROT_READ, MAP_SHARED, ro, 0);
    memfd_ro = p == MAP_FAILED ? NULL : p;
    close(ro);
    sc_check(memfd_rw && memfd_ro, "memfd mappings set up", "%s", strerror(errno));
}

static void check_writable(unsigned char *rw, unsigned char *ro, const char *kind)
{
    char what[120];
    errno = 0;
    int rc = mprotect(rw, 4 * PG, PROT_READ | PROT_WRITE);
    snprintf(what, sizeof what, "%s mapped from a read-write descriptor may become writable", kind);
    sc_check(rc == 0, what, "mprotect: %s", strerror(errno));
    if (rc == 0) mprotect(rw, 4 * PG, PROT_READ);
    errno = 0;
    rc = mprotect(ro, 4 * PG, PROT_READ | PROT_WRITE);
    snprintf(what, sizeof what, "%s mapped from a read-only descriptor may not become writable", kind);
    sc_check(rc == -1 && errno == EACCES, what, "mprotect: %d %s", rc, strerror(errno));
}

static void check_files(void)
{
    if (memfd_rw && memfd_ro) {
        for (int i = 0; i < 4; i++)
            sc_check(memfd_rw[i * PG] == 0xd0 + i && memfd_ro[i * PG + 9] == 0xd0 + i, "memfd contents",
                     "page %d: %#x %#x", i, memfd_rw[i * PG], memfd_ro[i * PG + 9]);
        check_writable(memfd_rw, memfd_ro, "memfd");
    }
    if (!shared_rw || !shared_ro) return;
    for (int i = 0; i < 4; i++) {
        sc_check(shared_rw[i * PG] == 0xc0 + i && shared_ro[i * PG + 7] == 0xc0 + i, "shared file contents",
                 "page %d: %#x %#x", i, shared_rw[i * PG], shared_ro[i * PG + 7]);
    }
    check_writable(shared_rw, shared_ro, "shared file");
}

/* ------------------------------------------------------------ checks */

static sigjmp_buf probe_env;
static void on_segv(int sig) { (void)sig; siglongjmp(probe_env, 1); }

/* 1 when reading (or writing, if `write`) the byte at p faults */
static int faults(volatile unsigned char *p, int write)
{
    if (sigsetjmp(probe_env, 1)) return 1;
    if (write) *p = 0x5a;
    else (void)*p;
    return 0;
}

static void check_flags(void)
{
    for (int i = 0; i < nbefore; i++) {
        const struct vmainfo *b = &before[i], *a = find(after, nafter, (void *)b->start);
        char what[200];
        snprintf(what, sizeof what, "VmFlags of %lx %s", (unsigned long)b->start, b->name);
        if (!a) {
            sc_check(0, what, "mapping gone");
            continue;
        }
        sc_check(!strcmp(a->flags, b->flags), what, "before [%s] after [%s]", b->flags, a->flags);
    }
    for (int r = 0; r < NREGIONS; r++) {
        if (skipped(r)) continue;
        const struct vmainfo *b = find(before, nbefore, R[r].p), *a = find(after, nafter, R[r].p);
        char what[120];
        snprintf(what, sizeof what, "%s shows %s", R[r].name, R[r].flag ? R[r].flag : "no ac");
        if (!b || !a) {
            sc_check(0, what, "not mapped");
            continue;
        }
        int shown = R[r].flag ? has_flag(b->flags, R[r].flag) : !has_flag(b->flags, "ac");
        sc_check(shown, what, "not even before the checkpoint: [%s]", b->flags);
        snprintf(what, sizeof what, "%s Locked:", R[r].name);
        sc_check(a->locked_kb == b->locked_kb, what, "%ld kB, was %ld kB", a->locked_kb, b->locked_kb);
    }
}

static void check_contents(void)
{
    for (int r = 0; r < NREGIONS; r++) {
        if (skipped(r) || r == NOACCESS || r == EMPTIED) continue;
        char what[80];
        if (r == DROPPABLE) {
            snprintf(what, sizeof what, "%s contents not resurrected", R[r].name);
            sc_check(mapping_zero(R[r].p, R[r].pages * PG), what, "old contents came back");
            continue;
        }
        for (size_t page = 0; page < R[r].pages; page++) {
            if (is_guarded_page(r, page)) continue;
            snprintf(what, sizeof what, "%s page %zu contents", R[r].name, page);
            sc_check(page_intact(r, page), what, "differs");
        }
    }
}

static void check_guards(void)
{
    struct sigaction sa = { .sa_handler = on_segv };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, NULL);
    for (int r = 0; r < NREGIONS; r++) {
        if (skipped(r) || (r != GUARD && r != GUARD_GONE && r != LOCKED_GUARD)) continue;
        for (size_t page = 0; page < R[r].pages; page++) {
            char what[80];
            volatile unsigned char *p = R[r].p + page * PG;
            int guarded = is_guarded_page(r, page);
            snprintf(what, sizeof what, "%s page %zu %s on read", R[r].name, page, guarded ? "faults" : "reads");
            sc_check(faults(p, 0) == guarded, what, guarded ? "no fault" : "faulted");
            snprintf(what, sizeof what, "%s page %zu %s on write", R[r].name, page, guarded ? "faults" : "writable");
            unsigned char old = guarded ? 0 : *p;
            sc_check(faults(p, 1) == guarded, what, guarded ? "no fault" : "faulted");
            if (!guarded) *p = old;
        }
    }
    signal(SIGSEGV, SIG_DFL);
}

static void check_sealed(void)
{
    if (skipped(SEALED)) return;
    errno = 0;
    int rc = munmap(R[SEALED].p, 4 * PG);
    sc_check(rc == -1 && errno == EPERM, "sealed mapping cannot be unmapped", "munmap: %d %s", rc, strerror(errno));
    rc = mprotect(R[SEALED].p, 4 * PG, PROT_READ | PROT_WRITE);
    sc_check(rc == -1 && errno == EPERM, "sealed mapping cannot be mprotected", "mprotect: %d %s", rc,
             strerror(errno));
}

/* After fork: bit 0 DONTFORK memory still mapped, 1 WIPEONFORK memory not zero, 2 plain memory
 * differs, 3 droppable memory not zero. */
static void check_fork(void)
{
    pid_t child = fork();
    if (child == 0) {
        unsigned char vec[4];
        int bad = 0;
        if (mincore(R[DONTFORK].p, 4 * PG, vec) == 0 || errno != ENOMEM) bad |= 1;
        if (!mapping_zero(R[WIPEONFORK].p, 4 * PG)) bad |= 2;
        for (size_t page = 0; page < 4; page++)
            if (!page_intact(PLAIN, page)) bad |= 4;
        if (!skipped(DROPPABLE) && !mapping_zero(R[DROPPABLE].p, 4 * PG)) bad |= 8;
        _exit(bad);
    }
    int st = 0;
    sc_check(child > 0 && waitpid(child, &st, 0) == child && WIFEXITED(st), "fork child", "status %#x", st);
    int bad = WEXITSTATUS(st);
    sc_check(!(bad & 1), "MADV_DONTFORK: absent in a child", "still mapped");
    sc_check(!(bad & 2), "MADV_WIPEONFORK: zero in a child", "not zero");
    sc_check(!(bad & 4), "plain memory: intact in a child", "differs");
    sc_check(!(bad & 8), "droppable: zero in a child", "not zero");
}

/* The flags a new mapping gets from process-wide settings (mlockall futures, KSM merge-any). */
static void new_mapping_flags(char *out, size_t size)
{
    unsigned char *p = map(1, PROT_READ | PROT_WRITE, MAP_PRIVATE);
    struct vmainfo *t = malloc(sizeof(struct vmainfo) * MAXMAPS);
    int n = read_smaps(t);
    const struct vmainfo *v = find(t, n, p);
    snprintf(out, size, "%s", v ? v->flags : "?");
    free(t);
    munmap(p, PG);
}

int main(int argc, char **argv)
{
    sc_init(argc, argv);
    int thp = argc > 4 ? atoi(argv[4]) : 0, mcl = argc > 5 ? atoi(argv[5]) : 0, merge = argc > 6 && atoi(argv[6]);
    if (thp && prctl(PR_SET_THP_DISABLE, 1, thp & ~1, 0, 0) != 0)
        sc_check(0, "PR_SET_THP_DISABLE", "%s", strerror(errno));
    if (merge && prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0) != 0)
        sc_check(0, "PR_SET_MEMORY_MERGE", "%s", strerror(errno));
    setup(merge);
    setup_files();
    if (mcl && mlockall(mcl) != 0)
        sc_check(0, "mlockall", "%s", strerror(errno));
    char new_before[160], new_after[160];
    new_mapping_flags(new_before, sizeof new_before);
    int thp_before = prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0);
    int merge_before = prctl(PR_GET_MEMORY_MERGE, 0, 0, 0, 0);
    long vmlck_before = status_kb("VmLck:");
    nbefore = read_smaps(before);

    sc_ready();
    wait_go_writing();

    nafter = read_smaps(after);
    check_flags();
    sc_check(status_kb("VmLck:") == vmlck_before, "VmLck", "%ld kB, was %ld kB", status_kb("VmLck:"), vmlck_before);
    int got = prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0);
    sc_check(got == thp_before && got == thp, "PR_GET_THP_DISABLE", "%d, was %d", got, thp_before);
    got = prctl(PR_GET_MEMORY_MERGE, 0, 0, 0, 0);
    sc_check(got == merge_before, "PR_GET_MEMORY_MERGE", "%d, was %d", got, merge_before);
    new_mapping_flags(new_after, sizeof new_after);
    sc_check(!strcmp(new_after, new_before), "a new mapping's VmFlags", "before [%s] after [%s]", new_before,
             new_after);
    check_contents();
    check_stamps();
    check_guards();
    check_sealed();
    check_files();
    check_fork();
    return sc_done();
}
